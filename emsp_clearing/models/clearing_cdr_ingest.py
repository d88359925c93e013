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
* prices and assigns the clearing period before storing, then stores the whole batch with one
  ``COPY`` of the rows (``_insert_prepared``: the column values the ORM ``create`` would store,
  without its per-record, per-field work) instead of a ``create`` and two ``UPDATE`` per CDR;
* links credit CDRs with two queries per batch.

A CDR that fails validation, matching or pricing is reported like the item-by-item path does
and does not spoil the batch; if storing the batch fails (a concurrent duplicate, a
constraint), its CDRs are stored one by one, each refused alone. ``tests/test_ocpi_batch.py`` checks that both paths store
the same values, column by column.
"""

import datetime as dt
import inspect
import io
import json
import types

import psycopg2
from psycopg2.extras import Json

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, float_repr, float_round

_BLOCK = 15 * 60  # seconds; every UTC offset in use is a multiple of 15 minutes


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value):
    """``value`` (as ``convert_to_column_insert`` gives it) in PostgreSQL COPY text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, Json):
        value = value.dumps(value.adapted)
    elif isinstance(value, float):
        return repr(value)
    elif not isinstance(value, str):
        return str(value)  # int, Decimal, date, datetime
    return value.translate(_COPY_ESCAPES)


def analyze_if_stale(cr, table, columns, min_rows=1000, ratio=0.2):
    """``ANALYZE`` ``columns`` of ``table`` when it changed by more than ``ratio`` (and
    ``min_rows``) since its statistics were last computed -- bulk ingestion outpaces autovacuum
    (or runs where it is off), and the look-ups by CDR id plan badly on stale statistics
    (measured: a sequential scan of 58k CDRs per batch of 500, 48 ms instead of < 1 ms). Only
    the columns those look-ups filter on: the whole of clearing_cdr takes 184 ms at 4k rows
    (wide JSON columns), these 13 ms. The counters lag one transaction; an ANALYZE of some
    columns does not reset ``n_mod_since_analyze``, so the count at our last ANALYZE is kept
    (per process: at worst each worker analyzes once more)."""
    cr.execute(SQL(
        """SELECT s.n_mod_since_analyze, c.reltuples
             FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE s.relid = %s::regclass""", table))
    row = cr.fetchone()
    if not row:
        return False
    key = (cr.dbname, table)
    changed = row[0] - _ANALYZED_AT.get(key, 0)
    if changed < 0:  # a full ANALYZE (autovacuum) reset the counter meanwhile
        changed = row[0]
    if changed <= max(min_rows, ratio * max(row[1], 0)):
        return False
    cr.execute(SQL("ANALYZE %s (%s)", SQL.identifier(table),
                   SQL(", ").join(SQL.identifier(c) for c in columns)))
    _ANALYZED_AT[key] = row[0]
    return True


_ANALYZED_AT = {}  # (database, table) -> n_mod_since_analyze at our last ANALYZE


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

    _kinds = {}  # (model class, name) -> the plain function to bind, or None

    def __getattr__(self, name):
        model = self.__dict__["_model"]
        if name in model._fields:
            raise AttributeError("batch ingestion draft has no value for field %r" % name)
        key = (type(model), name)
        kind = _Draft._kinds.get(key, _Draft)
        if kind is _Draft:
            static = inspect.getattr_static(type(model), name, None)
            if isinstance(static, (staticmethod, classmethod)) or not callable(static):
                kind = None
            else:
                kind = static
            _Draft._kinds[key] = kind
        if kind is None:
            return getattr(model, name)
        return types.MethodType(kind, self)


class ClearingCdr(models.Model):
    _inherit = "clearing.cdr"

    def init(self):
        super().init()
        # credits waiting for their original: looked up by every ingestion batch (a sequential
        # scan of all CDRs otherwise); only unlinked credit CDRs are in this index
        tools.create_index(self.env.cr, "clearing_cdr_open_credit_ref_idx", self._table,
                           ["company_id", "credit_reference_id"],
                           where="credit AND credited_cdr_id IS NULL")
        # One CDR per (id, sender, company), the sender compared case-insensitively (OCPI
        # CiString), as every look-up of "was this CDR received already?" (push, pull, file)
        # compares it; the same index serves look-ups by id alone. It replaces the
        # case-sensitive table constraint and plain index of earlier versions.
        cr = self.env.cr
        cr.execute(SQL("ALTER TABLE %s DROP CONSTRAINT IF EXISTS clearing_cdr_ocpi_id_uniq",
                       SQL.identifier(self._table)))
        cr.execute(SQL("DROP INDEX IF EXISTS clearing_cdr_ocpi_key_ci_idx"))
        tools.create_unique_index(
            cr, "clearing_cdr_ocpi_key_ci_uniq", self._table,
            ["ocpi_id", "upper(country_code)", "upper(party_id)", "company_id"])

    @api.model
    def _ingest_ocpi_batch(self, items, company=None, parsed=None, ids=None):
        """``parsed``: optional, ``ocpi.parse_cdr(item, strict=True)`` of each item, given by
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
        # _ingest_ocpi compare it), also within this batch
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
                vals_by_index[i] = self._vals_from_ocpi(
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
    def _existing_keys(self, company, keys):
        """The ``(COUNTRY, PARTY, id)`` keys of ``keys`` (``(country code, party id, id)``)
        already stored for ``company``, the sender upper-cased: compared case-insensitively
        (OCPI CiString), as the unique index compares it."""
        if not keys:
            return set()
        self.flush_model(["company_id", "country_code", "party_id", "ocpi_id"])
        keys = {(cc.upper(), party.upper(), oid) for cc, party, oid in keys}
        # by id only, the company checked here: see clearing.ingestion.log._existing_cdrs
        self.env.cr.execute(
            "SELECT upper(country_code), upper(party_id), ocpi_id, company_id FROM clearing_cdr "
            "WHERE ocpi_id = ANY(%s)", (list({k[2] for k in keys}),))
        return {row[:3] for row in self.env.cr.fetchall()
                if row[3] == company.id and row[:3] in keys}

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
            draft = _Draft(self, charging_periods=vals.get("charging_periods"),
                           start_datetime=vals["start_datetime"], end_datetime=end,
                           credit=vals.get("credit"), currency_id=currency,
                           raw_json=vals.get("raw_json"))
            out.update(type(self)._empty_pricing_vals(draft))
            return out
        tariff_dict, tariff = self._contract_tariff(contract, tariff_cache)
        result = self._price_ocpi(parsed, tariff, contract)
        draft = _Draft(self, currency_id=currency, credit=vals.get("credit"),
                       raw_json=vals.get("raw_json"), contract_id=contract,
                       charging_periods=vals.get("charging_periods"),
                       start_datetime=vals["start_datetime"], end_datetime=end)
        out.update(type(self)._pricing_vals(draft, result, tariff_dict))
        return out

    @api.model
    @tools.ormcache("code")
    def _currency_memo(self, code):
        """Id of the Odoo currency of ISO ``code`` (active or not, as ``_vals_from_ocpi``
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
        draft = _Draft(self.sudo(), company_id=env["res.company"].browse(company_id),
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

    # ------------------------------------------------------------------ set-based storage
    def _insert_prepared(self, vals_list):
        """Store prepared CDR values (validated, matched, priced) with one ``COPY`` (ids taken
        from the sequence first) and return the records.

        Stores exactly what ``create(vals_list)`` would: the same period assignment as
        ``clearing_cdr_period.create`` (inside the INSERT), defaults of the fields not given,
        stored computed fields, Monetary values rounded to the CDR currency and float values
        to their digits as the ORM converts them, Json as JSON, create/write uid and date.
        No mail.thread work (batch ingestion runs with tracking, logging and subscription
        disabled). Access rights and company consistency are checked as ``create`` does."""
        self.check_access("create")
        if not vals_list:
            return self.browse()
        env = self.env
        cr = env.cr
        # period of each session (what clearing.cdr.create/_assign_period put there)
        contracts = env["clearing.contract"]
        period_cache = {}
        assigned = False
        for vals in vals_list:
            if vals.get("contract_id") and vals.get("end_datetime") and "period_id" not in vals:
                vals["period_id"], vals["is_late"] = self._period_target(
                    contracts.browse(vals["contract_id"]),
                    fields.Datetime.to_datetime(vals["end_datetime"]), period_cache)
                assigned = True
        # columns: every stored column field but the log access ones and id
        columns = [f for name, f in self._fields.items()
                   if f.store and f.column_type and name not in (
                       "id", "create_uid", "create_date", "write_uid", "write_date")]
        given = set().union(*vals_list)
        missing = [f.name for f in columns if f.name not in given or any(
            f.name not in v for v in vals_list)]
        defaults = self.default_get(missing) if missing else {}
        to_compute = []
        for f in columns:
            if f.compute and f.name not in defaults:
                if f.name == "dispute_state":  # a new session has no dispute
                    defaults[f.name] = "none"
                elif f.name not in given:
                    to_compute.append(f)
        currency_ids = {v["currency_id"] for v in vals_list}
        # Monetary.convert_to_column_insert: float_repr(currency.round(value), decimal_places)
        currencies = {c.id: (c.rounding, c.decimal_places)
                      for c in env["res.currency"].browse(currency_ids)}

        # one function per column: value as the ORM converts it, in COPY text format
        def converter(field):
            if field.type == "monetary":
                memo = {}

                def money(value, vals):
                    key = (value, vals.get("currency_id"))
                    if key not in memo:
                        cur = currencies.get(key[1])
                        amount = float(value or 0.0)
                        memo[key] = _copy_text(float_repr(
                            float_round(amount, precision_rounding=cur[0]), cur[1])
                            if cur else amount)
                    return memo[key]
                return money
            if field.type in ("char", "text", "selection") and not field.translate \
                    and not getattr(field, "size", None):
                return lambda value, vals: (
                    "\\N" if value is None or value is False
                    else (value if type(value) is str else str(value)).translate(_COPY_ESCAPES))
            if field.type == "many2one":
                return lambda value, vals: str(value) if value else "\\N"
            if field.type == "boolean":
                return lambda value, vals: "t" if value else "f"
            if field.type == "json":
                # the same object (the applied tariff of a contract) is serialised once; the
                # objects stay referenced by vals_list meanwhile, so their ids stay unique
                memo = {}

                def as_json(value, vals):
                    if not value:
                        return "\\N"
                    key = id(value)
                    if key not in memo:
                        memo[key] = json.dumps(value).translate(_COPY_ESCAPES)
                    return memo[key]
                return as_json
            if field.type == "datetime":
                return lambda value, vals: (
                    str(value) if type(value) is dt.datetime
                    else _copy_text(field.convert_to_column_insert(value, self, vals)))
            if field.type == "float":
                memo = {}

                def number(value, vals):
                    if value not in memo:
                        memo[value] = _copy_text(field.convert_to_column_insert(value, self, vals))
                    return memo[value]
                return number
            return lambda value, vals: _copy_text(
                field.convert_to_column_insert(value, self, vals))

        convs = [(f.name, converter(f), f.name in defaults) for f in columns
                 if f not in to_compute]
        names = [name for name, _c, _d in convs] + [
            "create_uid", "create_date", "write_uid", "write_date"]
        log_access = "\t%s\t%s\t%s\t%s\n" % (env.uid, cr.now(), env.uid, cr.now())
        self.flush_model()
        # ids first, then one COPY of the rows (cheaper than a multi-row INSERT to build,
        # send and parse; same constraints, indexes and foreign key checks)
        # ids reserved beforehand (the OCPI push queue answered with them) or new ones
        ids = [vals.pop("id", None) for vals in vals_list]
        if None in ids:
            cr.execute("SELECT nextval(%s) FROM generate_series(1, %s)",
                       ("%s_id_seq" % self._table, ids.count(None)))
            fresh = iter([r[0] for r in cr.fetchall()])
            ids = [rid or next(fresh) for rid in ids]
        lines = []
        for rid, vals in zip(ids, vals_list):
            row = [str(rid)]
            for name, conv, has_default in convs:
                if name in vals:
                    row.append(conv(vals[name], vals))
                elif has_default:
                    row.append(conv(defaults[name], vals))
                else:
                    row.append("\\N")
            lines.append("\t".join(row))
            lines.append(log_access)
        cr._obj.copy_expert('COPY "%s" (id, %s) FROM STDIN' % (
            self._table, ", ".join('"%s"' % n for n in names)), io.StringIO("".join(lines)))
        records = self.browse(ids)
        # caches: the new rows, and the one2many fields pointing at clearing.cdr
        self.invalidate_model()
        for field in self._fields.values():
            if field.type == "many2one":
                for inverse in self.pool.field_inverses[field]:
                    env[inverse.model_name].invalidate_model([inverse.name])
        for field in to_compute:
            env.add_to_compute(field, records)
        records.modified([f.name for f in columns], create=True)
        records._validate_fields([f.name for f in columns])
        # _check_company of create: the only check_company field is contract_id
        for vals in vals_list:
            if vals.get("contract_id"):
                contract_company = contracts.browse(vals["contract_id"]).company_id
                if contract_company and contract_company.id != vals.get("company_id"):
                    raise UserError(_("Incompatible companies on records."))
        records.check_access("create")
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
