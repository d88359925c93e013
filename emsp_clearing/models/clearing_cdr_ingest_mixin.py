"""clearing.cdr.ingest.mixin: batch ingestion of OCPI CDRs, inherited by clearing.cdr.

``ingest_ocpi_batch`` stores the same as ``clearing.cdr.ingest_ocpi`` item by item (the ORM
path, models/clearing_cdr.py), in a few queries per batch instead of ~20 per CDR (OCPI pull
pages, file imports, pushes). It goes through the same hooks (``_parse_ocpi``,
``_prepare_cdr_vals``, ``clearing.contract._find_for_cdr``, ``_prepare_pricing_vals``,
``_prepare_resale_vals``, ``_prepare_empty_pricing_vals``, ``_prepare_period_vals``) but:

* finds already received CDRs with one query per batch;
* matches each distinct (company, sender, token issuer, currency, 15-minute block of the end)
  once — ``_find_for_cdr`` depends on nothing else, and no time zone moves a local date inside a
  15-minute block;
* prices and assigns the clearing period before storing, then stores the whole batch with one
  ``COPY`` of the rows (``_insert_prepared``, ``tools/bulk_insert.py``: the column values the
  ORM ``create`` would store, derived from the model's fields, without its per-record,
  per-field work) instead of a ``create`` and two ``UPDATE`` per CDR;
* links credit CDRs with two queries per batch.

A CDR that fails validation, matching or pricing is reported like the item-by-item path does
and does not spoil the batch; if storing the batch fails (a concurrent duplicate, a
constraint), its CDRs are stored one by one, each refused alone. ``tests/test_ocpi_batch.py``
checks that both paths store the same values, column by column.

The methods read the fields of clearing.cdr: the mixin is meant for that model only.
"""

import datetime as dt

import psycopg2

from odoo import _, api, models, tools
from odoo.exceptions import UserError, ValidationError

from ..tools.bulk_insert import analyze_if_stale, insert_rows
from ..tools.draft_record import Draft

_BLOCK = 15 * 60  # seconds; every UTC offset in use is a multiple of 15 minutes


class ClearingCdrIngestMixin(models.AbstractModel):
    _name = "clearing.cdr.ingest.mixin"
    _description = "Batch ingestion of OCPI CDRs (clearing.cdr)"

    @api.model
    def ingest_ocpi_batch(self, items, company=None, parsed=None, ids=None):
        """Store, match and price OCPI 2.2.1 CDRs (``items``: dicts as received) for
        ``company`` (default: the current company); public entry point. One bad item does not
        spoil the others. Returns one dict per item, in order: ``{"index": i, "record": cdr
        or None, "error": message or None}``.

        ``parsed``: optional, ``ocpi.parse_cdr(item, strict=True)`` of each item, given by
        ``clearing.ingestion.log._ingest_cdrs``, which also left out every CDR already stored
        or repeated in the batch (no second look-up here; a concurrent insert of the same CDR
        still hits the unique constraint, and the batch then goes item by item).
        ``ids``: optional record id of each item, reserved from the sequence beforehand (the
        OCPI push queue answered the sender with them); not kept by the item-by-item
        fallback."""
        if not items:
            return []
        company = company or self.env.company
        model = self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True,
                                  tracking_disable=True)
        results = [None] * len(items)
        given = parsed
        parsed = {}
        for i, data in enumerate(items):
            if not isinstance(data, dict):
                results[i] = _("Invalid OCPI CDR: $: a CDR must be a JSON object.")
                continue
            if given is not None and given[i] is not None:
                parsed[i] = given[i]
                continue
            try:
                parsed[i] = self._parse_ocpi(data)
            except ValidationError as error:
                results[i] = str(error)
        # already received (the sender compared case-insensitively, as the unique index and
        # ingest_ocpi compare it), also within this batch
        if given is not None:
            existing = set()
        else:
            existing = self._existing_keys(company, {(p.country_code, p.party_id, p.id)
                                                     for p in parsed.values()})
        # currencies by code, once per batch (not one search per CDR)
        codes = {p.currency for p in parsed.values()}
        currency_by_code = {}
        if codes:
            for cur in self.env["res.currency"].with_context(active_test=False).search_fetch(
                    [("name", "in", list(codes))], ["name", "rounding", "decimal_places"],
                    order="id"):
                currency_by_code.setdefault(cur.name, cur)
        no_currency = self.env["res.currency"]
        seen = set()
        vals_by_index = {}
        for i, p in parsed.items():
            key = (p.country_code.upper(), p.party_id.upper(), p.id)
            if key in existing or key in seen:
                results[i] = _("CDR %(id)s from %(country)s*%(party)s was already received.",
                               id=p.id, country=p.country_code, party=p.party_id)
                continue
            seen.add(key)
            try:
                vals_by_index[i] = self._prepare_cdr_vals(
                    p, items[i], company, currency=currency_by_code.get(p.currency, no_currency))
                if ids is not None and ids[i]:
                    vals_by_index[i]["id"] = ids[i]
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
                    records = model._insert_prepared([vals_by_index[i] for i in order])
                    records._resolve_credit_links_batch(
                        [vals_by_index[i] for i in order])
            except (psycopg2.errors.UniqueViolation, ValidationError, UserError):
                # the same CDR stored meanwhile by a concurrent call, or a CDR a constraint
                # refuses: store the batch CDR by CDR, each refused alone (under their reserved
                # ids, the Locations the push queue answered with)
                self.env.invalidate_all()
                for i in order:
                    vals = vals_by_index[i]
                    if ids is not None and ids[i]:
                        vals["id"] = ids[i]  # _insert_prepared took it
                    try:
                        with self.env.cr.savepoint():
                            record = model._insert_prepared([vals])
                            record._resolve_credit_links_batch([vals])
                    except psycopg2.errors.UniqueViolation:
                        self.env.invalidate_all()
                        p = parsed[i]
                        results[i] = _("CDR %(id)s from %(country)s*%(party)s was already "
                                       "received.", id=p.id, country=p.country_code,
                                       party=p.party_id)
                    except (ValidationError, UserError) as error:
                        self.env.invalidate_all()
                        results[i] = str(error)
                    else:
                        results[i] = record.with_env(self.env)
            else:
                for i, record in zip(order, records.with_env(self.env)):  # caller's context
                    results[i] = record
            self._analyze_if_stale()
        return [
            {"index": i, "record": r if not isinstance(r, str) else None,
             "error": r if isinstance(r, str) else None}
            for i, r in enumerate(results)
        ]

    @api.model
    def _analyze_if_stale(self):
        analyze_if_stale(self.env.cr, self._table, [
            "ocpi_id", "company_id", "country_code", "party_id", "credit", "credited_cdr_id",
            "credit_reference_id", "contract_id", "period_id"])

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
            contract_id, match = self._match_for_key(
                key, end, vals["country_code"], vals["party_id"],
                vals.get("token_country_code"), vals.get("token_party_id"))
            match_cache[key] = (self.env["clearing.contract"].browse(contract_id), match)
        contract, match = match_cache[key]
        out = dict(match)
        if not contract:
            draft = Draft(self, charging_periods=vals.get("charging_periods"),
                           start_datetime=vals["start_datetime"], end_datetime=end,
                           credit=vals.get("credit"), currency_id=currency,
                           raw_json=vals.get("raw_json"))
            out.update(type(self)._prepare_empty_pricing_vals(draft))
            return out
        fleet, tariff_dict, tariff = self._pricing_grid(
            contract, vals.get("token_uid"), vals.get("token_contract_id"), end, tariff_cache)
        result = self._price_ocpi(parsed, tariff, contract)
        draft = Draft(self, currency_id=currency, credit=vals.get("credit"),
                       raw_json=vals.get("raw_json"), contract_id=contract,
                       charging_periods=vals.get("charging_periods"),
                       start_datetime=vals["start_datetime"], end_datetime=end)
        out.update(type(self)._prepare_pricing_vals(draft, result, tariff_dict))
        out["fleet_id"] = fleet.id
        out.update(self._prepare_resale_vals(parsed, contract, currency.name, vals.get("credit"),
                                             tariff_cache))
        return out

    @api.model
    @tools.ormcache("code")
    def _currency_memo(self, code):
        """Id of the Odoo currency of ISO ``code`` (active or not, as ``_prepare_cdr_vals``
        looks it up), or False; memoised across requests (clearing_ingest_cache.py)."""
        return self.env["res.currency"].sudo().with_context(active_test=False).search(
            [("name", "=", code)], limit=1, order="id").id

    @api.model
    def _match_for_key(self, key, end, country_code, party_id, token_country_code,
                       token_party_id):
        """``(contract id or False, values)``: the contract matching of every CDR of ``key``
        (see ``_batch_match_and_price``, which keeps it for the batch). Computed as superuser:
        the contract of a CDR does not depend on who imports it. Not kept across batches: a
        key per sender and 15-minute block would crowd Odoo's shared ormcache on a backfill."""
        company_id, currency_id = key[0], key[5]
        env = self.sudo().env
        draft = Draft(self.sudo(), company_id=env["res.company"].browse(company_id),
                       currency_id=env["res.currency"].browse(currency_id), end_datetime=end,
                       country_code=country_code, party_id=party_id,
                       token_country_code=token_country_code, token_party_id=token_party_id)
        contract, reason = env["clearing.contract"]._find_for_cdr(draft)
        if contract:
            return contract.id, {"contract_id": contract.id, "partner_id": contract.partner_id.id,
                                 "match_state": "matched", "unmatched_reason": False}
        partner = env["clearing.cdr"]._match_unmatched_partner(
            company_id, country_code, party_id, token_country_code, token_party_id)
        return False, {"contract_id": False, "partner_id": partner.id,
                       "match_state": "unmatched", "unmatched_reason": reason}

    def _insert_prepared(self, vals_list):
        """Store prepared CDR values (validated, matched, priced) with one ``COPY`` and return
        the records: what ``create(vals_list)`` stores (the period assigned in the INSERT as
        ``create`` assigns it, then ``tools.bulk_insert.insert_rows``: defaults, stored
        computed fields, conversions, constraints, company checks, access rights, all derived
        from the model's fields). No mail.thread work: batch ingestion runs with tracking,
        logging and subscription disabled."""
        self.check_access("create")
        if not vals_list:
            return self.browse()
        assigned = self._assign_period_in_vals(vals_list)
        records = insert_rows(self, vals_list)
        if assigned:
            self._invalidate_period_figures()
        return records

    def _resolve_credit_links_batch(self, vals_list=None):
        """``_resolve_credit_links`` for many new CDRs in two queries (``vals_list``: the
        values the records were created from, to avoid reading them back)."""
        if not self:
            return
        self.flush_model(["company_id", "country_code", "party_id", "ocpi_id", "credit",
                          "credit_reference_id", "credited_cdr_id"])
        cr = self.env.cr
        if vals_list is None:
            vals_list = [{"company_id": c.company_id.id, "country_code": c.country_code,
                          "party_id": c.party_id, "ocpi_id": c.ocpi_id, "credit": c.credit,
                          "credit_reference_id": c.credit_reference_id} for c in self]
        rows = [(rid, v["company_id"], v["country_code"], v["party_id"], v["ocpi_id"],
                 bool(v.get("credit")), v.get("credit_reference_id") or False)
                for rid, v in zip(self.ids, vals_list)]
        links = {}  # credit id -> original id
        credits = [r for r in rows if r[5] and r[6]]
        if credits:
            companies = {r[1] for r in credits}
            cr.execute(  # by id only: see clearing.ingestion.log._existing_cdrs
                "SELECT id, company_id, country_code, party_id, ocpi_id FROM clearing_cdr "
                "WHERE ocpi_id = ANY(%s) ORDER BY id", (list({r[6] for r in credits}),))
            originals = {}
            for rid, comp, cc, party, oid in cr.fetchall():
                if comp not in companies:
                    continue
                originals.setdefault((comp, cc, party, oid), []).append(rid)
            for cid, comp, cc, party, _oid, _credit, ref in credits:
                ids = [r for r in originals.get((comp, cc, party, ref), []) if r != cid]
                if ids:
                    links[cid] = ids[0]
        plain = [r for r in rows if not r[5]]
        if plain:
            cr.execute(
                "SELECT id, company_id, country_code, party_id, credit_reference_id "
                "FROM clearing_cdr WHERE credit AND credited_cdr_id IS NULL "
                "AND company_id = ANY(%s) AND credit_reference_id = ANY(%s)",
                (list({r[1] for r in plain}), list({r[4] for r in plain})))
            waiting = {}
            for rid, comp, cc, party, ref in cr.fetchall():
                waiting.setdefault((comp, cc, party, ref), []).append(rid)
            for oid, comp, cc, party, ocpi_id, _credit, _ref in plain:
                for rid in waiting.get((comp, cc, party, ocpi_id), []):
                    links.setdefault(rid, oid)
        by_original = {}
        for credit_id, original_id in links.items():
            by_original.setdefault(original_id, []).append(credit_id)
        for original_id, credit_ids in by_original.items():
            self.browse(credit_ids).write({"credited_cdr_id": original_id})
