"""OCPI 2.2.1 CDR and Tariff parsing/validation into immutable named tuples.

``parse_cdr(data, strict=True)`` and ``parse_tariff(data, strict=True)`` take the decoded JSON
object (``dict``; numbers may be ``int``, ``float`` or ``Decimal`` -- floats are converted via
their shortest ``repr`` so ``0.1`` stays ``Decimal('0.1')``) and return ``Cdr`` / ``Tariff``.  Every problem raises
``OcpiValidationError`` whose ``path`` is the JSON path of the bad field.

``strict=True`` validates the whole object as OCPI 2.2.1 (release-2.2.1-bugfixes) defines it.
``strict=False`` only requires what pricing needs (CDR: start/end date-times, currency,
charging periods; Tariff: elements) but still type-checks every field that is present.
"""

import marshal
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import NamedTuple

from . import currencies
from .errors import OcpiValidationError

__all__ = [
    "Price", "TaxAmount", "CdrDimension", "ChargingPeriod", "CdrToken", "GeoLocation", "CdrLocation", "Cdr",
    "DisplayText", "PriceComponent", "TariffRestrictions", "TariffElement", "Tariff",
    "parse_cdr", "parse_tariff", "parse_datetime", "V221", "V230", "VERSIONS", "negotiate",
    "detect_cdr_version", "detect_tariff_version", "InvoiceReconciliationRecord",
    "parse_invoice_reconciliation_record", "read_price", "price_to_ocpi", "tariff_dict_to_version", "cdr_dict_to_version", "TAX_INCLUDED",
    "AUTH_METHODS", "TOKEN_TYPES", "CDR_DIMENSION_TYPES", "CDR_SESSION_ONLY_DIMENSIONS",
    "CONNECTOR_TYPES", "CONNECTOR_FORMATS", "POWER_TYPES", "TARIFF_DIMENSION_TYPES",
    "TARIFF_TYPES", "DAYS_OF_WEEK", "RESERVATION_RESTRICTION_TYPES",
]

UTC = timezone.utc

V221 = "2.2.1"
V230 = "2.3.0"
VERSIONS = (V230, V221)  # the versions we speak, highest first

# --------------------------------------------------------------------------------------------
# Enumerations (OCPI 2.2.1)
# --------------------------------------------------------------------------------------------
AUTH_METHODS = frozenset({"AUTH_REQUEST", "COMMAND", "WHITELIST"})
TOKEN_TYPES = frozenset({"AD_HOC_USER", "APP_USER", "OTHER", "RFID"})
CDR_DIMENSION_TYPES = frozenset({
    "CURRENT", "ENERGY", "ENERGY_EXPORT", "ENERGY_IMPORT", "MAX_CURRENT", "MIN_CURRENT",
    "MAX_POWER", "MIN_POWER", "PARKING_TIME", "POWER", "RESERVATION_TIME", "STATE_OF_CHARGE",
    "TIME",
})
# "Some of these values are not useful for CDRs, and SHALL therefor only be used in Sessions"
CDR_SESSION_ONLY_DIMENSIONS = frozenset({
    "CURRENT", "ENERGY_EXPORT", "ENERGY_IMPORT", "POWER", "STATE_OF_CHARGE",
})
# Dimensions whose volume may be negative (the spec describes negative values for them).
# ENERGY may be negative in OCPI (V2G export); the clearing engine refuses it on purpose
# because it cannot price energy fed back into the grid (see README).
_SIGNED_DIMENSIONS = frozenset({"CURRENT", "MIN_CURRENT", "MIN_POWER", "POWER"})
CONNECTOR_TYPES = frozenset({
    "CHADEMO", "CHAOJI", "DOMESTIC_A", "DOMESTIC_B", "DOMESTIC_C", "DOMESTIC_D", "DOMESTIC_E",
    "DOMESTIC_F", "DOMESTIC_G", "DOMESTIC_H", "DOMESTIC_I", "DOMESTIC_J", "DOMESTIC_K",
    "DOMESTIC_L", "DOMESTIC_M", "DOMESTIC_N", "DOMESTIC_O", "GBT_AC", "GBT_DC",
    "IEC_60309_2_single_16", "IEC_60309_2_three_16", "IEC_60309_2_three_32",
    "IEC_60309_2_three_64", "IEC_62196_T1", "IEC_62196_T1_COMBO", "IEC_62196_T2",
    "IEC_62196_T2_COMBO", "IEC_62196_T3A", "IEC_62196_T3C", "NEMA_5_20", "NEMA_6_30",
    "NEMA_6_50", "NEMA_10_30", "NEMA_10_50", "NEMA_14_30", "NEMA_14_50", "PANTOGRAPH_BOTTOM_UP",
    "PANTOGRAPH_TOP_DOWN", "TESLA_R", "TESLA_S",
})
CONNECTOR_FORMATS = frozenset({"SOCKET", "CABLE"})
POWER_TYPES = frozenset({"AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"})
TARIFF_DIMENSION_TYPES = frozenset({"ENERGY", "FLAT", "PARKING_TIME", "TIME"})
TARIFF_TYPES = frozenset({
    "AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR",
})
DAYS_OF_WEEK = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_DAYS_SET = frozenset(DAYS_OF_WEEK)
RESERVATION_RESTRICTION_TYPES = frozenset({"RESERVATION", "RESERVATION_EXPIRES"})
TAX_INCLUDED = frozenset({"YES", "NO", "N/A"})  # 2.3.0 TaxIncluded


# --------------------------------------------------------------------------------------------
# The OCPI objects: immutable named tuples (built in one C call; attributes by name).
# ``raw`` (the input dict) and ``ChargingPeriod.volumes`` (built by the parser) are left out
# of the repr.
# --------------------------------------------------------------------------------------------
# A NamedTuple's generated constructor is a Python function.  The objects built for every CDR
# (the CDR and its parts; prices, priced lines and results in pricing) are built with
# ``_new(Class, values)``: ``tuple.__new__``, one C call, what ``NamedTuple._make`` calls.
# ``values`` are every field's, in field order (defaults are not applied).
_new = tuple.__new__


def _repr_without_last(self):
    shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields[:-1], self))
    return f"{type(self).__name__}({shown})"


class TaxAmount(NamedTuple):
    """OCPI 2.3.0 TaxAmount: one tax of a Price, as the sender stated it."""
    name: str
    account_number: str | None
    percentage: Decimal | None
    amount: Decimal


class Price(NamedTuple):
    """A cost, whatever the version: 2.2.1 ``{excl_vat, incl_vat}``; 2.3.0 ``{before_taxes,
    taxes}`` reads as ``excl_vat`` = before_taxes, ``incl_vat`` = before_taxes + the tax
    amounts (None when ``taxes`` is absent), ``taxes`` = the TaxAmounts as sent (None in
    2.2.1).  A 2.3.0 PriceLimit reads as ``excl_vat`` = before_taxes, ``incl_vat`` =
    after_taxes."""
    excl_vat: Decimal
    incl_vat: Decimal | None = None
    taxes: tuple | None = None


class CdrDimension(NamedTuple):
    type: str
    volume: Decimal


class ChargingPeriod(NamedTuple):
    start_date_time: datetime
    dimensions: tuple
    tariff_id: str | None = None
    # {dimension type: volume}, built by the parser (None when constructed by hand).
    volumes: dict | None = None

    __repr__ = _repr_without_last


class CdrToken(NamedTuple):
    uid: str | None
    type: str | None
    contract_id: str | None
    country_code: str | None
    party_id: str | None


class GeoLocation(NamedTuple):
    latitude: str | None
    longitude: str | None


class CdrLocation(NamedTuple):
    id: str | None
    name: str | None
    address: str | None
    city: str | None
    postal_code: str | None
    state: str | None
    country: str | None
    coordinates: GeoLocation | None
    evse_uid: str | None
    evse_id: str | None
    connector_id: str | None
    connector_standard: str | None
    connector_format: str | None
    connector_power_type: str | None


class DisplayText(NamedTuple):
    language: str
    text: str


class PriceComponent(NamedTuple):
    type: str
    price: Decimal
    vat: Decimal | None
    step_size: int


class TariffRestrictions(NamedTuple):
    start_time: str | None = None
    end_time: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: tuple = ()
    reservation: str | None = None


class TariffElement(NamedTuple):
    price_components: tuple
    restrictions: TariffRestrictions | None = None


class Tariff(NamedTuple):
    country_code: str | None
    party_id: str | None
    id: str | None
    currency: str | None
    type: str | None
    tariff_alt_text: tuple
    tariff_alt_url: str | None
    min_price: Price | None
    max_price: Price | None
    elements: tuple
    start_date_time: datetime | None
    end_date_time: datetime | None
    energy_mix: dict | None
    last_updated: datetime | None
    # 2.3.0 TaxIncluded (YES / NO / N/A); None: 2.2.1 (prices before VAT, as NO)
    tax_included: str | None = None
    raw: dict | None = None

    __repr__ = _repr_without_last


class Cdr(NamedTuple):
    country_code: str | None
    party_id: str | None
    id: str | None
    start_date_time: datetime
    end_date_time: datetime
    session_id: str | None
    cdr_token: CdrToken | None
    auth_method: str | None
    authorization_reference: str | None
    cdr_location: CdrLocation | None
    meter_id: str | None
    currency: str
    tariffs: tuple
    charging_periods: tuple
    signed_data: dict | None
    total_cost: Price | None
    total_fixed_cost: Price | None
    total_energy: Decimal | None
    total_energy_cost: Price | None
    total_time: Decimal | None
    total_time_cost: Price | None
    total_parking_time: Decimal | None
    total_parking_cost: Price | None
    total_reservation_cost: Price | None
    remark: str | None
    invoice_reference_id: str | None
    credit: bool | None
    credit_reference_id: str | None
    home_charging_compensation: bool | None
    last_updated: datetime | None
    raw: dict | None = None

    __repr__ = _repr_without_last




# --------------------------------------------------------------------------------------------
# Field checks.  Each kind of field is checked by one function of the value, which raises
# _BadValue with the message; _field (a field of an object) adds the JSON path.  Paths are
# only formatted when an error is raised.
# --------------------------------------------------------------------------------------------
def _show(value):
    """Short JSON-like rendering of a bad value for error messages."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        out = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return out.encode("unicode_escape").decode("ascii") if not out.isprintable() else out
    return str(value)


class _BadValue(Exception):
    """Internal: a value is invalid.  ``args[0]`` is the message; ``sub`` the key path below
    the checked value when the problem is inside it (``excl_vat`` of a Price), else None."""

    def __init__(self, message, sub=None):
        super().__init__(message)
        self.sub = sub


def _fail(path, message):
    raise OcpiValidationError(path, message)


def _missing_message(d, key):
    return "required field is null" if key in d else "required field is missing"


def _get(d, key, path, required):
    """Value of ``key`` in ``d``; ``None`` when absent/null and not required."""
    v = d.get(key)
    if v is None and required:
        _fail(f"{path}.{key}", _missing_message(d, key))
    return v


def _member(d, key, required, check, arg):
    """``check(d[key], arg)`` inside a value being checked (a Price's amounts): None when
    absent/null and not required; a problem raises _BadValue whose ``sub`` starts with ``key``."""
    v = d.get(key)
    if v is None:
        if required:
            raise _BadValue(_missing_message(d, key), key)
        return None
    try:
        return check(v, arg)
    except _BadValue as exc:
        raise _BadValue(exc.args[0], key if exc.sub is None else f"{key}.{exc.sub}") from None


def _field(d, key, path, required, check, arg=None):
    """``check(d[key], arg)``, or None when absent/null and not required; a problem raises
    OcpiValidationError at ``path.key`` (or below it)."""
    v = d.get(key)
    if v is None:
        if required:
            _fail(f"{path}.{key}", _missing_message(d, key))
        return None
    try:
        return check(v, arg)
    except _BadValue as exc:
        where = f"{path}.{key}" if exc.sub is None else f"{path}.{key}.{exc.sub}"
        raise OcpiValidationError(where, exc.args[0]) from None


def _check_str(v, spec):
    """String rules: ``spec`` is (max length, CiString, the ``fullmatch`` of a regex or None, what
    the regex means): see ``_str``."""
    maxlen, ci, fullmatch, meaning = spec
    if type(v) is not str:
        raise _BadValue(f"must be a string, got {_show(v)}")
    if len(v) > maxlen:
        raise _BadValue(f"must be at most {maxlen} characters, got {len(v)}")
    if not v.isprintable():
        raise _BadValue(f"must contain printable characters only, got {_show(v)}")
    if ci and not v.isascii():
        raise _BadValue(f"must be printable ASCII (CiString), got {_show(v)}")
    if fullmatch is not None and fullmatch(v) is None:
        raise _BadValue(f"must {meaning}, got {_show(v)}")
    return v


def _check_enum(v, spec):
    """Enumeration: ``spec`` is (values, name of the OCPI type)."""
    values, what = spec
    if type(v) is not str:
        raise _BadValue(f"must be a string ({what}), got {_show(v)}")
    if v not in values:
        raise _BadValue(f"must be a valid {what}, got {_show(v)}")
    return v


def _check_bool(v, _arg):
    if type(v) is not bool:
        raise _BadValue(f"must be a boolean, got {_show(v)}")
    return v


_to_decimal = currencies.to_decimal


def _check_number(v, minimum):
    """A JSON number (int, float, Decimal; not bool, NaN or infinite) as a Decimal, >= minimum
    unless ``minimum`` is None."""
    n = _to_decimal(v)
    if n is None:
        raise _BadValue(f"must be a number, got {_show(v)}")
    if minimum is not None and v < minimum:  # v: the number n was read from (same order, cheaper)
        raise _BadValue(f"must be >= {minimum}, got {_show(v)}")
    return n


def _check_int(v, minimum):
    """An integral JSON number (``60``, ``60.0``) as an int, >= minimum unless it is None."""
    if type(v) is int:
        n = v
    else:
        dv = _to_decimal(v)
        if dv is None or dv != dv.to_integral_value():
            raise _BadValue(f"must be an integer, got {_show(v)}")
        n = int(dv)
    if minimum is not None and n < minimum:
        raise _BadValue(f"must be >= {minimum}, got {_show(v)}")
    return n


def _check_object(v, _arg):
    if type(v) is not dict:
        raise _BadValue(f"must be an object, got {_show(v)}")
    return v


def _check_list(v, non_empty):
    if type(v) is not list:
        raise _BadValue(f"must be an array, got {_show(v)}")
    if non_empty and not v:
        raise _BadValue("must contain at least one element")
    return v


def _check_currency(v, _arg):
    if type(v) is not str:
        raise _BadValue(f"must be a string (ISO 4217 code), got {_show(v)}")
    if v not in currencies.MINOR_UNITS:
        raise _BadValue(f"must be a known ISO 4217 currency code, got {_show(v)}")
    return v


def _check_price(v, sign):
    """A Price object; ``sign`` is 1 (amounts >= 0) or -1 (<= 0: total_cost of a credit CDR)."""
    _check_object(v, None)
    minimum = 0 if sign > 0 else None
    ex = _member(v, "excl_vat", True, _check_number, minimum)
    inc = _member(v, "incl_vat", False, _check_number, minimum)
    if sign < 0:
        if ex > 0:
            raise _BadValue(f"must be <= 0 on a credit CDR, got {_show(v['excl_vat'])}", "excl_vat")
        if inc is not None and inc > 0:
            raise _BadValue(f"must be <= 0 on a credit CDR, got {_show(v['incl_vat'])}", "incl_vat")
    return _new(Price, (ex, inc, None))


def _check_tax_amounts(v, minimum):
    """2.3.0 ``taxes`` of a Price: a list of TaxAmount objects (``amount`` >= ``minimum``
    unless None); a problem raises _BadValue whose ``sub`` starts with ``taxes``."""
    if type(v) is not list:
        raise _BadValue(f"must be an array, got {_show(v)}", "taxes")
    out = []
    for i, t in enumerate(v):
        where = f"taxes[{i}]"
        if type(t) is not dict:
            raise _BadValue(f"must be an object, got {_show(t)}", where)
        try:
            name = _member(t, "name", True, _check_str, _TAX_NAME)
            account = _member(t, "account_number", False, _check_str, _TAX_NAME)
            percentage = _member(t, "percentage", False, _check_number, 0)
            amount = _member(t, "amount", True, _check_number, minimum)
        except _BadValue as exc:
            raise _BadValue(exc.args[0], f"{where}.{exc.sub}") from None
        out.append(TaxAmount(name, account, percentage, amount))
    return tuple(out)


def _check_price_230(v, sign):
    """A 2.3.0 Price ``{before_taxes, taxes}``; ``sign`` as for ``_check_price``.  The tax
    amounts of a credit CDR's total_cost are <= 0 like its before_taxes."""
    _check_object(v, None)
    minimum = 0 if sign > 0 else None
    before = _member(v, "before_taxes", True, _check_number, minimum)
    taxes = v.get("taxes")
    if taxes is not None:
        taxes = _check_tax_amounts(taxes, minimum)
    if sign < 0:
        if before > 0:
            raise _BadValue(f"must be <= 0 on a credit CDR, got {_show(v['before_taxes'])}", "before_taxes")
        for i, t in enumerate(taxes or ()):
            if t.amount > 0:
                raise _BadValue(f"must be <= 0 on a credit CDR, got {t.amount}", f"taxes[{i}].amount")
    if taxes is None:
        return Price(before, None, None)
    return Price(before, before + sum(t.amount for t in taxes), taxes)


def _check_price_limit(v, _arg):
    """A 2.3.0 PriceLimit ``{before_taxes, after_taxes?}`` (both >= 0)."""
    _check_object(v, None)
    before = _member(v, "before_taxes", True, _check_number, 0)
    after = _member(v, "after_taxes", False, _check_number, 0)
    return Price(before, after)


def _item_object(v, path):
    if type(v) is not dict:
        _fail(path, f"must be an object, got {_show(v)}")
    return v


def _str(maxlen, ci=False, regex=None, meaning=None):
    """The spec of a string field for ``_check_str``: the whole string must match ``regex``."""
    return (maxlen, ci, re.compile(regex).fullmatch if regex is not None else None, meaning)


_COUNTRY2 = _str(2, True, r"[A-Za-z]{2}", "be an ISO 3166-1 alpha-2 country code (2 letters)")
_PARTY = _str(3, True, r"[A-Za-z0-9]{3}", "be a 3-character party id (letters/digits)")
_COUNTRY3 = _str(3, False, r"[A-Z]{3}", "be an ISO 3166-1 alpha-3 country code")
_LATITUDE = _str(10, False, r"-?[0-9]{1,2}\.[0-9]{5,7}", "match -?[0-9]{1,2}\\.[0-9]{5,7}")
_LONGITUDE = _str(11, False, r"-?[0-9]{1,3}\.[0-9]{5,7}", "match -?[0-9]{1,3}\\.[0-9]{5,7}")
_TIME_OF_DAY = _str(5, False, r"([0-1][0-9]|2[0-3]):[0-5][0-9]",
                    "be a time of day HH:MM (24h, leading zeros)")
_DATE = _str(10, False, r"[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])", "be a date YYYY-MM-DD")
_LANGUAGE_STRICT = _str(2, False, r"[a-z]{2}", "be an ISO 639-1 language code")
_LANGUAGE_LENIENT = _str(2)
_TAX_NAME = _str(255)


def _check_date(v, _arg):
    """A date restriction "YYYY-MM-DD" that exists in the calendar."""
    _check_str(v, _DATE)
    try:
        date.fromisoformat(v)
    except ValueError:
        raise _BadValue(f"is not a valid calendar date, got {_show(v)}") from None
    return v


# OCPI DateTime: RFC 3339 restricted to UTC, 'Z' optional, fractional seconds optional (ASCII
# digits).  An offset, when there is one, is the last 6 characters ("+02:00").
_DT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})?")


def _check_datetime(value, strict):
    """An OCPI DateTime string as an aware UTC datetime (see ``parse_datetime``)."""
    if type(value) is not str:
        raise _BadValue(f"must be a date-time string, got {_show(value)}")
    if _DT_RE.fullmatch(value) is None:
        raise _BadValue(f"must be an OCPI DateTime (RFC 3339, e.g. 2015-06-29T20:39:09Z), got {_show(value)}")
    if strict:
        if len(value) > 25:
            raise _BadValue(f"must be at most 25 characters (OCPI DateTime), got {len(value)}")
        if value[-6] in "+-":
            raise _BadValue(f"must be in UTC ('Z' or no designator), got offset {value[-6:]}")
    try:
        dt = datetime.fromisoformat(value)  # the regex above restricts what reaches it
    except ValueError:
        raise _BadValue(f"is not a valid date-time, got {_show(value)}") from None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    if dt.tzinfo is not UTC:
        return dt.astimezone(UTC)
    return dt


def parse_datetime(value, path="$", strict=True):
    """Parse an OCPI DateTime string into an aware UTC ``datetime``.

    Accepted: ``2015-06-29T20:39:09Z``, ``2015-06-29T20:39:09`` (no designator = UTC), with
    optional fractional seconds.  An explicit ``+hh:mm`` offset is refused in strict mode
    (the spec: "All timestamps SHALL be in UTC ... +00:00 is not the same as UTC") and
    converted to UTC otherwise.
    """
    try:
        return _check_datetime(value, strict)
    except _BadValue as exc:
        raise OcpiValidationError(path, exc.args[0]) from None


def _fields(d, path, schema, strict, out):
    """``out`` with the validated value ``check(value, arg)`` of each ``(key, check, arg)`` of
    ``schema`` present in ``d``, checked in schema order (a schema that depends on the mode is
    given as ``_for_mode(schema, strict)``).  ``out`` comes
    with None for every key (``dict.fromkeys(NamedTuple._fields)``: then ``_new(NamedTuple, out.values())``
    builds the object in one call)."""
    for key, check, arg in schema:
        v = d.get(key)
        if v is None:
            continue
        try:
            out[key] = check(v, arg)
        except _BadValue as exc:
            where = f"{path}.{key}" if exc.sub is None else f"{path}.{key}.{exc.sub}"
            raise OcpiValidationError(where, exc.args[0]) from None
    return out


_STRICT = object()  # schema argument: the parsing mode (see _for_mode)


def _for_mode(schema, strict):
    """``schema`` with its ``_STRICT`` arguments replaced by the mode ``strict``."""
    return tuple((key, check, strict if arg is _STRICT else arg) for key, check, arg in schema)


def _require(d, out, path, keys):
    """The error of the first of ``keys`` that has no value in ``out`` (validated fields, None
    for each absent one)."""
    for k in keys:
        if out[k] is None:
            _get(d, k, path, True)


# --------------------------------------------------------------------------------------------
# Tariff
# --------------------------------------------------------------------------------------------
def _display_texts(d, key, path, strict):
    lst = _field(d, key, path, False, _check_list, False)
    if not lst:
        return ()
    out = []
    for i, item in enumerate(lst):
        p = f"{path}.{key}[{i}]"
        _item_object(item, p)
        lang = _field(item, "language", p, strict, _check_str, _LANGUAGE_STRICT if strict else _LANGUAGE_LENIENT)
        out.append(DisplayText(lang, _field(item, "text", p, strict, _check_str, _str(512))))
    return tuple(out)


def _restrictions(d, p):
    dow = _field(d, "day_of_week", p, False, _check_list, False)
    if dow:
        for i, day in enumerate(dow):
            if type(day) is not str or day not in _DAYS_SET:
                _fail(f"{p}.day_of_week[{i}]", f"must be a valid DayOfWeek, got {_show(day)}")
    return TariffRestrictions(
        start_time=_field(d, "start_time", p, False, _check_str, _TIME_OF_DAY),
        end_time=_field(d, "end_time", p, False, _check_str, _TIME_OF_DAY),
        start_date=_field(d, "start_date", p, False, _check_date),
        end_date=_field(d, "end_date", p, False, _check_date),
        min_kwh=_field(d, "min_kwh", p, False, _check_number, 0),
        max_kwh=_field(d, "max_kwh", p, False, _check_number, 0),
        min_current=_field(d, "min_current", p, False, _check_number, 0),
        max_current=_field(d, "max_current", p, False, _check_number, 0),
        min_power=_field(d, "min_power", p, False, _check_number, 0),
        max_power=_field(d, "max_power", p, False, _check_number, 0),
        min_duration=_field(d, "min_duration", p, False, _check_int, 0),
        max_duration=_field(d, "max_duration", p, False, _check_int, 0),
        day_of_week=tuple(dow) if dow else (),
        reservation=_field(d, "reservation", p, False, _check_enum,
                           (RESERVATION_RESTRICTION_TYPES, "ReservationRestrictionType")),
    )


def _tariff_elements(d, path, strict):
    elems = _field(d, "elements", path, True, _check_list, True)
    out = []
    for i, e in enumerate(elems):
        ep = f"{path}.elements[{i}]"
        _item_object(e, ep)
        comps = _field(e, "price_components", ep, True, _check_list, True)
        pcs = []
        for j, c in enumerate(comps):
            cp = f"{ep}.price_components[{j}]"
            _item_object(c, cp)
            ctype = _field(c, "type", cp, True, _check_enum, (TARIFF_DIMENSION_TYPES, "TariffDimensionType"))
            price = _field(c, "price", cp, True, _check_number, 0)
            vat = _field(c, "vat", cp, False, _check_number, 0)
            # step_size "int, card. 1": a positive number of units for ENERGY/TIME/PARKING_TIME.
            # FLAT has no unit ("Flat fee without unit for step_size"): the spec's own
            # Free-of-Charge example uses 0 there.  Lenient mode accepts 0 on every dimension
            # and treats it as "no rounding".
            step = _field(c, "step_size", cp, True, _check_int, 1 if strict and ctype != "FLAT" else 0)
            pcs.append(PriceComponent(ctype, price, vat, step))
        ro = _field(e, "restrictions", ep, False, _check_object)
        restr = _restrictions(ro, f"{ep}.restrictions") if ro is not None else None
        if strict and restr is not None and restr.reservation is not None:
            for j, pc in enumerate(pcs):
                if pc.type not in ("FLAT", "TIME"):
                    _fail(f"{ep}.price_components[{j}].type",
                          f"a reservation element can only have FLAT and TIME components, got {_show(pc.type)}")
        out.append(TariffElement(tuple(pcs), restr))
    return tuple(out)


def _parse_tariff(data, strict, path, version, embedded=False):
    """``version``: a ``_Version``; ``embedded``: a tariff inside a CDR (see TAX_INCLUDED)."""
    d = _item_object(data, path)
    p = path
    cc = _field(d, "country_code", p, strict, _check_str, _COUNTRY2)
    pid = _field(d, "party_id", p, strict, _check_str, _PARTY)
    tid = _field(d, "id", p, strict, _check_str, _str(36, True))
    cur = _field(d, "currency", p, strict, _check_currency)
    ttype = _field(d, "type", p, False, _check_enum, (TARIFF_TYPES, "TariffType"))
    alt_text = _display_texts(d, "tariff_alt_text", p, strict)
    alt_url = _field(d, "tariff_alt_url", p, False, _check_str, _str(255))
    min_price = _field(d, "min_price", p, False, version.limit, 1)
    max_price = _field(d, "max_price", p, False, version.limit, 1)
    if min_price is not None and max_price is not None and min_price.excl_vat > max_price.excl_vat:
        key = version.limit_keys[0]
        _fail(f"{p}.min_price.{key}",
              f"must be <= max_price.{key} ({max_price.excl_vat}), got {min_price.excl_vat}")
    tax_included = None
    if version.tax_included:
        tax_included = _field(d, "tax_included", p, strict and not embedded, _check_enum,
                              (TAX_INCLUDED, "TaxIncluded"))
    elements = _tariff_elements(d, p, strict)
    sdt = _field(d, "start_date_time", p, False, _check_datetime, strict)
    edt = _field(d, "end_date_time", p, False, _check_datetime, strict)
    if sdt is not None and edt is not None and edt < sdt:
        _fail(f"{p}.end_date_time", "must not be before start_date_time")
    energy_mix = _field(d, "energy_mix", p, False, _check_object)
    last_updated = _field(d, "last_updated", p, strict, _check_datetime, strict)
    return Tariff(cc, pid, tid, cur, ttype, alt_text, alt_url, min_price, max_price, elements,
                  sdt, edt, energy_mix, last_updated, tax_included, data)


def parse_tariff(data, strict=True, version=V221):
    """Validate an OCPI Tariff object of ``version`` (``"2.2.1"`` or ``"2.3.0"``) and return
    a :class:`Tariff`."""
    return _parse_tariff(data, strict, "$", _version(version))


# CPOs embed the same Tariff in every CDR (CDR.tariffs): validating it again for each CDR would
# cost more than the rest of the CDR.  Validated embedded tariffs are remembered, keyed by the
# mode and an exact serialization of the decoded JSON: ``marshal`` (C, floats written as their
# 8 bytes), or its ``repr`` when it holds Decimals, which marshal refuses.  Both distinguish
# every type and value JSON data can hold (1, 1.0 and True, 0.0 and -0.0, Decimal('1.0') and
# Decimal('1.00')) and keep the key order, so the same key is the same content and validates to
# the same Tariff.  marshal format 4 writes an object met again (a key string the JSON decoder
# shared) as a reference to its first occurrence: still decodable to the same content, so a key
# never stands for two contents; equal contents with another sharing only miss the memo.  It is
# ~2x cheaper than format 2.  Bounded: emptied when full.
_EMBEDDED_TARIFFS = {}
_EMBEDDED_TARIFFS_SIZE = 256


def _tariff_key(t, strict, version):
    try:
        return strict, version.name, marshal.dumps(t, 4)
    except ValueError:  # a Decimal (json.loads with parse_float=Decimal)
        return strict, version.name, repr(t)


def _embedded_tariff(t, strict, i, version):
    """The validated ``$.tariffs[i]`` (``t``), remembered (see above)."""
    if type(t) is not dict:
        return _parse_tariff(t, strict, f"$.tariffs[{i}]", version, True)
    key = _tariff_key(t, strict, version)
    tariff = _EMBEDDED_TARIFFS.get(key)
    if tariff is None:
        tariff = _parse_tariff(t, strict, f"$.tariffs[{i}]", version, True)
        if len(_EMBEDDED_TARIFFS) >= _EMBEDDED_TARIFFS_SIZE:
            _EMBEDDED_TARIFFS.clear()
        _EMBEDDED_TARIFFS[key] = tariff
    return tariff


# --------------------------------------------------------------------------------------------
# CDR
# --------------------------------------------------------------------------------------------
_TOKEN_SCHEMA = (
    ("uid", _check_str, _str(36, True)), ("type", _check_enum, (TOKEN_TYPES, "TokenType")),
    ("contract_id", _check_str, _str(36, True)), ("country_code", _check_str, _COUNTRY2),
    ("party_id", _check_str, _PARTY),
)
_TOKEN_KEYS = tuple(k for k, _, _ in _TOKEN_SCHEMA)
_COORD_SCHEMA = (("latitude", _check_str, _LATITUDE), ("longitude", _check_str, _LONGITUDE))
_COORD_KEYS = ("latitude", "longitude")
_LOCATION_SCHEMA = (  # coordinates: see _cdr_location
    ("id", _check_str, _str(36, True)), ("name", _check_str, _str(255)), ("address", _check_str, _str(45)),
    ("city", _check_str, _str(45)), ("postal_code", _check_str, _str(10)), ("state", _check_str, _str(20)),
    ("country", _check_str, _COUNTRY3), ("evse_uid", _check_str, _str(36, True)),
    ("evse_id", _check_str, _str(48, True)), ("connector_id", _check_str, _str(36, True)),
    ("connector_standard", _check_enum, (CONNECTOR_TYPES, "ConnectorType")),
    ("connector_format", _check_enum, (CONNECTOR_FORMATS, "ConnectorFormat")),
    ("connector_power_type", _check_enum, (POWER_TYPES, "PowerType")),
)
_LOCATION_REQUIRED = ("id", "address", "city", "country", "evse_uid", "evse_id", "connector_id",
                      "connector_standard", "connector_format", "connector_power_type")
_CDR_SCHEMA = (  # the fields validated first, in this order; the others: see parse_cdr
    ("country_code", _check_str, _COUNTRY2), ("party_id", _check_str, _PARTY), ("id", _check_str, _str(39, True)),
    ("start_date_time", _check_datetime, _STRICT), ("end_date_time", _check_datetime, _STRICT),
    ("session_id", _check_str, _str(36, True)), ("auth_method", _check_enum, (AUTH_METHODS, "AuthMethod")),
    ("authorization_reference", _check_str, _str(36, True)), ("meter_id", _check_str, _str(255)),
    ("total_fixed_cost", _check_price, 1), ("total_energy", _check_number, 0),
    ("total_energy_cost", _check_price, 1), ("total_time", _check_number, 0),
    ("total_time_cost", _check_price, 1), ("total_parking_time", _check_number, 0),
    ("total_parking_cost", _check_price, 1), ("total_reservation_cost", _check_price, 1),
    ("remark", _check_str, _str(255)), ("invoice_reference_id", _check_str, _str(39, True)),
    ("credit", _check_bool, None), ("credit_reference_id", _check_str, _str(39, True)),
    ("home_charging_compensation", _check_bool, None), ("last_updated", _check_datetime, _STRICT),
)
_CDR_SCHEMA_230 = tuple((key, _check_price_230 if check is _check_price else check, arg)
                        for key, check, arg in _CDR_SCHEMA)
_CDR_REQUIRED_STRICT = ("id", "start_date_time", "end_date_time", "auth_method", "total_energy",
                        "total_time", "last_updated", "country_code", "party_id")
_CDR_REQUIRED_LENIENT = ("start_date_time", "end_date_time")


def _cdr_token(tok, strict):
    p = "$.cdr_token"
    f = _fields(tok, p, _TOKEN_SCHEMA, strict, dict.fromkeys(CdrToken._fields))
    if strict:
        _require(tok, f, p, _TOKEN_KEYS)
    return _new(CdrToken, f.values())


def _cdr_location(loc, strict):
    p = "$.cdr_location"
    f = _fields(loc, p, _LOCATION_SCHEMA, strict, dict.fromkeys(CdrLocation._fields))
    co = _field(loc, "coordinates", p, strict, _check_object)
    if co is not None:
        cp = f"{p}.coordinates"
        c = _fields(co, cp, _COORD_SCHEMA, strict, dict.fromkeys(GeoLocation._fields))
        if strict:
            _require(co, c, cp, _COORD_KEYS)
        f["coordinates"] = _new(GeoLocation, c.values())
    if strict:
        _require(loc, f, p, _LOCATION_REQUIRED)
    return _new(CdrLocation, f.values())


def _signed_data(d, p, strict):
    _field(d, "encoding_method", p, strict, _check_str, _str(36, True))
    _field(d, "encoding_method_version", p, False, _check_int, 0)
    _field(d, "public_key", p, False, _check_str, _str(512))
    _field(d, "url", p, False, _check_str, _str(512))
    values = _field(d, "signed_values", p, strict, _check_list, strict)
    for i, sv in enumerate(values or ()):
        sp = f"{p}.signed_values[{i}]"
        _item_object(sv, sp)
        _field(sv, "nature", sp, strict, _check_str, _str(32, True))
        _field(sv, "plain_data", sp, strict, _check_str, _str(5000))
        _field(sv, "signed_data", sp, strict, _check_str, _str(5000))
    return d


# Dimensions whose volume may be negative, and the bound of STATE_OF_CHARGE (percent).
_ALLOWED_STRICT = frozenset(CDR_DIMENSION_TYPES - CDR_SESSION_ONLY_DIMENSIONS)
_STATE_OF_CHARGE_MAX = 100


def _dimensions(dims, allowed):
    """The CdrDimensions of a charging period's ``dims`` (a list) and its {type: volume}.  A
    problem raises _BadValue whose ``sub`` is its path below the period."""
    volumes = {}
    dimensions = []
    for j, dim in enumerate(dims):
        if type(dim) is not dict:
            raise _BadValue(f"must be an object, got {_show(dim)}", f"dimensions[{j}]")
        t = dim.get("type")
        if type(t) is not str or t not in allowed:
            if t is None:
                raise _BadValue(_missing_message(dim, "type"), f"dimensions[{j}].type")
            if type(t) is not str or t not in CDR_DIMENSION_TYPES:
                raise _BadValue(f"must be a valid CdrDimensionType, got {_show(t)}", f"dimensions[{j}].type")
            raise _BadValue(f"{t} is a Session-only dimension and SHALL NOT be used in a CDR",
                            f"dimensions[{j}].type")
        if t in volumes:
            raise _BadValue(f"duplicate dimension {t} in the same charging period", f"dimensions[{j}].type")
        v = dim.get("volume")
        vol = _to_decimal(v)
        if vol is None:
            if v is None:
                raise _BadValue(_missing_message(dim, "volume"), f"dimensions[{j}].volume")
            raise _BadValue(f"must be a number, got {_show(v)}", f"dimensions[{j}].volume")
        if v < 0 and t not in _SIGNED_DIMENSIONS:  # v: the number vol was read from (same sign, cheaper)
            raise _BadValue(f"must be >= 0, got {_show(v)}", f"dimensions[{j}].volume")
        if t == "STATE_OF_CHARGE" and vol > _STATE_OF_CHARGE_MAX:
            raise _BadValue(f"must be <= {_STATE_OF_CHARGE_MAX} (percent), got {_show(v)}",
                            f"dimensions[{j}].volume")
        volumes[t] = vol
        dimensions.append(_new(CdrDimension, (t, vol)))
    return tuple(dimensions), volumes


_TARIFF_ID = _str(36, True)


def _charging_period(cp, allowed, strict, prev, end, i):
    """The ChargingPeriod of ``cp`` (``$.charging_periods[i]``), which starts at or after
    ``prev`` (the previous period's start, or the CDR's) and at or before ``end``.  A problem
    raises _BadValue (``sub``: the key path below the period, if any)."""
    if type(cp) is not dict:
        raise _BadValue(f"must be an object, got {_show(cp)}")
    pstart = _member(cp, "start_date_time", True, _check_datetime, strict)
    if pstart < prev:
        if i == 0:
            raise _BadValue("must not be before the CDR start_date_time", "start_date_time")
        raise _BadValue(f"must not be before the start of charging_periods[{i - 1}]"
                        " (periods must be in chronological order)", "start_date_time")
    if pstart > end:
        raise _BadValue("must not be after the CDR end_date_time", "start_date_time")
    dimensions, volumes = _dimensions(_member(cp, "dimensions", True, _check_list, True), allowed)
    tariff_id = _member(cp, "tariff_id", False, _check_str, _TARIFF_ID)
    return _new(ChargingPeriod, (pstart, dimensions, tariff_id, volumes))


def _charging_periods(d, strict, start, end):
    lst = _field(d, "charging_periods", "$", True, _check_list, True)
    allowed = _ALLOWED_STRICT if strict else CDR_DIMENSION_TYPES
    out = []
    prev = start
    try:
        for i, cp in enumerate(lst):
            period = _charging_period(cp, allowed, strict, prev, end, i)
            out.append(period)
            prev = period.start_date_time
    except _BadValue as exc:
        where = f"$.charging_periods[{len(out)}]"
        raise OcpiValidationError(where if exc.sub is None else f"{where}.{exc.sub}", exc.args[0]) from None
    return tuple(out)


def parse_cdr(data, strict=True, version=V221):
    """Validate an OCPI CDR object of ``version`` (``"2.2.1"`` or ``"2.3.0"``) and return a
    :class:`Cdr` (the same object whatever the version: see ``Price``).

    The fields of ``_CDR_SCHEMA`` present are validated in its order, then the required ones
    are checked, then the CDR-level rules, the objects, currency, embedded tariffs, charging
    periods, token, location, signed data and ``total_cost``: the first problem is raised."""
    version = _version(version)
    p = "$"
    d = _item_object(data, p)
    f = _fields(d, p, version.cdr_schema[strict], strict, dict.fromkeys(Cdr._fields))
    _require(d, f, p, _CDR_REQUIRED_STRICT if strict else _CDR_REQUIRED_LENIENT)
    if f["id"] is not None and not f["credit"] and len(f["id"]) > 36:
        _fail("$.id", f"must be at most 36 characters on a non-credit CDR, got {len(f['id'])}")
    if strict and f["credit"] and f["credit_reference_id"] is None:
        _fail("$.credit_reference_id", "required field is missing (credit is true)")
    if f["end_date_time"] < f["start_date_time"]:
        _fail("$.end_date_time", "must not be before start_date_time")
    tok = _field(d, "cdr_token", p, strict, _check_object)
    loc = _field(d, "cdr_location", p, strict, _check_object)
    currency = _field(d, "currency", p, True, _check_currency)
    tariffs = _field(d, "tariffs", p, False, _check_list, False) or ()
    tariff_objs = tuple([_embedded_tariff(t, strict, i, version) for i, t in enumerate(tariffs)])
    periods = _charging_periods(d, strict, f["start_date_time"], f["end_date_time"])
    sd = _field(d, "signed_data", p, False, _check_object)
    token = _cdr_token(tok, strict) if tok is not None else None
    location = _cdr_location(loc, strict) if loc is not None else None
    signed = _signed_data(sd, "$.signed_data", strict) if sd is not None else None
    total_cost = _field(d, "total_cost", p, strict, version.price, -1 if f["credit"] else 1)
    f.update(cdr_token=token, cdr_location=location, currency=currency, tariffs=tariff_objs,
             charging_periods=periods, signed_data=signed, total_cost=total_cost, raw=data)
    return _new(Cdr, f.values())


# --------------------------------------------------------------------------------------------
# Versions: everything that differs between OCPI 2.2.1 and 2.3.0 for the CDR and the Tariff,
# in one place.  The parsers above read both into the same objects (``Price``, ``Tariff``,
# ``Cdr``); the functions below write and convert per version.
# --------------------------------------------------------------------------------------------
class _Version(NamedTuple):
    name: str
    price: object        # check of a CDR cost (Price)
    limit: object        # check of a Tariff min_price / max_price
    limit_keys: tuple    # (before taxes, after taxes) member names of a limit
    tax_included: bool   # the Tariff has ``tax_included``
    cdr_schema: dict     # {strict: the CDR's _fields schema for that mode}


_VERSIONS = {
    V221: _Version(V221, _check_price, _check_price, ("excl_vat", "incl_vat"), False,
                   {mode: _for_mode(_CDR_SCHEMA, mode) for mode in (True, False)}),
    V230: _Version(V230, _check_price_230, _check_price_limit, ("before_taxes", "after_taxes"),
                   True, {mode: _for_mode(_CDR_SCHEMA_230, mode) for mode in (True, False)}),
}


def _version(version):
    try:
        return _VERSIONS[version]
    except KeyError:
        raise ValueError(f"unsupported OCPI version {version!r} (supported: {', '.join(VERSIONS)})") from None


def negotiate(theirs):
    """The highest of our ``VERSIONS`` among ``theirs`` (version strings), or None."""
    for v in VERSIONS:
        if v in theirs:
            return v
    return None


def detect_cdr_version(data):
    """The version of a CDR dict that passed validation (stored JSON): its ``total_cost`` is
    ``{before_taxes...}`` in 2.3.0, ``{excl_vat...}`` in 2.2.1."""
    total = data.get("total_cost") if type(data) is dict else None
    if type(total) is dict and "before_taxes" in total and "excl_vat" not in total:
        return V230
    return V221


def detect_tariff_version(data):
    """The version of a Tariff dict by its form: 2.3.0 has ``tax_included`` or PriceLimits
    (``before_taxes``), 2.2.1 neither."""
    if type(data) is not dict:
        return V221
    if "tax_included" in data:
        return V230
    for key in ("min_price", "max_price"):
        limit = data.get(key)
        if type(limit) is dict and "before_taxes" in limit:
            return V230
    return V221


def read_price(value, version=None):
    """The ``Price`` of a stored cost dict (either version, detected when ``version`` is None);
    None when ``value`` is not a valid cost."""
    if type(value) is not dict:
        return None
    if version is None:
        version = V230 if "before_taxes" in value and "excl_vat" not in value else V221
    v = _version(version)
    first = _to_decimal(value.get(v.limit_keys[0]))
    try:
        return v.price(value, -1 if first is not None and first < 0 else 1)
    except _BadValue:
        return None


def price_to_ocpi(price, version, num=lambda v: v):
    """A CDR cost ``Price`` as the JSON object of ``version`` (``num`` formats the numbers).
    2.3.0: the taxes as held (``price.taxes``), else one ``VAT`` tax of incl - excl when
    that is known and not zero."""
    if version == V221:
        out = {"excl_vat": num(price.excl_vat)}
        if price.incl_vat is not None:
            out["incl_vat"] = num(price.incl_vat)
        return out
    _version(version)
    out = {"before_taxes": num(price.excl_vat)}
    if price.taxes:
        out["taxes"] = [_tax_to_ocpi(t, num) for t in price.taxes]
    elif price.taxes is None and price.incl_vat is not None and price.incl_vat != price.excl_vat:
        out["taxes"] = [{"name": "VAT", "amount": num(price.incl_vat - price.excl_vat)}]
    return out


def _tax_to_ocpi(tax, num):
    out = {"name": tax.name}
    if tax.account_number is not None:
        out["account_number"] = tax.account_number
    if tax.percentage is not None:
        out["percentage"] = num(tax.percentage)
    out["amount"] = num(tax.amount)
    return out


def tariff_dict_to_version(tariff, version):
    """A Tariff dict of either version written in ``version``: the min/max price members are
    renamed (``excl_vat``/``incl_vat`` <-> ``before_taxes``/``after_taxes``), ``tax_included``
    added (``"NO"`` when absent: 2.2.1 prices are before VAT) or removed.  Raises
    OcpiValidationError when a 2.3.0 tariff with ``tax_included`` YES goes to 2.2.1 (whose
    prices are before VAT).  Other members are kept as they are."""
    target = _version(version)
    out = dict(tariff)
    if target.tax_included:
        out.setdefault("tax_included", "NO")
    else:
        included = out.pop("tax_included", None)
        if included == "YES":
            _fail("$.tax_included", "a tariff whose prices include taxes (YES) has no OCPI 2.2.1 form "
                  "(2.2.1 prices are before VAT)")
    for key in ("min_price", "max_price"):
        limit = out.get(key)
        if type(limit) is not dict:
            continue
        before = limit.get("before_taxes", limit.get("excl_vat"))
        after = limit.get("after_taxes", limit.get("incl_vat"))
        names = target.limit_keys
        out[key] = {names[0]: before} if after is None else {names[0]: before, names[1]: after}
    return out


_CDR_COSTS = ("total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost",
              "total_parking_cost", "total_reservation_cost")


def _number_like(template, value):
    """``value`` (a Decimal) as a number of the type of ``template`` (float stays float)."""
    return float(value) if isinstance(template, float) else value


def cdr_dict_to_version(cdr, version):
    """A CDR dict of either version written in ``version``: its costs become the Price of
    ``version`` (2.3.0: ``{before_taxes, taxes: [{"name": "VAT", "amount": incl - excl}]}``
    when ``incl_vat`` is stated; 2.2.1: ``incl_vat`` = before_taxes + the tax amounts) and its
    embedded tariffs go through ``tariff_dict_to_version``.  Other members are kept."""
    target = _version(version)
    out = dict(cdr)
    for key in _CDR_COSTS:
        price = out.get(key)
        if type(price) is not dict:
            continue
        if target.name == V230 and "excl_vat" in price:
            excl, incl = price["excl_vat"], price.get("incl_vat")
            new = {"before_taxes": excl}
            if incl is not None:
                amount = _to_decimal(incl) - _to_decimal(excl)
                new["taxes"] = [{"name": "VAT", "amount": _number_like(incl, amount)}]
            out[key] = new
        elif target.name == V221 and "before_taxes" in price:
            before = price["before_taxes"]
            new = {"excl_vat": before}
            if price.get("taxes") is not None:
                total = _to_decimal(before) + sum(_to_decimal(t["amount"]) for t in price["taxes"])
                new["incl_vat"] = _number_like(before, total)
            out[key] = new
    if type(out.get("tariffs")) is list:
        out["tariffs"] = [tariff_dict_to_version(t, version) if type(t) is dict else t
                          for t in out["tariffs"]]
    return out


# --------------------------------------------------------------------------------------------
# Invoice Reconciliation (2.3.0 edition 2, module ``invoicereconciliation``)
# --------------------------------------------------------------------------------------------
class InvoiceReconciliationRecord(NamedTuple):
    country_code: str
    party_id: str
    id: str
    invoice_id: str
    cdrs: tuple  # CDR ids, as listed (a CDR id we do not hold is a finding, not an error)
    last_updated: datetime
    raw: dict | None = None

    __repr__ = _repr_without_last


_CDR_ID = _str(36, True)


def parse_invoice_reconciliation_record(data):
    """Validate an InvoiceReconciliationRecord (every field is required; ``cdrs`` has at least
    one id); OcpiValidationError naming the JSON path of the first problem."""
    p = "$"
    d = _item_object(data, p)
    cc = _field(d, "country_code", p, True, _check_str, _COUNTRY2)
    pid = _field(d, "party_id", p, True, _check_str, _PARTY)
    rid = _field(d, "id", p, True, _check_str, _str(36, True))
    invoice_id = _field(d, "invoice_id", p, True, _check_str, _str(255, True))
    cdrs = _field(d, "cdrs", p, True, _check_list, True)
    for i, cdr_id in enumerate(cdrs):
        try:
            _check_str(cdr_id, _CDR_ID)
        except _BadValue as exc:
            _fail(f"$.cdrs[{i}]", exc.args[0])
    last_updated = _field(d, "last_updated", p, True, _check_datetime, True)
    return InvoiceReconciliationRecord(cc, pid, rid, invoice_id, tuple(cdrs), last_updated, data)
