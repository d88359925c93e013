"""clearing.contract.report: the figures per contract, fleet grid and day for the pivot and
graph views (Clearing > Reporting), read from the live figures per day
(``clearing.contract.day``) with the contract's counterparty, role, company and currency."""

from odoo import fields, models
from odoo.tools import SQL

from .clearing_contract_day import FIGURE_NAMES


class ClearingContractReport(models.Model):
    _name = "clearing.contract.report"
    _description = "Clearing Figures per Contract"
    _auto = False
    _order = "day desc"
    _rec_name = "contract_id"

    contract_id = fields.Many2one("clearing.contract", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Counterparty", readonly=True)
    role = fields.Selection(related="contract_id.role")
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    fleet_id = fields.Many2one("clearing.fleet", string="Fleet Grid", readonly=True)
    day = fields.Date(readonly=True, help="End of the sessions, in the contract's time zone.")
    sessions = fields.Integer(readonly=True)
    kwh = fields.Float("Energy (kWh)", digits=(16, 3), readonly=True)
    priced = fields.Integer(readonly=True)
    mismatched = fields.Integer(readonly=True)
    mismatch_amount = fields.Monetary("Mismatch Amount", readonly=True)
    disputed = fields.Integer(readonly=True)
    excluded = fields.Integer(readonly=True)
    late = fields.Integer(readonly=True)
    revenue = fields.Monetary("Billable (excl. VAT)", readonly=True)
    amount_total = fields.Monetary("Billable (incl. VAT)", readonly=True)
    resale = fields.Monetary(
        "Resale (excl. VAT)", readonly=True,
        help="eMSP hat: what our drivers pay for the sessions under the resale grid.")
    cost = fields.Monetary(
        "Session Costs", readonly=True,
        help="CPO hat: energy per kWh and fees per session (fixed monthly costs apart). eMSP "
        "hat with a resale grid: what the CPO bills us (excl. VAT).")
    margin = fields.Monetary(
        "Margin before Fixed Costs", readonly=True,
        help="CPO hat: billable (excl. VAT) minus the session costs. eMSP hat with a resale "
        "grid: resale minus what the CPO bills us; empty without a resale grid.")

    @property
    def _table_query(self):
        cost_joins, cost = self.env["clearing.contract.day"]._cost_sql()
        # CPO hat: the session costs; eMSP hat with a resale grid: what the CPO bills us (the
        # billable untaxed amount), against the resale; eMSP without one: no cost, no margin
        return SQL(
            """SELECT min(d.id) AS id, d.contract_id, nullif(d.fleet_id, 0) AS fleet_id, d.day,
                      cost_contract.partner_id, cost_contract.company_id,
                      cost_contract.currency_id, %(sums)s,
                      CASE WHEN cost_contract.role = 'cpo' THEN sum(%(cost)s)
                           WHEN cost_contract.has_resale_grid THEN sum(d.revenue) END AS cost,
                      CASE WHEN cost_contract.role = 'cpo' THEN sum(d.revenue) - sum(%(cost)s)
                           WHEN cost_contract.has_resale_grid
                           THEN coalesce(sum(d.resale), 0) - sum(d.revenue) END AS margin
                 FROM clearing_contract_day d %(joins)s
             GROUP BY d.contract_id, d.fleet_id, d.day, cost_contract.partner_id,
                      cost_contract.company_id, cost_contract.currency_id, cost_contract.role,
                      cost_contract.has_resale_grid
               HAVING sum(d.sessions) <> 0""",
            sums=SQL(", ").join(SQL("sum(d.%s) AS %s", SQL.identifier(name),
                                    SQL.identifier(name))
                                for name in FIGURE_NAMES if not name.startswith("cost_")),
            cost=cost, joins=cost_joins)
