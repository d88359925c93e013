"""Batch ingestion of OCPI CDRs: the same result as ``_ingest_ocpi`` item by item, in a few
queries per batch instead of ~20 per CDR (OCPI pull pages, file imports, pushes).

``clearing.cdr._ingest_ocpi`` (models/clearing_cdr.py) stays the reference for one CDR. This
override of ``_ingest_ocpi_batch`` reuses its building blocks (``_parse_ocpi``,
``_vals_from_ocpi``, ``clearing.contract._find_for_cdr``, ``_pricing_vals``,
``_empty_pricing_vals``) but:

* finds already received CDRs with one query per batch;
* matches each distinct (company, sender, token issuer, currency, 15-minute block of the end)
  once — ``_find_for_cdr`` depends on nothing else, and no time zone moves a local date inside a
  15-minute block;
* prices before storing, so matching and pricing land in the ``INSERT`` of one ``create`` for
  the whole batch instead of two ``UPDATE`` per CDR;
* links credit CDRs with two queries per batch.

A CDR that fails validation, matching or pricing is reported like the item-by-item path does
and does not spoil the batch; if the batch ``create`` itself fails (a database constraint), the
batch falls back to the item-by-item path. ``tests/test_ocpi_batch.py`` checks that both paths
store the same values.
"""

import datetime as dt
import inspect
import types

from odoo import _, api, models, tools
from odoo.exceptions import UserError, ValidationError

from ..clearing_core import ocpi, pricing
from ..clearing_core.errors import OcpiValidationError

_BLOCK = 15 * 60  # seconds; every UTC offset in use is a multiple of 15 minutes


class _Draft:
    """Attribute bag standing for a not yet created clearing.cdr in ``_find_for_cdr``,
    ``_pricing_vals`` and ``_empty_pricing_vals`` (which only read fields). The model's methods
    are bound to the draft; reading a field the draft was not given fails loudly rather than
    reading an empty recordset's ``False``."""

    def __init__(self, model, **values):
        self.__dict__.update(values)
        self._model = model

    def ensure_one(self):
        return self

    def __getattr__(self, name):
        model = self.__dict__["_model"]
        if name in model._fields:
            raise AttributeError("batch ingestion draft has no value for field %r" % name)
        static = inspect.getattr_static(type(model), name, None)
        if isinstance(static, (staticmethod, classmethod)) or not callable(static):
            return getattr(model, name)
        return types.MethodType(static, self)


class ClearingCdr(models.Model):
    _inherit = "clearing.cdr"

    def init(self):
        super().init()
        # credits waiting for their original: looked up by every ingestion batch (a sequential
        # scan of all CDRs otherwise); only unlinked credit CDRs are in this index
        tools.create_index(self.env.cr, "clearing_cdr_open_credit_ref_idx", self._table,
                           ["company_id", "credit_reference_id"],
                           where="credit AND credited_cdr_id IS NULL")

    @api.model
    def _ingest_ocpi_batch(self, items, company=None):
        if not items:
            return []
        company = company or self.env.company
        model = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True,
                                  tracking_disable=True)
        results = [None] * len(items)
        parsed = {}
        for i, data in enumerate(items):
            if not isinstance(data, dict):
                results[i] = _("Invalid OCPI CDR: $: a CDR must be a JSON object.")
                continue
            try:
                parsed[i] = self._parse_ocpi(data)
            except ValidationError as error:
                results[i] = str(error)
        # already received (exact key, as _ingest_ocpi checks), also within this batch
        existing = self._existing_keys(company, {(p.country_code, p.party_id, p.id)
                                                 for p in parsed.values()})
        seen = set()
        vals_by_index = {}
        for i, p in parsed.items():
            key = (p.country_code, p.party_id, p.id)
            if key in existing or key in seen:
                results[i] = _("CDR %(id)s from %(country)s*%(party)s was already received.",
                               id=p.id, country=p.country_code, party=p.party_id)
                continue
            seen.add(key)
            try:
                vals_by_index[i] = self._vals_from_ocpi(p, items[i], company)
            except (ValidationError, UserError) as error:
                results[i] = str(error)
        # match and price before storing
        match_cache, tariff_cache = {}, {}
        for i, vals in list(vals_by_index.items()):
            try:
                vals.update(self._batch_match_and_price(vals, parsed[i], company, match_cache,
                                                        tariff_cache))
            except (ValidationError, UserError) as error:
                results[i] = str(error)
                del vals_by_index[i]
        order = sorted(vals_by_index)
        if order:
            try:
                with self.env.cr.savepoint():
                    records = model.create([vals_by_index[i] for i in order])
                    records._resolve_credit_links_batch()
            except Exception:  # noqa: BLE001 — constraint race etc.: redo item by item
                self.env.invalidate_all()
                slow = super()._ingest_ocpi_batch([items[i] for i in order], company=company)
                for i, out in zip(order, slow):
                    results[i] = out["record"] if out["record"] else out["error"]
            else:
                for i, record in zip(order, records.with_env(self.env)):  # caller's context
                    results[i] = record
        return [
            {"index": i, "record": r if not isinstance(r, str) else None,
             "error": r if isinstance(r, str) else None}
            for i, r in enumerate(results)
        ]

    @api.model
    def _existing_keys(self, company, keys):
        if not keys:
            return set()
        self.flush_model(["company_id", "country_code", "party_id", "ocpi_id"])
        self.env.cr.execute(
            "SELECT country_code, party_id, ocpi_id FROM clearing_cdr "
            "WHERE company_id = %s AND ocpi_id = ANY(%s)",
            (company.id, list({k[2] for k in keys})))
        return {row for row in self.env.cr.fetchall() if row in keys}

    @api.model
    def _batch_match_and_price(self, vals, parsed, company, match_cache, tariff_cache):
        """Values ``_match_and_price`` would write on the CDR created from ``vals``."""
        currency = self.env["res.currency"].browse(vals["currency_id"])
        end = vals["end_datetime"]
        block = int(end.replace(tzinfo=dt.timezone.utc).timestamp()) // _BLOCK
        key = (company.id, (vals["country_code"] or "").upper(), (vals["party_id"] or "").upper(),
               (vals.get("token_country_code") or "").upper(),
               (vals.get("token_party_id") or "").upper(), currency.id, block)
        if key not in match_cache:
            draft = _Draft(self, company_id=company, currency_id=currency, end_datetime=end,
                           country_code=vals["country_code"], party_id=vals["party_id"],
                           token_country_code=vals.get("token_country_code"),
                           token_party_id=vals.get("token_party_id"))
            contract, reason = self.env["clearing.contract"]._find_for_cdr(draft)
            if contract:
                match = {"contract_id": contract.id, "partner_id": contract.partner_id.id,
                         "match_state": "matched", "unmatched_reason": False}
            else:
                own = company.partner_id
                partners = self.env["res.partner"]
                if (vals["country_code"], vals["party_id"]) == (own.ocpi_country_code,
                                                                own.ocpi_party_id):
                    partner = partners._find_by_ocpi_identity(
                        vals.get("token_country_code"), vals.get("token_party_id"), company)
                else:
                    partner = partners._find_by_ocpi_identity(
                        vals["country_code"], vals["party_id"], company)
                match = {"contract_id": False, "partner_id": partner.id,
                         "match_state": "unmatched", "unmatched_reason": reason}
            match_cache[key] = (contract, match)
        contract, match = match_cache[key]
        out = dict(match)
        if not contract:
            draft = _Draft(self, charging_periods=vals.get("charging_periods"),
                           start_datetime=vals["start_datetime"], end_datetime=end,
                           credit=vals.get("credit"), currency_id=currency,
                           raw_json=vals.get("raw_json"))
            out.update(type(self)._empty_pricing_vals(draft))
            return out
        tkey = (contract.id, str(contract.write_date))
        if tkey not in tariff_cache:
            tariff_dict = contract.to_ocpi_tariff()
            try:
                tariff = ocpi.parse_tariff(tariff_dict, strict=True)
            except OcpiValidationError as error:
                raise ValidationError(
                    _("Contract %(contract)s: invalid price grid: %(error)s",
                      contract=contract.name, error=error)) from error
            tariff_cache[tkey] = (tariff_dict, tariff)
        tariff_dict, tariff = tariff_cache[tkey]
        try:
            result = pricing.price_cdr(parsed, tariff, tz=contract.tz)
        except OcpiValidationError as error:
            raise ValidationError(
                _("CDR %(cdr)s cannot be priced: %(error)s", cdr=parsed.id, error=error)
            ) from error
        draft = _Draft(self, currency_id=currency, credit=vals.get("credit"),
                       raw_json=vals.get("raw_json"), contract_id=contract,
                       charging_periods=vals.get("charging_periods"),
                       start_datetime=vals["start_datetime"], end_datetime=end)
        out.update(type(self)._pricing_vals(draft, result, tariff_dict))
        return out

    def _resolve_credit_links_batch(self):
        """``_resolve_credit_links`` for many new CDRs in two queries."""
        if not self:
            return
        self.flush_model(["company_id", "country_code", "party_id", "ocpi_id", "credit",
                          "credit_reference_id", "credited_cdr_id"])
        cr = self.env.cr
        links = {}  # credit id -> original id
        credits = self.filtered(lambda c: c.credit and c.credit_reference_id)
        if credits:
            cr.execute(
                "SELECT id, company_id, country_code, party_id, ocpi_id FROM clearing_cdr "
                "WHERE ocpi_id = ANY(%s) AND company_id = ANY(%s) ORDER BY id",
                (list(set(credits.mapped("credit_reference_id"))), list(set(credits.company_id.ids))))
            originals = {}
            for rid, comp, cc, party, oid in cr.fetchall():
                originals.setdefault((comp, cc, party, oid), []).append(rid)
            for c in credits:
                ids = [r for r in originals.get((c.company_id.id, c.country_code, c.party_id,
                                                 c.credit_reference_id), []) if r != c.id]
                if ids:
                    links[c.id] = ids[0]
        plain = self.filtered(lambda c: not c.credit)
        if plain:
            cr.execute(
                "SELECT id, company_id, country_code, party_id, credit_reference_id "
                "FROM clearing_cdr WHERE credit AND credited_cdr_id IS NULL "
                "AND company_id = ANY(%s) AND credit_reference_id = ANY(%s)",
                (list(set(plain.company_id.ids)), list(set(plain.mapped("ocpi_id")))))
            waiting = {}
            for rid, comp, cc, party, ref in cr.fetchall():
                waiting.setdefault((comp, cc, party, ref), []).append(rid)
            for o in plain:
                for rid in waiting.get((o.company_id.id, o.country_code, o.party_id, o.ocpi_id), []):
                    links.setdefault(rid, o.id)
        by_original = {}
        for credit_id, original_id in links.items():
            by_original.setdefault(original_id, []).append(credit_id)
        for original_id, credit_ids in by_original.items():
            self.browse(credit_ids).write({"credited_cdr_id": original_id})
