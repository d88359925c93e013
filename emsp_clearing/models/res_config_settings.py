from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    clearing_price_tolerance = fields.Float(
        related="company_id.clearing_price_tolerance",
        readonly=False,
        digits=(16, 6),
    )
