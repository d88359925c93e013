"""account.move: the invoice, vendor bill or credit note of a clearing period."""

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_compare

# Decimal places the clearing lines need (see clearing.period._exact_quantity_price): kWh to
# the Wh (OCPI volumes), tariff prices to 1/100 of a cent (OCPI tariffs carry 4 decimals).
MIN_DIGITS = {"product.decimal_product_uom": 3, "product.decimal_price": 4}


class AccountMove(models.Model):
    _inherit = "account.move"

    clearing_period_id = fields.Many2one(
        "clearing.period", string="Clearing Period", index="btree_not_null", copy=False,
        readonly=True, ondelete="restrict",
    )
    clearing_contract_id = fields.Many2one(
        related="clearing_period_id.contract_id", store=True, index="btree_not_null",
        string="Clearing Contract",
    )
    clearing_cdr_ids = fields.One2many(
        "clearing.cdr", "invoice_move_id", string="Billed Sessions", readonly=True)
    clearing_cdr_count = fields.Integer("Sessions", compute="_compute_clearing_cdr_count")
    # vendor bills (we are the eMSP): the CPO's own invoice, against our computed amount
    clearing_vendor_reference = fields.Char(
        "CPO Invoice Reference", copy=False, tracking=True,
        help="Number of the invoice the CPO sent for this clearing period.",
    )
    clearing_vendor_total = fields.Monetary(
        "CPO Invoice Total", copy=False, tracking=True, currency_field="currency_id",
        help="Total (incl. VAT) of the invoice the CPO sent, to compare with ours.",
    )
    clearing_vendor_difference = fields.Monetary(
        "Difference to the CPO Invoice", compute="_compute_clearing_vendor_difference",
        store=True, currency_field="currency_id",
        help="CPO invoice total minus the total computed from the locked sessions.",
    )
    clearing_vendor_mismatch = fields.Boolean(
        "CPO Invoice Differs", compute="_compute_clearing_vendor_difference", store=True)
    # OCPI 2.3.0 invoice reconciliation records the CPO sent for this vendor bill
    clearing_reconciliation_ids = fields.One2many(
        "clearing.invoice.reconciliation", "move_id", domain=[("direction", "=", "received")],
        string="Invoice Reconciliation Records", readonly=True)
    clearing_published_reconciliation_ids = fields.One2many(
        "clearing.invoice.reconciliation", "move_id",
        domain=[("direction", "=", "published")],
        string="Published Invoice Reconciliation Records", readonly=True)
    clearing_reconciliation_findings = fields.Integer(
        "Reconciliation Findings", compute="_compute_clearing_reconciliation_findings")

    def init(self):
        super().init()
        # exactly once: one invoice (or vendor bill) per clearing period, whatever runs at once
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS account_move_clearing_period_invoice_uniq
                   ON account_move (clearing_period_id)
                WHERE clearing_period_id IS NOT NULL
                  AND move_type IN ('out_invoice', 'in_invoice')"""
        )

    @api.depends("clearing_reconciliation_ids.finding_count")
    def _compute_clearing_reconciliation_findings(self):
        for move in self:
            move.clearing_reconciliation_findings = sum(
                move.clearing_reconciliation_ids.mapped("finding_count"))

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        ours = posted.filtered(lambda m: m.clearing_period_id
                               and m.move_type in ("out_invoice", "out_refund"))
        if ours:
            self.env["clearing.invoice.reconciliation"].sudo()._publish(ours)
        return posted

    def _clearing_connection(self):
        """The registered OCPI connection with this move's partner (the eMSP we bill)."""
        self.ensure_one()
        return self.env["clearing.ocpi.connection"].sudo().search([
            ("company_id", "=", self.company_id.id), ("state", "=", "registered"),
            ("partner_id", "=", self.commercial_partner_id.id)], limit=1)

    def _compute_clearing_cdr_count(self):
        counts = dict(self.env["clearing.cdr"]._read_group(
            [("invoice_move_id", "in", self.ids)], ["invoice_move_id"], ["__count"]))
        for move in self:
            move.clearing_cdr_count = counts.get(move, 0)

    @api.depends("clearing_vendor_total", "clearing_vendor_reference", "amount_total")
    def _compute_clearing_vendor_difference(self):
        for move in self:
            if move.clearing_period_id and move.clearing_vendor_reference:
                difference = move.clearing_vendor_total - move.amount_total
                move.clearing_vendor_difference = difference
                move.clearing_vendor_mismatch = bool(float_compare(
                    difference, 0.0, precision_rounding=move.currency_id.rounding))
            else:
                move.clearing_vendor_difference = 0.0
                move.clearing_vendor_mismatch = False

    @api.model
    def _clearing_ensure_digits(self):
        """Raise the quantity and unit price precisions to what clearing lines need (never
        lower them). Called when the module is installed or updated."""
        for xmlid, digits in MIN_DIGITS.items():
            precision = self.env.ref(xmlid, raise_if_not_found=False)
            if precision and precision.digits < digits:
                precision.digits = digits

    def write(self, vals):
        # a posted clearing invoice is never edited: corrections are credit notes
        if "clearing_period_id" in vals and any(
                move.clearing_period_id and move.clearing_period_id.id != vals[
                    "clearing_period_id"] for move in self):
            raise UserError(_("A clearing invoice cannot be moved to another clearing period."))
        return super().write(vals)

    def action_view_clearing_period(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "clearing.period",
            "res_id": self.clearing_period_id.id,
            "view_mode": "form",
            "name": self.clearing_period_id.display_name,
        }

    def action_view_clearing_cdrs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_cdr")
        action["domain"] = [("invoice_move_id", "=", self.id)]
        action["context"] = {}
        action["name"] = _("Sessions of %s", self.display_name)
        return action
