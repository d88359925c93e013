"""CDRs from a CSV file (partners without OCPI) -> OCPI 2.2.1 CDR objects (plain dicts).

One row = one CDR. The first line is the header; columns may come in any order; ``,`` or ``;``
separated (detected from the header), UTF-8 (a BOM is accepted). Row numbers count like a
spreadsheet: the header is row 1, the first CDR row 2. Every problem is reported as
:class:`CsvRowError` naming the row and the column; a bad row never stops the other rows.

The dicts produced go through the same OCPI validation and idempotency as CDRs pushed or pulled
over OCPI (``clearing_core.ocpi.parse_cdr`` then the Odoo ingestion); ``column_for_path`` maps the
JSON path of such a validation error back to the CSV column.

Columns (``*`` = required; dates RFC 3339 UTC such as ``2026-01-31T22:15:00Z``; amounts and
volumes with a ``.`` decimal point):

=============================  ==============================================================
column                         OCPI CDR field
=============================  ==============================================================
country_code*, party_id*, id*  ``country_code``, ``party_id``, ``id`` (the CPO's identity + id)
start_date_time*               ``start_date_time``
end_date_time*                 ``end_date_time``
session_id                     ``session_id``
token_uid*                     ``cdr_token.uid``
token_type*                    ``cdr_token.type`` (RFID, APP_USER, AD_HOC_USER, OTHER)
token_contract_id*             ``cdr_token.contract_id``
token_country_code*            ``cdr_token.country_code`` (the eMSP)
token_party_id*                ``cdr_token.party_id`` (the eMSP)
auth_method*                   ``auth_method`` (AUTH_REQUEST, COMMAND, WHITELIST)
authorization_reference        ``authorization_reference``
location_id*                   ``cdr_location.id``
location_name                  ``cdr_location.name``
location_address*              ``cdr_location.address``
location_city*                 ``cdr_location.city``
location_postal_code           ``cdr_location.postal_code``
location_state                 ``cdr_location.state``
location_country*              ``cdr_location.country`` (ISO 3166 alpha-3)
location_latitude*             ``cdr_location.coordinates.latitude`` (text, e.g. ``52.090736``)
location_longitude*            ``cdr_location.coordinates.longitude``
evse_uid*                      ``cdr_location.evse_uid``
evse_id*                       ``cdr_location.evse_id``
connector_id*                  ``cdr_location.connector_id``
connector_standard*            ``cdr_location.connector_standard`` (e.g. IEC_62196_T2)
connector_format*              ``cdr_location.connector_format`` (SOCKET, CABLE)
connector_power_type*          ``cdr_location.connector_power_type`` (AC_1_PHASE, ..., DC)
meter_id                       ``meter_id``
currency*                      ``currency`` (ISO 4217)
total_cost_excl_vat*           ``total_cost.excl_vat``
total_cost_incl_vat            ``total_cost.incl_vat``
total_fixed_cost_excl_vat, total_fixed_cost_incl_vat            ``total_fixed_cost``
total_energy*                  ``total_energy`` (kWh)
total_energy_cost_excl_vat, total_energy_cost_incl_vat          ``total_energy_cost``
total_time*                    ``total_time`` (hours)
total_time_cost_excl_vat, total_time_cost_incl_vat              ``total_time_cost``
total_parking_time             ``total_parking_time`` (hours)
total_parking_cost_excl_vat, total_parking_cost_incl_vat        ``total_parking_cost``
total_reservation_cost_excl_vat, total_reservation_cost_incl_vat ``total_reservation_cost``
tariff_id                      ``charging_periods[0].tariff_id``
charging_periods_json          ``charging_periods`` given as a JSON array (replaces the default)
remark                         ``remark``
invoice_reference_id           ``invoice_reference_id``
credit                         ``credit`` (true/false, 1/0, yes/no; empty = absent)
credit_reference_id            ``credit_reference_id`` (the id of the credited CDR)
home_charging_compensation     ``home_charging_compensation`` (true/false)
last_updated                   ``last_updated`` (default: ``end_date_time``, so that importing
                               the same file twice yields the very same CDR)
=============================  ==============================================================

Without ``charging_periods_json`` the CDR gets one charging period starting at
``start_date_time`` with the dimensions ``ENERGY`` = total_energy, ``TIME`` = total_time and,
when given and not zero, ``PARKING_TIME`` = total_parking_time.
"""

import csv
import io
from decimal import Decimal, InvalidOperation

from .. import json_text

REQUIRED = (
    "country_code", "party_id", "id", "start_date_time", "end_date_time",
    "token_uid", "token_type", "token_contract_id", "token_country_code", "token_party_id",
    "auth_method", "location_id", "location_address", "location_city", "location_country",
    "location_latitude", "location_longitude", "evse_uid", "evse_id", "connector_id",
    "connector_standard", "connector_format", "connector_power_type", "currency",
    "total_cost_excl_vat", "total_energy", "total_time",
)
_PRICES = ("total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost",
           "total_parking_cost", "total_reservation_cost")
OPTIONAL = (
    "session_id", "authorization_reference", "location_name", "location_postal_code",
    "location_state", "meter_id", "total_cost_incl_vat",
    "total_fixed_cost_excl_vat", "total_fixed_cost_incl_vat",
    "total_energy_cost_excl_vat", "total_energy_cost_incl_vat",
    "total_time_cost_excl_vat", "total_time_cost_incl_vat", "total_parking_time",
    "total_parking_cost_excl_vat", "total_parking_cost_incl_vat",
    "total_reservation_cost_excl_vat", "total_reservation_cost_incl_vat",
    "tariff_id", "charging_periods_json", "remark", "invoice_reference_id", "credit",
    "credit_reference_id", "home_charging_compensation", "last_updated",
)
COLUMNS = REQUIRED + OPTIONAL

# column -> (path in the CDR dict as a tuple of keys)
_STRING_FIELDS = {
    "country_code": ("country_code",), "party_id": ("party_id",), "id": ("id",),
    "start_date_time": ("start_date_time",), "end_date_time": ("end_date_time",),
    "session_id": ("session_id",),
    "token_uid": ("cdr_token", "uid"), "token_type": ("cdr_token", "type"),
    "token_contract_id": ("cdr_token", "contract_id"),
    "token_country_code": ("cdr_token", "country_code"),
    "token_party_id": ("cdr_token", "party_id"),
    "auth_method": ("auth_method",), "authorization_reference": ("authorization_reference",),
    "location_id": ("cdr_location", "id"), "location_name": ("cdr_location", "name"),
    "location_address": ("cdr_location", "address"), "location_city": ("cdr_location", "city"),
    "location_postal_code": ("cdr_location", "postal_code"),
    "location_state": ("cdr_location", "state"), "location_country": ("cdr_location", "country"),
    "location_latitude": ("cdr_location", "coordinates", "latitude"),
    "location_longitude": ("cdr_location", "coordinates", "longitude"),
    "evse_uid": ("cdr_location", "evse_uid"), "evse_id": ("cdr_location", "evse_id"),
    "connector_id": ("cdr_location", "connector_id"),
    "connector_standard": ("cdr_location", "connector_standard"),
    "connector_format": ("cdr_location", "connector_format"),
    "connector_power_type": ("cdr_location", "connector_power_type"),
    "meter_id": ("meter_id",), "currency": ("currency",), "remark": ("remark",),
    "invoice_reference_id": ("invoice_reference_id",),
    "credit_reference_id": ("credit_reference_id",), "last_updated": ("last_updated",),
}
_NUMBER_FIELDS = {"total_energy": ("total_energy",), "total_time": ("total_time",),
                  "total_parking_time": ("total_parking_time",)}
for _p in _PRICES:
    _NUMBER_FIELDS[_p + "_excl_vat"] = (_p, "excl_vat")
    _NUMBER_FIELDS[_p + "_incl_vat"] = (_p, "incl_vat")
_BOOL_FIELDS = {"credit": ("credit",), "home_charging_compensation": ("home_charging_compensation",)}

_PATH_TO_COLUMN = {}
for _fields in (_STRING_FIELDS, _NUMBER_FIELDS, _BOOL_FIELDS):
    for _col, _keys in _fields.items():
        _PATH_TO_COLUMN["$." + ".".join(_keys)] = _col


class CsvRowError(ValueError):
    """``row`` (1 = header), ``column`` (CSV column name, or ``None`` for the whole row),
    ``message``; ``str(e) == "row R, column C: message"``."""

    def __init__(self, row, column, message):
        self.row = row
        self.column = column
        self.message = message
        where = "row %d" % row + (", column %s" % column if column else "")
        super().__init__("%s: %s" % (where, message))


def column_for_path(path):
    """The CSV column holding the CDR field at JSON ``path`` (``$.cdr_token.uid`` ->
    ``token_uid``); ``charging_periods_json`` for paths inside the charging periods; else None."""
    if not path:
        return None
    if path in _PATH_TO_COLUMN:
        return _PATH_TO_COLUMN[path]
    if path.startswith("$.charging_periods"):
        return "charging_periods_json"
    # $.total_cost -> the excl_vat column (the one that is required when the object is)
    for col, keys in _NUMBER_FIELDS.items():
        if path == "$." + keys[0] and len(keys) == 2:
            return keys[0] + "_excl_vat"
    for prefix in ("$.cdr_location.coordinates", "$.cdr_location", "$.cdr_token"):
        if path == prefix:
            return {"$.cdr_location.coordinates": "location_latitude",
                    "$.cdr_location": "location_id", "$.cdr_token": "token_uid"}[prefix]
    return None


def _put(d, keys, value):
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def _number(text):
    try:
        n = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not n.is_finite():
        return None
    if n == n.to_integral_value() and "." not in text and "e" not in text.lower():
        return int(n)
    f = float(n)
    # JSON numbers travel as floats; refuse what a float would silently change
    return f if Decimal(repr(f)) == n else None


_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


def _detect_dialect(first_line):
    return ";" if first_line.count(";") > first_line.count(",") else ","


def read_cdrs(source):
    """Parse CSV text/bytes/file-object -> ``(cdrs, errors)``.

    ``cdrs``: list of ``(row_number, cdr_dict)`` for the rows without CSV-level errors;
    ``errors``: list of :class:`CsvRowError`. A header problem (unknown or missing required
    column, duplicate column) is reported on row 1 and no row is read.
    """
    if hasattr(source, "read"):
        source = source.read()
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            return [], [CsvRowError(1, None, "file is not UTF-8 text (%s)" % e)]
    elif source.startswith("\ufeff"):
        source = source[1:]
    first = source.split("\n", 1)[0]
    if not first.strip():
        return [], [CsvRowError(1, None, "empty file: the first line must be the header")]
    reader = csv.reader(io.StringIO(source, newline=""), delimiter=_detect_dialect(first))
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as e:
        return [], [CsvRowError(1, None, "unreadable header: %s" % e)]
    errors = []
    seen = set()
    for h in header:
        if h in seen:
            errors.append(CsvRowError(1, h, "column given twice"))
        seen.add(h)
        if h not in COLUMNS:
            errors.append(CsvRowError(1, h or "(empty)", "unknown column (see the documented header)"))
    for col in REQUIRED:
        if col not in seen:
            errors.append(CsvRowError(1, col, "required column is missing"))
    if errors:
        return [], errors
    cdrs = []
    rownum = 1
    while True:
        rownum += 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            errors.append(CsvRowError(rownum, None, "unreadable CSV line: %s" % e))
            continue
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(header):
            errors.append(CsvRowError(rownum, None, "%d values for %d columns" % (len(values), len(header))))
            continue
        row_errors = []
        cdr = _row_to_cdr(dict(zip(header, values)), rownum, row_errors)
        if row_errors:
            errors.extend(row_errors)
        else:
            cdrs.append((rownum, cdr))
    return cdrs, errors


def _row_to_cdr(row, rownum, errors):
    cdr = {}
    for col, raw in row.items():
        text = raw.strip()
        if not text:
            if col in REQUIRED:
                errors.append(CsvRowError(rownum, col, "required value is empty"))
            continue
        if col in _STRING_FIELDS:
            _put(cdr, _STRING_FIELDS[col], text)
        elif col in _NUMBER_FIELDS:
            n = _number(text)
            if n is None:
                errors.append(CsvRowError(rownum, col, "must be a number with a '.' decimal point, got %r" % text))
            else:
                _put(cdr, _NUMBER_FIELDS[col], n)
        elif col in _BOOL_FIELDS:
            low = text.lower()
            if low in _TRUE:
                _put(cdr, _BOOL_FIELDS[col], True)
            elif low in _FALSE:
                _put(cdr, _BOOL_FIELDS[col], False)
            else:
                errors.append(CsvRowError(rownum, col, "must be true or false, got %r" % text))
        elif col == "charging_periods_json":
            try:
                periods = json_text.loads(text)
            except ValueError as e:
                errors.append(CsvRowError(rownum, col, "not valid JSON: %s" % e))
                continue
            if not isinstance(periods, list):
                errors.append(CsvRowError(rownum, col, "must be a JSON array of charging periods"))
                continue
            cdr["charging_periods"] = periods
        elif col == "tariff_id":
            pass  # used below
    if errors:
        return None
    for price in _PRICES:
        p = cdr.get(price)
        if p is not None and "excl_vat" not in p:
            errors.append(CsvRowError(rownum, price + "_excl_vat",
                                      "required when %s_incl_vat is given" % price))
    if errors:
        return None
    if "charging_periods" not in cdr:
        dims = [{"type": "ENERGY", "volume": cdr["total_energy"]},
                {"type": "TIME", "volume": cdr["total_time"]}]
        if cdr.get("total_parking_time"):
            dims.append({"type": "PARKING_TIME", "volume": cdr["total_parking_time"]})
        period = {"start_date_time": cdr["start_date_time"], "dimensions": dims}
        if row.get("tariff_id", "").strip():
            period["tariff_id"] = row["tariff_id"].strip()
        cdr["charging_periods"] = [period]
    elif row.get("tariff_id", "").strip():
        errors.append(CsvRowError(rownum, "tariff_id", "give the tariff_id inside charging_periods_json"))
        return None
    cdr.setdefault("last_updated", cdr["end_date_time"])
    return cdr


def template_header(delimiter=","):
    """The documented header line (required columns first), for a downloadable template."""
    return delimiter.join(COLUMNS)
