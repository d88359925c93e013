"""Cross-request memo of what every inbound CDR needs and that rarely changes.

Every OCPI call looks up its connection by token and its parties, every pushed CDR its
currency, every batch the OCPI tariff of its contracts rebuilt from the price grid. These answers live in Odoo's ``ormcache``
(per worker process, bounded), and every change that can alter them clears that cache for all
workers (``registry.clear_cache()`` is signalled to the other processes through the database,
checked at the start of each request):

* contracts (any matching or pricing field), price grid lines, taxes (rate, type),
* partners' OCPI identities (and what ``_find_by_ocpi_identity`` filters on),
* OCPI connections (tokens, state, roles, partner, company), currencies (activation).

Models list the fields that matter in ``_clearing_cache_fields`` (``None``: every field).
"""

from odoo import api, models


class ClearingIngestCacheMixin(models.AbstractModel):
    _name = "clearing.ingest.cache.mixin"
    _description = "Clears the CDR ingestion memo when a record it depends on changes"

    _clearing_cache_fields = None

    def _clearing_cache_touched(self, vals):
        fnames = self._clearing_cache_fields
        return fnames is None or not fnames.isdisjoint(vals)

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        if any(self._clearing_cache_touched(vals) for vals in vals_list):
            self.env.registry.clear_cache()
        return records

    def write(self, vals):
        res = super().write(vals)
        if self and self._clearing_cache_touched(vals):
            self.env.registry.clear_cache()
        return res

    def unlink(self):
        res = super().unlink()
        self.env.registry.clear_cache()
        return res
