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
