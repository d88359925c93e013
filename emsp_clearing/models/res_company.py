from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    clearing_price_tolerance = fields.Float(
        string="Clearing Price Tolerance",
        digits=(16, 6),
        default=0.01,
        help="Largest difference (excl. VAT, in the CDR currency) between the total "
        "stated by the CPO and our own pricing that is not reported as a mismatch. "
        "Default for new contracts.",
    )
    # default costs of a session (CPO hat), when the contract has no cost of its own
    clearing_energy_cost = fields.Float(
        "Energy Cost per kWh", digits=(16, 6),
        help="What a kWh delivered costs us (CPO): default of the contracts' costs.")
    clearing_session_cost = fields.Float(
        "Cost per Session", digits=(16, 6),
        help="Platform and payment fees of a session (CPO): default of the contracts' costs.")
    clearing_monthly_cost = fields.Float(
        "Fixed Monthly Cost", digits=(16, 2),
        help="Fixed cost of a contract per month (CPO): default of the contracts' costs.")
