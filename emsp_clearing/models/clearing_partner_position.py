"""Net position of a partner on both sides: what they owe us (open receivables: we bill them as
a CPO) minus what we owe them (open payables: they bill us), per company and currency.

A PostgreSQL view over the open journal items of receivable and payable accounts (posted,
not reconciled), grouped by commercial partner: no stored copy to keep up to date, and one
aggregate whatever the number of invoices. Only the counterparties of a clearing contract.
"""

from odoo import fields, models, tools
from odoo.tools import SQL


class ClearingPartnerPosition(models.Model):
    _name = "clearing.partner.position"
    _description = "Clearing Partner Net Position"
    _auto = False
    _order = "partner_id, company_id, currency_id"
    _rec_name = "partner_id"

    partner_id = fields.Many2one("res.partner", string="Partner", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    company_currency_id = fields.Many2one(
        "res.currency", string="Company Currency", readonly=True)
    receivable_open = fields.Monetary(
        "Receivable (open)", readonly=True,
        help="What the partner owes us: the open amount of our invoices, less their credit "
        "notes and unallocated payments.")
    payable_open = fields.Monetary(
        "Payable (open)", readonly=True,
        help="What we owe the partner: the open amount of their bills, less their credit "
        "notes and our unallocated payments.")
    net = fields.Monetary(
        "Net Position", readonly=True,
        help="Receivable minus payable: positive, the partner owes us; negative, we owe them.")
    net_company = fields.Monetary(
        "Net (company currency)", currency_field="company_currency_id", readonly=True)
    receivable_count = fields.Integer("Open Receivable Items", readonly=True)
    payable_count = fields.Integer("Open Payable Items", readonly=True)
    both_sides = fields.Boolean(
        "On Both Sides", readonly=True,
        help="The partner has open items both as a customer and as a supplier.")

    def _query(self):
        return SQL(
            """
            SELECT min(aml.id) AS id,
                   partner.commercial_partner_id AS partner_id,
                   aml.company_id,
                   aml.currency_id,
                   aml.company_currency_id,
                   coalesce(sum(aml.amount_residual_currency)
                            FILTER (WHERE account.account_type = 'asset_receivable'), 0)
                       AS receivable_open,
                   -coalesce(sum(aml.amount_residual_currency)
                             FILTER (WHERE account.account_type = 'liability_payable'), 0)
                       AS payable_open,
                   sum(aml.amount_residual_currency) AS net,
                   sum(aml.amount_residual) AS net_company,
                   count(*) FILTER (WHERE account.account_type = 'asset_receivable')
                       AS receivable_count,
                   count(*) FILTER (WHERE account.account_type = 'liability_payable')
                       AS payable_count,
                   bool_or(account.account_type = 'asset_receivable')
                       AND bool_or(account.account_type = 'liability_payable') AS both_sides
              FROM account_move_line aml
              JOIN account_account account ON account.id = aml.account_id
              JOIN res_partner partner ON partner.id = aml.partner_id
             WHERE aml.parent_state = 'posted'
               AND NOT aml.reconciled
               AND account.account_type IN ('asset_receivable', 'liability_payable')
               AND EXISTS (SELECT 1
                             FROM clearing_contract contract
                             JOIN res_partner counterparty
                               ON counterparty.id = contract.partner_id
                            WHERE counterparty.commercial_partner_id
                                  = partner.commercial_partner_id)
             GROUP BY partner.commercial_partner_id, aml.company_id, aml.currency_id,
                      aml.company_currency_id
            """)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(SQL("CREATE OR REPLACE VIEW %s AS (%s)",
                                SQL.identifier(self._table), self._query()))

    def action_open_items(self):
        """The open journal items behind the figures."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "account.action_account_moves_all")
        action["domain"] = [
            ("partner_id", "child_of", self.partner_id.id),
            ("company_id", "=", self.company_id.id),
            ("currency_id", "=", self.currency_id.id),
            ("parent_state", "=", "posted"),
            ("reconciled", "=", False),
            ("account_id.account_type", "in", ("asset_receivable", "liability_payable")),
        ]
        action["context"] = {}
        return action
