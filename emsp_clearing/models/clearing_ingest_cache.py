"""Cross-request memo of what every inbound CDR needs and that rarely changes.

An OCPI push stores one CDR per request; without a memo each request would look up its
connection by token, match the contract, rebuild the contract's OCPI tariff from the price grid
and read the currency again (~15 queries of ~25). These answers live in Odoo's ``ormcache``
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
