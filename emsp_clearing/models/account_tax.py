from odoo import models


class AccountTax(models.Model):
    _name = "account.tax"
    _inherit = ["account.tax", "clearing.ingest.cache.mixin"]

    # the VAT rate of a contract's OCPI tariff (clearing.contract._vat_decimal)
    _clearing_cache_fields = frozenset({
        "amount", "amount_type", "price_include", "price_include_override",
        "children_tax_ids", "active", "company_id"})
