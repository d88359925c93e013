"""The bulk writer of batch ingestion: rows stored with one PostgreSQL ``COPY``, exactly as the
ORM ``create`` stores them, everything derived from the model's fields.

``insert_rows(model, vals_list)`` writes every stored column field of ``model``: the value given
in ``vals_list``, else the field's default (``default_get``, which also reads ``default_*``
context keys), converted as the ORM converts it (``convert_to_column_insert``: Monetary rounded
to the record's currency, Float to its digits, Json as JSON, ...). Stored computed fields that
are not given are computed as ``create`` computes them: ``precompute`` ones before the
``COPY``, the others by the ORM after it (``add_to_compute``), field
constraints are checked (``_validate_fields``), and, as ``create`` does for models with
``_check_company_auto``, the companies of every ``check_company`` field. So a field added to
the model later -- by this module or another -- is stored by the batch path as by ``create``
without touching this code. What it does not do: mail.thread tracking, logging and
subscriptions (callers run with them disabled), and ``create`` overrides (the caller prepares
what they would add, e.g. ``clearing.cdr._assign_period_in_vals``).
"""

import datetime as dt
import io
import json

from psycopg2.extras import Json

from odoo.tools import SQL, float_repr, float_round

LOG_ACCESS = ("create_uid", "create_date", "write_uid", "write_date")

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def copy_text(value):
    """``value`` (as ``convert_to_column_insert`` gives it) in PostgreSQL COPY text format."""
    if value is None:
        return _NULL
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


def _converter(model, field, currencies):
    """``f(value, vals)``: ``value`` of ``field`` in a row given by ``vals``, as the ORM
    converts it, in COPY text format. The common types are converted without the ORM's
    per-value work (same result); any other goes through ``convert_to_column_insert``."""
    def generic(value, vals):
        return copy_text(field.convert_to_column_insert(value, model, vals))

    if field.type == "monetary":
        currency_field = field.get_currency_field(model)
        memo = {}

        def money(value, vals):
            key = (value, vals.get(currency_field))
            if key not in memo:
                currency = currencies.get(key[1])
                if currency is None:  # the currency is not a value of the row
                    return generic(value, vals)
                amount = float_round(float(value or 0.0), precision_rounding=currency[0])
                memo[key] = copy_text(float_repr(amount, currency[1]))
            return memo[key]
        return money
    if field.type in ("char", "text", "selection") and not field.translate \
            and not getattr(field, "size", None):
        return lambda value, vals: (
            _NULL if value is None or value is False
            else (value if type(value) is str else str(value)).translate(_COPY_ESCAPES))
    if field.type == "many2one":
        return lambda value, vals: str(value) if value else _NULL
    if field.type == "boolean":
        return lambda value, vals: "t" if value else "f"
    if field.type == "json":
        # the same object (e.g. the applied tariff of a contract) is serialised once; the
        # objects stay referenced by vals_list meanwhile, so their ids stay unique
        memo = {}

        def as_json(value, vals):
            if not value:
                return _NULL
            key = id(value)
            if key not in memo:
                memo[key] = json.dumps(value).translate(_COPY_ESCAPES)
            return memo[key]
        return as_json
    if field.type == "datetime":
        return lambda value, vals: (
            str(value) if type(value) is dt.datetime else generic(value, vals))
    if field.type == "float":
        memo = {}

        def number(value, vals):
            if value not in memo:
                memo[value] = generic(value, vals)
            return memo[value]
        return number
    return generic


def _memo_key(names, vals, defaults):
    """Hashable key of the values of ``names`` in a row (given, else default), or None when a
    value is missing or cannot be hashed (the row is then handled alone)."""
    key = []
    for name in names:
        if name in vals:
            key.append(vals[name])
        elif name in defaults:
            key.append(defaults[name])
        else:
            return None
    key = tuple(key)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _precompute(model, fields_, vals_list, defaults):
    """Add the values of the ``precompute`` fields ``fields_`` to the rows of ``vals_list``
    that lack them, as ``create`` does (``_add_precomputed_values``), each computed on a new
    record given only what the field depends on (the row's value, else its default); rows
    alike in those values are computed once."""
    if not fields_:
        return
    roots = {dep.split(".")[0] for field in fields_ for dep in model.pool.field_depends[field]}
    roots = sorted(roots & set(model._fields))
    memo = {}
    for vals in vals_list:
        lacking = [field for field in fields_ if field.name not in vals]
        if not lacking:
            continue
        key = _memo_key(roots, vals, defaults)
        record = memo.get(key) if key is not None else None
        if record is None:
            record = model.new({name: vals[name] if name in vals else defaults[name]
                                for name in roots if name in vals or name in defaults})
            if key is not None:
                memo[key] = record
        for field in lacking:
            vals[field.name] = field.convert_to_write(record[field.name], model)


def _check_company(model, records, vals_list, defaults):
    """``_check_company`` of ``create`` on the new ``records`` (rows ``vals_list``): the ORM's
    check of every ``check_company`` field, run on one record per distinct (company, values of
    those fields) -- it depends on nothing else -- reading only those fields."""
    names = [name for name, field in model._fields.items()
             if field.relational and field.check_company]
    if not names:
        return
    names = [name for name in ("company_id", "company_ids") if name in model._fields] + names
    chosen = {}
    for record_id, vals in zip(records.ids, vals_list):
        key = _memo_key(names, vals, defaults)
        chosen.setdefault(key if key is not None else ("row", record_id), record_id)
    model.browse(list(chosen.values())).with_context(prefetch_fields=False)._check_company()


def stored_columns(model):
    """The fields of ``model`` stored in a column of its table, but ``id`` and log access."""
    return [field for name, field in model._fields.items()
            if field.store and field.column_type and name != "id" and name not in LOG_ACCESS]


def insert_rows(model, vals_list):
    """Store ``vals_list`` (one dict of field values per row; an ``id`` key uses that id,
    reserved from the sequence beforehand) with one ``COPY``, as ``model.create`` would store
    them, and return the new records. Access rights are checked as ``create`` checks them."""
    model.check_access("create")
    if not vals_list:
        return model.browse()
    env = model.env
    cr = env.cr
    columns = stored_columns(model)
    missing = [f.name for f in columns if any(f.name not in vals for vals in vals_list)]
    defaults = model.default_get(missing) if missing else {}
    # stored computed fields neither given nor defaulted, as create does: the ``precompute``
    # ones computed before the COPY, on new records holding the fields they depend on; the
    # others computed by the ORM after the COPY, for the rows that lack them
    computed = [f for f in columns if f.compute and f.name in missing and f.name not in defaults]
    _precompute(model, [f for f in computed if f.precompute], vals_list, defaults)
    to_compute = [f for f in computed if not f.precompute]
    currency_ids = set()
    for field in columns:
        if field.type == "monetary":
            name = field.get_currency_field(model)
            currency_ids.update(vals.get(name) for vals in vals_list)
            if defaults.get(name):
                currency_ids.add(defaults[name])
    currency_ids.discard(None)
    currency_ids.discard(False)
    currencies = {c.id: (c.rounding, c.decimal_places)
                  for c in env["res.currency"].browse(currency_ids)}
    convs = [(f.name, _converter(model, f, currencies)) for f in columns]
    names = [name for name, _conv in convs] + list(LOG_ACCESS)
    now = cr.now()
    log_access = "\t%s\t%s\t%s\t%s\n" % (env.uid, now, env.uid, now)
    model.flush_model()
    ids = [vals.pop("id", None) for vals in vals_list]
    if None in ids:
        cr.execute(SQL("SELECT nextval(%s) FROM generate_series(1, %s)",
                       "%s_id_seq" % model._table, ids.count(None)))
        fresh = iter([row[0] for row in cr.fetchall()])
        ids = [rid or next(fresh) for rid in ids]
    lines = []
    for rid, vals in zip(ids, vals_list):
        row = [str(rid)]
        for name, conv in convs:
            if name in vals:
                row.append(conv(vals[name], vals))
            elif name in defaults:
                row.append(conv(defaults[name], vals))
            else:
                row.append(_NULL)
        lines.append("\t".join(row))
        lines.append(log_access)
    cr._obj.copy_expert('COPY "%s" (id, %s) FROM STDIN' % (
        model._table, ", ".join('"%s"' % n for n in names)), io.StringIO("".join(lines)))
    records = model.browse(ids)
    # caches: the new rows, and the one2many fields pointing at the model
    model.invalidate_model()
    for field in model._fields.values():
        if field.type == "many2one":
            for inverse in model.pool.field_inverses[field]:
                env[inverse.model_name].invalidate_model([inverse.name])
    for field in to_compute:
        lacking = [rid for rid, vals in zip(ids, vals_list) if field.name not in vals]
        env.add_to_compute(field, model.browse(lacking))
    records.modified([f.name for f in columns], create=True)
    records._validate_fields([f.name for f in columns])
    if model._check_company_auto:
        _check_company(model, records, vals_list, defaults)
    records.check_access("create")
    return records


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
