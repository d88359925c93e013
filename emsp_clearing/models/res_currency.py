from odoo import models


class ResCurrency(models.Model):
    _name = "res.currency"
    _inherit = ["res.currency", "clearing.ingest.cache.mixin"]

    # a CDR's currency is looked up by ISO code (clearing.cdr.ingest_ocpi_batch)
    _clearing_cache_fields = frozenset({"name", "active", "rounding", "decimal_places"})
