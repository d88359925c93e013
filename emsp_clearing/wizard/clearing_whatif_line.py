from odoo import fields, models


class ClearingWhatifLine(models.TransientModel):
    """A line of the draft price grid of a what-if simulation (the fields and the OCPI
    conversion of a contract's grid line: ``clearing.price.line.mixin``)."""

    _name = "clearing.whatif.line"
    _inherit = ["clearing.price.line.mixin"]
    _description = "What-if Draft Grid Line"
    _order = "sequence, id"

    wizard_id = fields.Many2one("clearing.whatif", required=True, ondelete="cascade")
    currency_id = fields.Many2one(related="wizard_id.currency_id")
