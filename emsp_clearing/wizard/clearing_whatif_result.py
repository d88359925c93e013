from odoo import fields, models


class ClearingWhatifResult(models.TransientModel):
    """One line of a what-if result: a component of the untaxed amount in one month."""

    _name = "clearing.whatif.result"
    _description = "What-if Result Line"
    _order = "month desc, sequence"

    wizard_id = fields.Many2one("clearing.whatif", required=True, ondelete="cascade")
    currency_id = fields.Many2one(related="wizard_id.currency_id")
    month = fields.Date("First Day", help="First day of the month (session end, contract time zone).")
    month_label = fields.Char("Month")
    sequence = fields.Integer()
    component = fields.Char()
    sessions = fields.Integer()
    current_amount = fields.Monetary("Current")
    simulated_amount = fields.Monetary("Simulated")
    difference = fields.Monetary()
