"""OCPI 2.2.1 CDR and Tariff parsing/validation into frozen dataclasses.

``parse_cdr(data, strict=True)`` and ``parse_tariff(data, strict=True)`` take the decoded JSON
object (``dict``; numbers may be ``int``, ``float`` or ``Decimal`` -- floats are converted via
``str`` so ``0.1`` stays ``Decimal('0.1')``) and return ``Cdr`` / ``Tariff``.  Every problem raises
``OcpiValidationError`` whose ``path`` is the JSON path of the bad field.

``strict=True`` validates the whole object as OCPI 2.2.1 (release-2.2.1-bugfixes) defines it.
``strict=False`` only requires what pricing needs (CDR: start/end date-times, currency,
charging periods; Tariff: elements) but still type-checks every field that is present.
"""

import copy
import re
from marshal import dumps as _marshal_dumps
from math import copysign as _copysign
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timezone
from decimal import Decimal

from . import currencies
from .errors import OcpiValidationError

__all__ = [
    "Price", "CdrDimension", "ChargingPeriod", "CdrToken", "GeoLocation", "CdrLocation", "Cdr",
    "DisplayText", "PriceComponent", "TariffRestrictions", "TariffElement", "Tariff",
    "parse_cdr", "parse_tariff", "parse_datetime",
    "AUTH_METHODS", "TOKEN_TYPES", "CDR_DIMENSION_TYPES", "CDR_SESSION_ONLY_DIMENSIONS",
    "CONNECTOR_TYPES", "CONNECTOR_FORMATS", "POWER_TYPES", "TARIFF_DIMENSION_TYPES",
    "TARIFF_TYPES", "DAYS_OF_WEEK", "RESERVATION_RESTRICTION_TYPES",
]

UTC = timezone.utc

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


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Price:
    excl_vat: Decimal
    incl_vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CdrDimension:
    type: str
    volume: Decimal


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    start_date_time: datetime
    dimensions: tuple
    tariff_id: str | None = None
    # {dimension type: volume}, built by the parser (None when constructed by hand).
    volumes: dict | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class CdrToken:
    uid: str | None
    type: str | None
    contract_id: str | None
    country_code: str | None
    party_id: str | None


@dataclass(frozen=True, slots=True)
class GeoLocation:
    latitude: str | None
    longitude: str | None


@dataclass(frozen=True, slots=True)
class CdrLocation:
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


@dataclass(frozen=True, slots=True)
class DisplayText:
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class PriceComponent:
    type: str
    price: Decimal
    vat: Decimal | None
    step_size: int


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
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


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple
    restrictions: TariffRestrictions | None = None


@dataclass(frozen=True, slots=True)
class Tariff:
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
    raw: dict = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Cdr:
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
    raw: dict = field(default=None, repr=False, compare=False)


def _twin(cls):
    """A plain class with the same slots as the frozen slots dataclass ``cls`` (and no
    ``__setattr__``): an instance of it is filled with ordinary attribute stores, then becomes a
    ``cls`` by ``__class__`` assignment (allowed: same layout).  A frozen dataclass can only be
    filled through ``object.__setattr__`` or its slot descriptors' ``__set__``, each call of
    which builds an argument tuple; plain stores to slots are the interpreter's fastest path."""
    twin = type("_" + cls.__name__ + "Twin", (), {"__slots__": cls.__slots__, "__module__": cls.__module__})
    o = object.__new__(twin)
    o.__class__ = cls  # fails at import time if the layouts ever differ
    return twin


def _maker(cls):
    """Fast positional constructor for a slots dataclass: ``make(*all_fields)``.

    Builds the instance as a ``_twin(cls)`` filled by plain attribute stores and switched to
    ``cls`` -- what the generated ``__init__`` of a frozen dataclass does through
    ``object.__setattr__``, several times faster.  Used on the hot paths; the result is an
    ordinary instance of ``cls`` (equal, hashable).
    """
    names = [f.name for f in fields(cls)]
    ns = {"_new": object.__new__, "_cls": cls, "_twin": _twin(cls)}
    src = (f"def make({', '.join(names)}):\n    o = _new(_twin)\n"
           + "".join(f"    o.{name} = {name}\n" for name in names) + "    o.__class__ = _cls\n    return o\n")
    exec(src, ns)  # noqa: S102 - generated from the dataclass field names above
    return ns["make"]


_new_price = _maker(Price)
_new_geo = _maker(GeoLocation)
_new_location = _maker(CdrLocation)


# --------------------------------------------------------------------------------------------
# Low-level checks.  Paths are built only when an error is raised (hot path = no formatting).
# --------------------------------------------------------------------------------------------
_MISSING = object()


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


def _fail(path, message):
    raise OcpiValidationError(path, message)


def _get(d, key, path, required):
    """Value of ``key`` in ``d``; ``None`` when absent/null and not required."""
    v = d.get(key)
    if v is None and required:
        if key in d:
            _fail(f"{path}.{key}", "required field is null")
        _fail(f"{path}.{key}", "required field is missing")
    return v


def _str(d, key, path, maxlen, required, ci=False):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    if type(v) is not str:
        _fail(f"{path}.{key}", f"must be a string, got {_show(v)}")
    if len(v) > maxlen:
        _fail(f"{path}.{key}", f"must be at most {maxlen} characters, got {len(v)}")
    if not v.isprintable():
        _fail(f"{path}.{key}", f"must contain printable characters only, got {_show(v)}")
    if ci and not v.isascii():
        _fail(f"{path}.{key}", f"must be printable ASCII (CiString), got {_show(v)}")
    return v


def _enum(d, key, path, values, required, what):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    if type(v) is not str:
        _fail(f"{path}.{key}", f"must be a string ({what}), got {_show(v)}")
    if v not in values:
        _fail(f"{path}.{key}", f"must be a valid {what}, got {_show(v)}")
    return v


def _bool(d, key, path, required):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    if type(v) is not bool:
        _fail(f"{path}.{key}", f"must be a boolean, got {_show(v)}")
    return v


# float -> Decimal through the float's shortest repr (0.1 -> Decimal('0.1')), memoised: CDRs
# repeat the same values a lot (prices, VAT rates, durations in whole minutes, power levels...).
# Keyed by the float itself, which is exact for floats except for zeros (0.0 == -0.0 but they
# give Decimal('0.0') and Decimal('-0.0')): zeros are never stored, _float_decimal answers them
# first with a constant of the zero's sign.  Only floats are ever looked
# up (1 == 1.0 == True as keys).  Two generations, each bounded: the hot paths look up
# _FLOAT_DECIMALS inline and call _float_decimal on a miss, which also looks in the previous
# generation (and brings a hit back) -- values in steady use stay, one-off values age out.
_FLOAT_DECIMALS = {}
_FLOAT_DECIMALS_OLD = {}
_FLOAT_DECIMALS_SIZE = 16384
_DEC_ZERO = Decimal(0)
_FLOAT_ZERO = Decimal("0.0")  # Decimal(repr(0.0))
_FLOAT_NEG_ZERO = Decimal("-0.0")  # Decimal(repr(-0.0))


def _float_decimal(v):
    """Decimal of a finite float ``v`` (the caller has checked ``v - v == 0``)."""
    if not v:
        return _FLOAT_ZERO if _copysign(1.0, v) > 0 else _FLOAT_NEG_ZERO
    young = _FLOAT_DECIMALS
    d = young.get(v)
    if d is None:
        d = _FLOAT_DECIMALS_OLD.get(v)
        if d is None:
            d = Decimal(repr(v))
        if len(young) >= _FLOAT_DECIMALS_SIZE:
            _FLOAT_DECIMALS_OLD.clear()
            _FLOAT_DECIMALS_OLD.update(young)
            young.clear()
        young[v] = d
    return d


def _to_decimal(v):
    """Decimal from a JSON number, or None when ``v`` is not a finite number (bool excluded)."""
    t = type(v)
    if t is float:
        if v - v != 0:  # inf, nan
            return None
        return _float_decimal(v)
    if t is int:
        return Decimal(v)
    if t is Decimal:
        return v if v.is_finite() else None
    return None


def _number_at(v, path, minimum):
    n = _to_decimal(v)
    if n is None:
        _fail(path, f"must be a number, got {_show(v)}")
    if minimum is not None and n < minimum:
        _fail(path, f"must be >= {minimum}, got {_show(v)}")
    return n


def _number(d, key, path, required, minimum=0):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    n = _to_decimal(v)
    if n is None:
        _fail(f"{path}.{key}", f"must be a number, got {_show(v)}")
    if minimum is not None and n < minimum:
        _fail(f"{path}.{key}", f"must be >= {minimum}, got {_show(v)}")
    return n


def _int(d, key, path, required, minimum=0):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    t = type(v)
    if t is int:
        n = v
    else:
        dv = _to_decimal(v)
        if dv is None or dv != dv.to_integral_value():
            _fail(f"{path}.{key}", f"must be an integer, got {_show(v)}")
        n = int(dv)
    if minimum is not None and n < minimum:
        _fail(f"{path}.{key}", f"must be >= {minimum}, got {_show(v)}")
    return n


def _object(d, key, path, required):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    if type(v) is not dict:
        _fail(f"{path}.{key}", f"must be an object, got {_show(v)}")
    return v


def _list(d, key, path, required, non_empty):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    if type(v) is not list:
        _fail(f"{path}.{key}", f"must be an array, got {_show(v)}")
    if non_empty and not v:
        _fail(f"{path}.{key}", "must contain at least one element")
    return v


def _item_object(v, path):
    if type(v) is not dict:
        _fail(path, f"must be an object, got {_show(v)}")
    return v


_COUNTRY2_RE = re.compile(r"[A-Za-z]{2}\Z")
_PARTY_RE = re.compile(r"[A-Za-z0-9]{3}\Z")
_COUNTRY3_RE = re.compile(r"[A-Z]{3}\Z")
_LAT_RE = re.compile(r"-?[0-9]{1,2}\.[0-9]{5,7}\Z")
_LON_RE = re.compile(r"-?[0-9]{1,3}\.[0-9]{5,7}\Z")
_TIME_RE = re.compile(r"([0-1][0-9]|2[0-3]):[0-5][0-9]\Z")
_DATE_RE = re.compile(r"([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])\Z")
_LANG_RE = re.compile(r"[a-z]{2}\Z")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def _country_code(d, key, path, required):
    v = _str(d, key, path, 2, required, ci=True)
    if v is not None and not _COUNTRY2_RE.match(v):
        _fail(f"{path}.{key}", f"must be an ISO 3166-1 alpha-2 country code (2 letters), got {_show(v)}")
    return v


def _party_id(d, key, path, required):
    v = _str(d, key, path, 3, required, ci=True)
    if v is not None and not _PARTY_RE.match(v):
        _fail(f"{path}.{key}", f"must be a 3-character party id (letters/digits), got {_show(v)}")
    return v


def _currency(d, key, path, required):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    if type(v) is not str:
        _fail(f"{path}.{key}", f"must be a string (ISO 4217 code), got {_show(v)}")
    if v not in currencies.MINOR_UNITS:
        _fail(f"{path}.{key}", f"must be a known ISO 4217 currency code, got {_show(v)}")
    return v


# OCPI DateTime: RFC 3339 restricted to UTC, 'Z' optional, fractional seconds optional.
_DT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?\Z")
_fromisoformat = datetime.fromisoformat


class _BadValue(Exception):
    """Internal: a value is invalid; the caller knows the path."""


# The common form, "2024-05-01T12:34:56Z" with ASCII digits: every such string also matches
# _DT_RE, with designator "Z" and 20 characters, so it passes the strict checks and parses to
# the same UTC datetime in both modes -- the fast path below skips those checks (it recognises
# these strings without a regex, see _datetime_value).
# Parsed common-form strings, keyed by the full string (a datetime is immutable, so a hit is
# exactly what parsing would return).  A CDR repeats its date-times (the first period starts
# at start_date_time, last_updated is often end_date_time).  Bounded: emptied when full.
_DT_MEMO = {}
_DT_MEMO_SIZE = 4096


def _datetime_value(value, strict):
    if type(value) is str:
        dt = _DT_MEMO.get(value)
        if dt is not None:
            return dt
        # The separators of the common form at 4, 7, 10, 13, 16, 19 (one slice); fromisoformat
        # then accepts the string only if the 14 other characters are ASCII digits forming a
        # valid date and time: exactly the common-form strings that parse.  When it
        # refuses, the general path below gives the error.
        if len(value) == 20 and value[4::3] == "--T::Z" and value.isascii():
            try:
                dt = _fromisoformat(value)  # 'Z' gives tzinfo=timezone.utc (Python >= 3.11)
            except ValueError:
                dt = None
            if dt is not None and dt.tzinfo is UTC:
                if len(_DT_MEMO) >= _DT_MEMO_SIZE:
                    _DT_MEMO.clear()
                _DT_MEMO[value] = dt
                return dt
    if type(value) is not str:
        raise _BadValue(f"must be a date-time string, got {_show(value)}")
    m = _DT_RE.match(value)
    if m is None:
        raise _BadValue(f"must be an OCPI DateTime (RFC 3339, e.g. 2015-06-29T20:39:09Z), got {_show(value)}")
    tz = m.group(1)
    if strict:
        if len(value) > 25:
            raise _BadValue(f"must be at most 25 characters (OCPI DateTime), got {len(value)}")
        if tz is not None and tz != "Z":
            raise _BadValue(f"must be in UTC ('Z' or no designator), got offset {tz}")
    try:
        dt = _fromisoformat(value)  # the regex above restricts what reaches it
    except ValueError:
        raise _BadValue(f"is not a valid date-time, got {_show(value)}") from None
    tzinfo = dt.tzinfo
    if tzinfo is None:
        return dt.replace(tzinfo=UTC)
    if tzinfo is not UTC:
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
        return _datetime_value(value, strict)
    except _BadValue as exc:
        raise OcpiValidationError(path, str(exc)) from None


def _dt(d, key, path, required, strict):
    v = d.get(key)
    if v is None:
        if required:
            _get(d, key, path, True)
        return None
    try:
        return _datetime_value(v, strict)
    except _BadValue as exc:
        raise OcpiValidationError(f"{path}.{key}", str(exc)) from None


def _price(d, key, path, required, sign):
    """Price object; ``sign`` is 1 (>= 0), -1 (<= 0) or 0 (any sign)."""
    # Fast path for the common valid case (non-negative numbers, incl_vat possibly absent):
    # the same conversions as below without building the JSON path; anything else takes the
    # general path, which produces the errors.
    o = d.get(key)
    if sign > 0 and type(o) is dict:
        ex = _to_decimal(o.get("excl_vat"))
        if ex is not None and ex >= 0:
            inc = o.get("incl_vat")
            if inc is None:
                return _new_price(ex, None)
            inc = _to_decimal(inc)
            if inc is not None and inc >= 0:
                return _new_price(ex, inc)
    o = _object(d, key, path, required)
    if o is None:
        return None
    p = f"{path}.{key}"
    minimum = 0 if sign > 0 else None
    ex = _number(o, "excl_vat", p, True, minimum)
    inc = _number(o, "incl_vat", p, False, minimum)
    if sign < 0:
        if ex > 0:
            _fail(f"{p}.excl_vat", f"must be <= 0 on a credit CDR, got {_show(o['excl_vat'])}")
        if inc is not None and inc > 0:
            _fail(f"{p}.incl_vat", f"must be <= 0 on a credit CDR, got {_show(o['incl_vat'])}")
    return _new_price(ex, inc)


# --------------------------------------------------------------------------------------------
# Tariff
# --------------------------------------------------------------------------------------------
def _display_texts(d, key, path, required, strict):
    lst = _list(d, key, path, required, False)
    if not lst:
        return ()
    out = []
    for i, item in enumerate(lst):
        p = f"{path}.{key}[{i}]"
        _item_object(item, p)
        lang = _str(item, "language", p, 2, strict)
        if strict and not _LANG_RE.match(lang):
            _fail(f"{p}.language", f"must be an ISO 639-1 language code, got {_show(lang)}")
        out.append(DisplayText(lang, _str(item, "text", p, 512, strict)))
    return tuple(out)


def _time_of_day(d, key, path):
    v = _str(d, key, path, 5, False)
    if v is not None and not _TIME_RE.match(v):
        _fail(f"{path}.{key}", f"must be a time of day HH:MM (24h, leading zeros), got {_show(v)}")
    return v


def _date(d, key, path):
    v = _str(d, key, path, 10, False)
    if v is not None:
        m = _DATE_RE.match(v)
        if m is None:
            _fail(f"{path}.{key}", f"must be a date YYYY-MM-DD, got {_show(v)}")
        try:
            date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            _fail(f"{path}.{key}", f"is not a valid calendar date, got {_show(v)}")
    return v


def _restrictions(d, path, strict):
    p = path
    dow = _list(d, "day_of_week", p, False, False)
    days = ()
    if dow:
        for i, day in enumerate(dow):
            if type(day) is not str or day not in _DAYS_SET:
                _fail(f"{p}.day_of_week[{i}]", f"must be a valid DayOfWeek, got {_show(day)}")
        days = tuple(dow)
    r = TariffRestrictions(
        start_time=_time_of_day(d, "start_time", p),
        end_time=_time_of_day(d, "end_time", p),
        start_date=_date(d, "start_date", p),
        end_date=_date(d, "end_date", p),
        min_kwh=_number(d, "min_kwh", p, False),
        max_kwh=_number(d, "max_kwh", p, False),
        min_current=_number(d, "min_current", p, False),
        max_current=_number(d, "max_current", p, False),
        min_power=_number(d, "min_power", p, False),
        max_power=_number(d, "max_power", p, False),
        min_duration=_int(d, "min_duration", p, False),
        max_duration=_int(d, "max_duration", p, False),
        day_of_week=days,
        reservation=_enum(d, "reservation", p, RESERVATION_RESTRICTION_TYPES, False,
                          "ReservationRestrictionType"),
    )
    return r


def _tariff_elements(d, path, strict):
    elems = _list(d, "elements", path, True, True)
    out = []
    for i, e in enumerate(elems):
        ep = f"{path}.elements[{i}]"
        _item_object(e, ep)
        comps = _list(e, "price_components", ep, True, True)
        pcs = []
        for j, c in enumerate(comps):
            cp = f"{ep}.price_components[{j}]"
            _item_object(c, cp)
            ctype = _enum(c, "type", cp, TARIFF_DIMENSION_TYPES, True, "TariffDimensionType")
            price = _number(c, "price", cp, True)
            vat = _number(c, "vat", cp, False)
            # step_size "int, card. 1": a positive number of units for ENERGY/TIME/PARKING_TIME.
            # FLAT has no unit ("Flat fee without unit for step_size"): the spec's own
            # Free-of-Charge example uses 0 there.  Lenient mode accepts 0 on every dimension
            # and treats it as "no rounding".
            step = _int(c, "step_size", cp, True, 1 if strict and ctype != "FLAT" else 0)
            pcs.append(PriceComponent(ctype, price, vat, step))
        ro = _object(e, "restrictions", ep, False)
        restr = _restrictions(ro, f"{ep}.restrictions", strict) if ro is not None else None
        if strict and restr is not None and restr.reservation is not None:
            for j, pc in enumerate(pcs):
                if pc.type not in ("FLAT", "TIME"):
                    _fail(f"{ep}.price_components[{j}].type",
                          f"a reservation element can only have FLAT and TIME components, got {_show(pc.type)}")
        out.append(TariffElement(tuple(pcs), restr))
    return tuple(out)


def _parse_tariff(data, strict, path):
    _item_object(data, path)
    d = data
    p = path
    cc = _country_code(d, "country_code", p, strict)
    pid = _party_id(d, "party_id", p, strict)
    tid = _str(d, "id", p, 36, strict, ci=True)
    cur = _currency(d, "currency", p, strict)
    ttype = _enum(d, "type", p, TARIFF_TYPES, False, "TariffType")
    alt_text = _display_texts(d, "tariff_alt_text", p, False, strict)
    alt_url = _str(d, "tariff_alt_url", p, 255, False)
    min_price = _price(d, "min_price", p, False, 1)
    max_price = _price(d, "max_price", p, False, 1)
    if min_price is not None and max_price is not None and min_price.excl_vat > max_price.excl_vat:
        _fail(f"{p}.min_price.excl_vat",
              f"must be <= max_price.excl_vat ({max_price.excl_vat}), got {min_price.excl_vat}")
    elements = _tariff_elements(d, p, strict)
    sdt = _dt(d, "start_date_time", p, False, strict)
    edt = _dt(d, "end_date_time", p, False, strict)
    if sdt is not None and edt is not None and edt < sdt:
        _fail(f"{p}.end_date_time", "must not be before start_date_time")
    energy_mix = _object(d, "energy_mix", p, False)
    last_updated = _dt(d, "last_updated", p, strict, strict)
    return Tariff(cc, pid, tid, cur, ttype, alt_text, alt_url, min_price, max_price, elements,
                  sdt, edt, energy_mix, last_updated, data)


def parse_tariff(data, strict=True):
    """Validate an OCPI 2.2.1 Tariff object and return a :class:`Tariff`."""
    return _parse_tariff(data, strict, "$")


# CPOs embed the same Tariff object in every CDR (CDR.tariffs).  Validating it again for each
# CDR would cost more than the rest of the CDR, so validated embedded tariffs are remembered:
# a later tariff is reused only when it is EQUAL (==) to a remembered one AND its numbers are
# the same numbers: == cannot see what validation does see between 1, 1.0, true and
# Decimal('1.0') (different types, or different Decimals: Decimal('1') != Decimal('1.0') as
# results), 0.0 and -0.0, Decimal('6.0') and Decimal('6.00').  So every number (and boolean)
# of the remembered tariff is checked to have the same type -- and for floats that are zero the
# same sign, for Decimals the same exponent (and sign of zero) -- in the new one, by code
# generated once per remembered tariff (_exact_probe).  The memo is exact for JSON input
# (dict, list, str, int, float, bool, None, Decimal); the key only selects the candidate.
# Without Decimals (numbers decoded as floats), one marshal.dumps of the new tariff compared
# with the packed remembered one is cheaper still, and as exact: marshal writes every type,
# float bit pattern, string and key order; equal bytes are equal content.  (Its back-references
# can make equal content pack differently: then == and the probe decide.)
_TARIFF_CACHE = {}
_TARIFF_CACHE_SIZE = 256


def _number_leaves(node, path, out):
    """``[(path, value)]`` of the numbers and booleans in a JSON tree (paths: keys/indexes)."""
    t = type(node)
    if t is dict:
        for k, v in node.items():
            _number_leaves(v, path + (k,), out)
    elif t is list:
        for i, v in enumerate(node):
            _number_leaves(v, path + (i,), out)
    elif t in (bool, int, float, Decimal):
        out.append((path, node))
    return out


def _embedded_tariff(t, strict, i):
    """The validated ``$.tariffs[i]`` (``t``), remembered (see above)."""
    if type(t) is not dict:
        return _parse_tariff(t, strict, f"$.tariffs[{i}]")
    key = (strict, t.get("id"), t.get("last_updated"), t.get("country_code"), t.get("party_id"))
    try:
        hit = _TARIFF_CACHE.get(key)
    except TypeError:  # unhashable id/last_updated: not cacheable, validation will say why
        return _parse_tariff(t, strict, f"$.tariffs[{i}]")
    if hit is not None:
        snapshot, exact, tariff, packed = hit
        if packed is not None:
            try:
                if _marshal_dumps(t) == packed:
                    return tariff
            except ValueError:  # a Decimal in t: marshal cannot pack it
                pass
        if snapshot == t and exact(t):
            return tariff
    # Packed before anything else references t's strings (marshal's references depend on
    # reference counts, so a later tariff decoded like this one packs alike).
    try:
        packed = _marshal_dumps(t)
    except ValueError:
        packed = None
    tariff = _parse_tariff(t, strict, f"$.tariffs[{i}]")
    if len(_TARIFF_CACHE) >= _TARIFF_CACHE_SIZE:
        _TARIFF_CACHE.clear()
    snapshot = copy.deepcopy(t)
    _TARIFF_CACHE[key] = (snapshot, _exact_probe(_number_leaves(snapshot, (), [])), tariff, packed)
    return tariff


def _leaf_extra(value, expr, name):
    """Python condition beyond the type (or None): a float zero has the sign of ``value``, a
    Decimal the exponent of ``value`` (the constant ``name``) and, for a zero, its sign."""
    t = type(value)
    if t is float:
        return f"_copysign(1.0, {expr}) == {_copysign(1.0, value)!r}" if value == 0 else None
    if t is Decimal:
        cond = f"{expr}.same_quantum({name})"
        if value == 0:
            cond += f" and {expr}.is_signed() is {value.is_signed()!r}"
        return cond
    return None


def _exact_probe(leaves):
    """``f(t) -> bool``: at every path of ``leaves`` (``_number_leaves`` of the snapshot), ``t``
    holds the same number: same type (one ``tuple(map(type, ...))`` comparison for all leaves),
    same sign for float zeros, same exponent (and sign of zero) for Decimals.  Only called on a
    ``t`` equal (==) to the snapshot, so the paths exist and the values are equal.  Straight-line
    code (common path prefixes read once); an interpreted loop when a key is unusual (no code
    generated from input text)."""
    if not leaves:
        return lambda t: True
    types = tuple(type(value) for _, value in leaves)
    ns = {"_copysign": _copysign, "_T": types}
    if not all(type(k) is int or (type(k) is str and _IDENT_RE.match(k)) for path, _ in leaves for k in path):
        def probe(t):  # unusual keys (extension fields): no code generation from input text
            for path, value in leaves:
                v = t
                for k in path:
                    v = v[k]
                if type(v) is not type(value):
                    return False
                if type(v) is float and v == 0 and _copysign(1.0, v) != _copysign(1.0, value):
                    return False
                if type(v) is Decimal and not (v.same_quantum(value) and v.is_signed() == value.is_signed()):
                    return False
            return True
        return probe
    # A trie of the paths, walked by straight-line code: one local variable per shared prefix.
    trie = {}
    for n, (path, value) in enumerate(leaves):
        node = trie
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = (n, value)
    lines = ["def probe(t):"]
    exprs = [None] * len(leaves)
    extras = []
    counter = [0]

    def walk(var, node):
        for k, sub in node.items():
            expr = f"{var}[{k!r}]"
            while type(sub) is dict and len(sub) == 1 and type(next(iter(sub.values()))) is dict:
                (k2, sub), = sub.items()
                expr += f"[{k2!r}]"
            if type(sub) is tuple:
                n, value = sub
                exprs[n] = expr
                ns[f"_c{n}"] = value
                extra = _leaf_extra(value, expr, f"_c{n}")
                if extra is not None:
                    extras.append(extra)
            else:
                counter[0] += 1
                child = f"n{counter[0]}"
                lines.append(f"    {child} = {expr}")
                walk(child, sub)

    walk("t", trie)
    cond = "tuple(map(type, (" + ", ".join(exprs) + ",))) == _T"
    lines.append("    return (" + "\n            and ".join([cond] + [f"({e})" for e in extras]) + ")")
    exec("\n".join(lines) + "\n", ns)  # noqa: S102 - keys are identifiers or ints, repr()-quoted
    return ns["probe"]


# --------------------------------------------------------------------------------------------
# CDR
# --------------------------------------------------------------------------------------------
# Table-driven validation of flat objects (the CDR itself, its token and location): one pass over
# the fields present, required fields checked afterwards.  Kinds: "s" string (maxlen, CiString,
# regex, what the regex means), "e" enum (values, name), "n" number >= min, "b" boolean,
# "d" DateTime, "p" Price (>= 0), "x" handled by the caller.
def _s(maxlen, ci=False, regex=None, meaning=None):
    return ("s", maxlen, ci, regex, meaning)


_CC = _s(2, True, _COUNTRY2_RE, "be an ISO 3166-1 alpha-2 country code (2 letters)")
_PID = _s(3, True, _PARTY_RE, "be a 3-character party id (letters/digits)")


def _check_field(d, key, path, spec, strict):
    """``d[key]`` validated according to ``spec`` by the plain helpers (None when absent or
    null): the rule of each kind of field in readable form.  The generated validators
    (``_field_code``) decide the same, faster, and take their errors from here."""
    kind = spec[0]
    if kind == "s":
        v = _str(d, key, path, spec[1], False, ci=spec[2])
        if v is not None and spec[3] is not None and not spec[3].match(v):
            _fail(f"{path}.{key}", f"must {spec[4]}, got {_show(v)}")
        return v
    if kind == "e":
        return _enum(d, key, path, spec[1], False, spec[2])
    if kind == "n":
        return _number(d, key, path, False, spec[1])
    if kind == "b":
        return _bool(d, key, path, False)
    if kind == "d":
        return _dt(d, key, path, False, strict)
    if kind == "p":
        return _price(d, key, path, False, 1)
    raise ValueError(kind)  # pragma: no cover


def _field_error(d, key, path, spec, strict):
    """Raise the error for d[key] that failed the fast check of ``spec``."""
    _check_field(d, key, path, spec, strict)
    raise AssertionError(key)  # pragma: no cover


def _plain_fields(d, path, schema, strict):
    """``{key: validated value or None}`` for the fields of ``schema`` ("x" ones left out),
    checked one by one in schema order by ``_check_field``: the readable form of a generated
    field validator (the references of the tests use it)."""
    return {k: _check_field(d, k, path, spec, strict) for k, spec in schema.items() if spec[0] != "x"}


def _number_code(src, dst, bad, indent):
    """Lines converting the JSON number ``src`` to a Decimal in ``dst`` as ``_to_decimal`` does
    (finite int / float / Decimal; bool and the rest refused), running ``bad`` otherwise."""
    i = " " * indent
    return [f"{i}t = type({src})",
            f"{i}if t is float and {src} - {src} == 0:",
            f"{i}    {dst} = _FD.get({src}) or _float_decimal({src})",
            f"{i}elif t is Decimal and {src}.is_finite():",
            f"{i}    {dst} = {src}",
            f"{i}elif t is int:",
            f"{i}    {dst} = Decimal({src})",
            f"{i}else:",
            f"{i}    {bad}"]


_CODE_MEMOS = []  # the sets of valid codes of the generated validators (see _field_code)


def _field_code(n, k, spec, ns, obj, path, inline_price=False):
    """Lines validating ``v`` (the value of key ``k`` of the object ``obj``, not None) according
    to ``spec`` and leaving the validated value in ``v``; the error, if any, comes from the
    generic helpers.  ``path`` is a Python expression (the JSON path of ``obj``)."""
    kind = spec[0]
    ns["_SPEC" + str(n)] = spec
    err = f"_field_error({obj}, {k!r}, {path}, _SPEC{n}, strict)"
    if kind == "s":
        cond = f"type(v) is not str or len(v) > {spec[1]} or not v.isprintable()"
        if spec[2]:
            cond += " or not v.isascii()"
        if spec[3] is None:
            return [f"if {cond}:", f"    {err}"]
        # Codes checked by a regular expression (country codes, party ids) repeat from CDR to
        # CDR: the strings that passed are remembered (bounded), membership is the same check.
        ns[f"_rx{n}"] = spec[3]
        ns[f"_ok{n}"] = ok = set()
        _CODE_MEMOS.append(ok)
        cond += f" or _rx{n}.match(v) is None"
        return [f"if type(v) is not str or v not in _ok{n}:",
                f"    if {cond}:",
                f"        {err}",
                f"    if len(_ok{n}) >= 1024:",
                f"        _ok{n}.clear()",
                f"    _ok{n}.add(v)"]
    if kind == "e":
        ns[f"_en{n}"] = spec[1]
        return [f"if type(v) is not str or v not in _en{n}:", f"    {err}"]
    if kind == "n":
        ns[f"_min{n}"] = Decimal(spec[1])
        return _number_code("v", "v", err, 0) + [f"if v < _min{n}:", f"    {err}"]
    if kind == "d":
        # _DT_MEMO holds valid common-form date-times only (same result in both modes)
        return ["if type(v) is not str or (w := _DT_MEMO.get(v)) is None:",
                "    try:",
                "        w = _datetime_value(v, strict)",
                "    except _BadValue as exc:",
                f"        raise OcpiValidationError({path} + '.{k}', str(exc)) from None",
                "v = w"]
    if kind == "p":
        if not inline_price:
            return [f"v = _price({obj}, {k!r}, {path}, False, 1)"]
        # _price's fast path for a valid price (numbers >= 0, incl_vat optional), inline; any
        # other case goes to _price, which gives the same result or the error.
        return (["ok = False",
                 "if type(v) is dict:",
                 "    x = v.get('excl_vat')"]
                + _number_code("x", "x", "x = None", 4)
                + ["    if x is not None and x >= _ZERO:",
                   "        y = v.get('incl_vat')",
                   "        if y is None:",
                   "            ok = True",
                   "        else:"]
                + _number_code("y", "y", "y = None", 12)
                + ["            ok = y is not None and y >= _ZERO",
                   f"v = _new_price(x, y) if ok else _price({obj}, {k!r}, {path}, False, 1)"])
    if kind == "b":
        return ["if type(v) is not bool:", f"    {err}"]
    raise ValueError(kind)  # pragma: no cover


def _code_namespace():
    return {"_field_error": _field_error, "_datetime_value": _datetime_value, "_BadValue": _BadValue,
            "OcpiValidationError": OcpiValidationError, "_price": _price, "Decimal": Decimal,
            "_FD": _FLOAT_DECIMALS, "_float_decimal": _float_decimal, "_DT_MEMO": _DT_MEMO,
            "_new_price": _new_price, "_ZERO": _DEC_ZERO}


def _indent(lines, n):
    return [" " * n + line for line in lines]


def _compile_fields(schema, name):
    """Build ``f(d, path, strict) -> dict`` validating the fields of ``schema`` present in ``d``
    (what ``_plain_fields`` gives, without the absent ones).

    Straight-line code generated once per schema (as ``dataclasses`` does for ``__init__``):
    one ``dict.get`` per known field, no per-field dispatch.  Errors are produced by the
    generic helpers (``_field_error``), so messages are the same everywhere.
    """
    ns = _code_namespace()
    lines = [f"def {name}(d, path, strict):", "    out = {}", "    g = d.get"]
    for n, (k, spec) in enumerate(schema.items()):
        if spec[0] == "x":
            continue
        lines += [f"    v = g({k!r})", "    if v is not None:"]
        lines += _indent(_field_code(n, k, spec, ns, "d", "path"), 8)
        lines.append(f"        out[{k!r}] = v")
    lines.append("    return out")
    exec("\n".join(lines), ns)  # noqa: S102 - generated from the constant schemas above
    return ns[name]


def _require(d, out, path, keys):
    """The error of the first of ``keys`` that has no value in ``out`` (validated fields)."""
    for k in keys:
        if out.get(k) is None:
            _get(d, k, path, True)


_TOKEN_SCHEMA = {
    "uid": _s(36, True), "type": ("e", TOKEN_TYPES, "TokenType"), "contract_id": _s(36, True),
    "country_code": _CC, "party_id": _PID,
}


# parse_cdr fills every slot of its CdrToken from the fields of _TOKEN_SCHEMA (all required in
# strict mode).
if list(_TOKEN_SCHEMA) != [f.name for f in fields(CdrToken)]:  # pragma: no cover
    raise RuntimeError("_TOKEN_SCHEMA differs from the CdrToken fields")


_COORD_SCHEMA = {
    "latitude": _s(10, False, _LAT_RE, "match -?[0-9]{1,2}\\.[0-9]{5,7}"),
    "longitude": _s(11, False, _LON_RE, "match -?[0-9]{1,3}\\.[0-9]{5,7}"),
}
_LOCATION_SCHEMA = {
    "id": _s(36, True), "name": _s(255), "address": _s(45), "city": _s(45), "postal_code": _s(10),
    "state": _s(20), "country": _s(3, False, _COUNTRY3_RE, "be an ISO 3166-1 alpha-3 country code"),
    "coordinates": ("x",), "evse_uid": _s(36, True), "evse_id": _s(48, True), "connector_id": _s(36, True),
    "connector_standard": ("e", CONNECTOR_TYPES, "ConnectorType"),
    "connector_format": ("e", CONNECTOR_FORMATS, "ConnectorFormat"),
    "connector_power_type": ("e", POWER_TYPES, "PowerType"),
}
_LOCATION_REQUIRED = ("id", "address", "city", "country", "coordinates", "evse_uid", "evse_id",
                      "connector_id", "connector_standard", "connector_format", "connector_power_type")


_location_fields = _compile_fields(_LOCATION_SCHEMA, "_location_fields")
_coord_fields = _compile_fields(_COORD_SCHEMA, "_coord_fields")


def _cdr_location(d, path, strict):
    f = _location_fields(d, path, strict)
    co = _object(d, "coordinates", path, strict)
    coords = None
    if co is not None:
        cp = f"{path}.coordinates"
        c = _coord_fields(co, cp, strict)
        if strict:
            _require(co, c, cp, _COORD_SCHEMA)
        coords = _new_geo(c.get("latitude"), c.get("longitude"))
    if strict:
        _require(d, f, path, [k for k in _LOCATION_REQUIRED if k != "coordinates"])
    g = f.get
    return _new_location(g("id"), g("name"), g("address"), g("city"), g("postal_code"), g("state"),
                       g("country"), coords, g("evse_uid"), g("evse_id"), g("connector_id"),
                       g("connector_standard"), g("connector_format"), g("connector_power_type"))


# A CPO sends many CDRs for the same EVSE: its CdrLocation object is validated once and reused
# for a later location with the same values.  A CdrLocation depends only on the values of the
# known fields (unknown ones are ignored) and of latitude/longitude: the key is exactly those
# values (``d.get``: absent and null are both None, as in the result), so equal keys validate
# to equal CdrLocations.  Only valid locations are stored, whose values are strings or None; a
# value of another JSON type never equals a string, so it cannot hit (and an array or object
# makes the key unhashable: validation then says what is wrong).
_LOCATION_CACHE = {}
_LOCATION_CACHE_SIZE = 8192
_LOCATION_KEYS = tuple(k for k in _LOCATION_SCHEMA if k != "coordinates")


def _cached_location(d, path, strict):
    co = d.get("coordinates")
    if type(co) is dict:
        key = (strict, co.get("latitude"), co.get("longitude"), *map(d.get, _LOCATION_KEYS))
    elif co is None:
        key = (strict, _MISSING, None, *map(d.get, _LOCATION_KEYS))
    else:  # not an object: validation says so
        return _cdr_location(d, path, strict)
    try:
        hit = _LOCATION_CACHE.get(key)
    except TypeError:  # unhashable values: validation will say what is wrong
        return _cdr_location(d, path, strict)
    if hit is not None:
        return hit
    loc = _cdr_location(d, path, strict)
    if len(_LOCATION_CACHE) >= _LOCATION_CACHE_SIZE:
        _LOCATION_CACHE.clear()
    _LOCATION_CACHE[key] = loc
    return loc


def _signed_data(d, path, strict):
    p = path
    _str(d, "encoding_method", p, 36, strict, ci=True)
    _int(d, "encoding_method_version", p, False)
    _str(d, "public_key", p, 512, False)
    _str(d, "url", p, 512, False)
    values = _list(d, "signed_values", p, strict, strict)
    if values:
        for i, sv in enumerate(values):
            sp = f"{p}.signed_values[{i}]"
            _item_object(sv, sp)
            _str(sv, "nature", sp, 32, strict, ci=True)
            _str(sv, "plain_data", sp, 5000, strict)
            _str(sv, "signed_data", sp, 5000, strict)
    return d


_DIM_TWIN = _twin(CdrDimension)
_PERIOD_TWIN = _twin(ChargingPeriod)


# The rules of a charging-period dimension, written out once in _dimensions_error (with their
# messages): an object; a "type" that is a CdrDimensionType allowed in the mode (strict: not a
# Session-only one) and not already in the period; a "volume" that is a number, >= 0 unless the
# type is signed (_SIGNED_DIMENSIONS), at most _STATE_OF_CHARGE_MAX for STATE_OF_CHARGE.  The
# loop of _charging_periods accepts fast exactly what they accept, from the same tables, and
# calls _dimensions_error for anything else (the tests compare the two on random dimensions).
_ALLOWED_STRICT = frozenset(CDR_DIMENSION_TYPES - CDR_SESSION_ONLY_DIMENSIONS)
_ALLOWED_LENIENT = frozenset(CDR_DIMENSION_TYPES)
_STATE_OF_CHARGE_MAX = 100
# Valid ChargingPeriod.tariff_id values seen (CiString(36)); bounded, membership = the check.
_TARIFF_IDS = set()


class _Invalid(Exception):
    """Internal: a dimension is not valid; _dimensions_error says which and why."""


def _dimensions_error(dims, i, path, strict):
    """Raise the error of the first invalid dimension of charging_periods[i] (in order)."""
    allowed = _ALLOWED_STRICT if strict else _ALLOWED_LENIENT
    seen = set()
    for j, dim in enumerate(dims):
        dp = f"{path}.charging_periods[{i}].dimensions[{j}]"
        if type(dim) is not dict:
            _fail(dp, f"must be an object, got {_show(dim)}")
        t = dim.get("type")
        if t is None:
            _get(dim, "type", dp, True)
        if type(t) is not str or t not in CDR_DIMENSION_TYPES:
            _fail(f"{dp}.type", f"must be a valid CdrDimensionType, got {_show(t)}")
        if t not in allowed:
            _fail(f"{dp}.type", f"{t} is a Session-only dimension and SHALL NOT be used in a CDR")
        if t in seen:
            _fail(f"{dp}.type", f"duplicate dimension {t} in the same charging period")
        v = dim.get("volume")
        if v is None:
            _get(dim, "volume", dp, True)
        vol = _number_at(v, f"{dp}.volume", None if t in _SIGNED_DIMENSIONS else 0)
        if t == "STATE_OF_CHARGE" and vol > _STATE_OF_CHARGE_MAX:
            _fail(f"{dp}.volume", f"must be <= {_STATE_OF_CHARGE_MAX} (percent), got {_show(v)}")
        seen.add(t)
    raise AssertionError(path)  # pragma: no cover - called only when a dimension is invalid


def _charging_periods(d, path, strict, start, end):
    lst = _list(d, "charging_periods", path, True, True)
    out = []
    prev = start
    allowed = _ALLOWED_STRICT if strict else _ALLOWED_LENIENT
    signed_types = _SIGNED_DIMENSIONS
    dt_memo = _DT_MEMO
    # ChargingPeriods and CdrDimensions built inline through their slot twins (what _maker's
    # constructors do, without a call per object: a CDR has a dozen dimensions).
    new = object.__new__
    dim_cls = CdrDimension
    dim_twin = _DIM_TWIN
    period_cls = ChargingPeriod
    period_twin = _PERIOD_TWIN
    zero = _DEC_ZERO
    fcache = _FLOAT_DECIMALS
    tariff_ids = _TARIFF_IDS
    for i, cp in enumerate(lst):
        if type(cp) is not dict:
            _fail(f"{path}.charging_periods[{i}]", f"must be an object, got {_show(cp)}")
        sv = cp.get("start_date_time")
        # The first period usually starts at start_date_time, just parsed: look it up inline.
        if type(sv) is not str or (pstart := dt_memo.get(sv)) is None:
            if sv is None:
                _get(cp, "start_date_time", f"{path}.charging_periods[{i}]", True)
            try:
                pstart = _datetime_value(sv, strict)
            except _BadValue as exc:
                raise OcpiValidationError(f"{path}.charging_periods[{i}].start_date_time", str(exc)) from None
        if pstart < prev:
            if i == 0:
                _fail(f"{path}.charging_periods[0].start_date_time",
                      "must not be before the CDR start_date_time")
            _fail(f"{path}.charging_periods[{i}].start_date_time",
                  f"must not be before the start of charging_periods[{i - 1}] (periods must be in chronological order)")
        if pstart > end:
            _fail(f"{path}.charging_periods[{i}].start_date_time",
                  "must not be after the CDR end_date_time")
        prev = pstart
        dims = cp.get("dimensions")
        if type(dims) is not list or not dims:
            if dims is None:
                _get(cp, "dimensions", f"{path}.charging_periods[{i}]", True)
            if type(dims) is not list:
                _fail(f"{path}.charging_periods[{i}].dimensions", f"must be an array, got {_show(dims)}")
            _fail(f"{path}.charging_periods[{i}].dimensions", "must contain at least one element")
        # The rules of _dimensions_error, fast: each dimension's volume is checked as it is
        # converted; the type (allowed in this mode), duplicates and the state-of-charge bound
        # once per period below.  Anything wrong: _dimensions_error walks the dimensions in
        # order and raises the error of the first invalid one.
        dl = []
        seen = {}
        try:
            for dim in dims:
                t = dim["type"]
                v = dim["volume"]
                tv = type(v)
                if tv is float:
                    vol = fcache.get(v)
                    if vol is None:
                        if v - v != 0:  # inf, nan
                            raise _Invalid
                        vol = _float_decimal(v)
                elif tv is Decimal:
                    if not v.is_finite():
                        raise _Invalid
                    vol = v
                elif tv is int:
                    vol = Decimal(v)
                else:
                    raise _Invalid
                if vol < zero and t not in signed_types:
                    raise _Invalid
                seen[t] = vol
                o = new(dim_twin)
                o.type = t
                o.volume = vol
                o.__class__ = dim_cls
                dl.append(o)
        except (KeyError, TypeError, _Invalid):
            _dimensions_error(dims, i, path, strict)
        if (len(seen) != len(dl) or not allowed.issuperset(seen)
                or ("STATE_OF_CHARGE" in seen and seen["STATE_OF_CHARGE"] > _STATE_OF_CHARGE_MAX)):
            _dimensions_error(dims, i, path, strict)
        tid = cp.get("tariff_id")
        if tid is not None and (type(tid) is not str or tid not in tariff_ids):
            _str(cp, "tariff_id", f"{path}.charging_periods[{i}]", 36, False, ci=True)  # raises if invalid
            if len(tariff_ids) >= 1024:
                tariff_ids.clear()
            tariff_ids.add(tid)
        po = new(period_twin)
        po.start_date_time = pstart
        po.dimensions = tuple(dl)
        po.tariff_id = tid
        po.volumes = seen
        po.__class__ = period_cls
        out.append(po)
    return tuple(out)


_CDR_SCHEMA = {
    "country_code": _CC, "party_id": _PID, "id": _s(39, True),
    "start_date_time": ("d",), "end_date_time": ("d",), "session_id": _s(36, True),
    "cdr_token": ("x",), "auth_method": ("e", AUTH_METHODS, "AuthMethod"),
    "authorization_reference": _s(36, True), "cdr_location": ("x",), "meter_id": _s(255),
    "currency": ("x",), "tariffs": ("x",), "charging_periods": ("x",), "signed_data": ("x",),
    "total_cost": ("x",), "total_fixed_cost": ("p",), "total_energy": ("n", 0),
    "total_energy_cost": ("p",), "total_time": ("n", 0), "total_time_cost": ("p",),
    "total_parking_time": ("n", 0), "total_parking_cost": ("p",), "total_reservation_cost": ("p",),
    "remark": _s(255), "invoice_reference_id": _s(39, True), "credit": ("b",),
    "credit_reference_id": _s(39, True), "home_charging_compensation": ("b",), "last_updated": ("d",),
}
_CDR_REQUIRED_STRICT = ("id", "start_date_time", "end_date_time", "auth_method", "total_energy",
                        "total_time", "last_updated", "country_code", "party_id")
_CDR_REQUIRED_LENIENT = ("start_date_time", "end_date_time")


def _parse_cdr_reference(data, strict=True):
    """The readable form of ``parse_cdr`` (same result, same errors in the same order), built
    from the plain helpers only (``_check_field`` and the like, ``_parse_tariff``, the
    dataclass constructors): ``parse_cdr`` is generated to do the same (``_compile_parse_cdr``)
    and the tests check the two against each other.  The fields present are validated in
    schema order, then the required ones are checked."""
    p = "$"
    d = _item_object(data, p)
    f = _plain_fields(d, p, _CDR_SCHEMA, strict)
    _require(d, f, p, _CDR_REQUIRED_STRICT if strict else _CDR_REQUIRED_LENIENT)
    if f["id"] is not None and not f["credit"] and len(f["id"]) > 36:
        _fail("$.id", f"must be at most 36 characters on a non-credit CDR, got {len(f['id'])}")
    if strict and f["credit"] and f["credit_reference_id"] is None:
        _fail("$.credit_reference_id", "required field is missing (credit is true)")
    if f["end_date_time"] < f["start_date_time"]:
        _fail("$.end_date_time", "must not be before start_date_time")
    tok = _object(d, "cdr_token", p, strict)
    loc = _object(d, "cdr_location", p, strict)
    currency = _currency(d, "currency", p, True)
    tariffs = _list(d, "tariffs", p, False, False) or []
    tariff_objs = tuple(_parse_tariff(t, strict, f"$.tariffs[{i}]") for i, t in enumerate(tariffs))
    periods = _charging_periods(d, p, strict, f["start_date_time"], f["end_date_time"])
    sd = _object(d, "signed_data", p, False)
    token = None
    if tok is not None:
        tf = _plain_fields(tok, "$.cdr_token", _TOKEN_SCHEMA, strict)
        if strict:
            _require(tok, tf, "$.cdr_token", _TOKEN_SCHEMA)
        token = CdrToken(**tf)
    location = None
    if loc is not None:
        lp = "$.cdr_location"
        lf = _plain_fields(loc, lp, _LOCATION_SCHEMA, strict)
        co = _object(loc, "coordinates", lp, strict)
        coords = None
        if co is not None:
            cf = _plain_fields(co, f"{lp}.coordinates", _COORD_SCHEMA, strict)
            if strict:
                _require(co, cf, f"{lp}.coordinates", _COORD_SCHEMA)
            coords = GeoLocation(**cf)
        if strict:
            _require(loc, lf, lp, [k for k in _LOCATION_REQUIRED if k != "coordinates"])
        location = CdrLocation(coordinates=coords, **lf)
    signed = _signed_data(sd, "$.signed_data", strict) if sd is not None else None
    total_cost = _price(d, "total_cost", p, strict, -1 if f["credit"] else 1)
    return Cdr(cdr_token=token, cdr_location=location, currency=currency, tariffs=tariff_objs,
               charging_periods=periods, signed_data=signed, total_cost=total_cost, raw=data, **f)


def _compile_parse_cdr():
    """Generate ``parse_cdr``: ``_parse_cdr_reference`` as one straight-line function -- the
    CDR fields (prices and date-time memo lookups inline), the required fields, the object
    checks of cdr_token / cdr_location / signed_data, the currency, the token fields and
    ``total_cost``, and the Cdr built through its slots -- with the same checks in the same
    order, so the same result and the same first error."""
    ns = _code_namespace()
    ns.update({"_fail": _fail, "_show": _show, "_get": _get, "_currency": _currency, "_list": _list,
               "_MINOR_UNITS": currencies.MINOR_UNITS, "_embedded_tariff": _embedded_tariff,
               "_charging_periods": _charging_periods, "_cached_location": _cached_location,
               "_signed_data": _signed_data, "_new": object.__new__, "_Cdr": Cdr, "_CdrToken": CdrToken})
    L = ["def parse_cdr(data, strict=True):",
         '    """Validate an OCPI 2.2.1 CDR object and return a :class:`Cdr`."""',
         "    d = data",
         "    if type(d) is not dict:",
         "        _fail('$', f'must be an object, got {_show(d)}')",
         "    g = d.get"]
    var = {}
    n = 0
    for k, spec in _CDR_SCHEMA.items():
        if spec[0] == "x":
            continue
        n += 1
        var[k] = f"f{n}"
        L += [f"    f{n} = v = g({k!r})", "    if v is not None:"]
        L += _indent(_field_code(n, k, spec, ns, "d", "'$'", inline_price=True), 8)
        L.append(f"        f{n} = v")
    L.append("    if strict:")
    L += [f"        if {var[k]} is None:\n            _get(d, {k!r}, '$', True)" for k in _CDR_REQUIRED_STRICT]
    L.append("    else:")
    L += [f"        if {var[k]} is None:\n            _get(d, {k!r}, '$', True)" for k in _CDR_REQUIRED_LENIENT]
    cid, credit, credit_ref = var["id"], var["credit"], var["credit_reference_id"]
    start, end = var["start_date_time"], var["end_date_time"]
    L += [f"    if {cid} is not None and not {credit} and len({cid}) > 36:",
          f"        _fail('$.id', f'must be at most 36 characters on a non-credit CDR, got {{len({cid})}}')",
          f"    if strict and {credit} and {credit_ref} is None:",
          "        _fail('$.credit_reference_id', 'required field is missing (credit is true)')",
          f"    if {end} < {start}:",
          "        _fail('$.end_date_time', 'must not be before start_date_time')"]
    for name, key, required in (("tok", "cdr_token", "strict"), ("loc", "cdr_location", "strict")):
        L += [f"    {name} = g({key!r})",
              f"    if {name} is None:",
              f"        if {required}:",
              f"            _get(d, {key!r}, '$', True)",
              f"    elif type({name}) is not dict:",
              f"        _fail('$.{key}', f'must be an object, got {{_show({name})}}')"]
    L += ["    currency = g('currency')",
          "    if type(currency) is not str or currency not in _MINOR_UNITS:",
          "        _currency(d, 'currency', '$', True)",
          "    tariffs = g('tariffs')",
          "    if tariffs is not None and type(tariffs) is not list:",
          "        _list(d, 'tariffs', '$', False, False)",
          "    if not tariffs:",
          "        tariff_objs = ()",
          "    elif len(tariffs) == 1:",
          "        tariff_objs = (_embedded_tariff(tariffs[0], strict, 0),)",
          "    else:",
          "        tariff_objs = tuple(_embedded_tariff(t, strict, i) for i, t in enumerate(tariffs))",
          f"    periods = _charging_periods(d, '$', strict, {start}, {end})",
          "    sd = g('signed_data')",
          "    if sd is not None and type(sd) is not dict:",
          "        _fail('$.signed_data', f'must be an object, got {_show(sd)}')",
          "    if tok is None:",
          "        token = None",
          "    else:",
          "        tg = tok.get"]
    tvars = []
    for k, spec in _TOKEN_SCHEMA.items():
        n += 1
        tvars.append(f"f{n}")
        L += [f"        f{n} = v = tg({k!r})", "        if v is not None:"]
        L += _indent(_field_code(n, k, spec, ns, "tok", "'$.cdr_token'"), 12)
    L.append("        if strict:")
    L += [f"            if {v} is None:\n                _get(tok, {k!r}, '$.cdr_token', True)" for k, v in zip(_TOKEN_SCHEMA, tvars)]
    ns["_CdrTokenTwin"] = _twin(CdrToken)
    L.append("        token = _new(_CdrTokenTwin)")
    L += [f"        token.{name} = {v}" for name, v in zip(_TOKEN_SCHEMA, tvars)]
    L.append("        token.__class__ = _CdrToken")
    L += ["    location = _cached_location(loc, '$.cdr_location', strict) if loc is not None else None",
          "    signed = _signed_data(sd, '$.signed_data', strict) if sd is not None else None",
          f"    if {credit}:",
          "        total_cost = _price(d, 'total_cost', '$', strict, -1)",
          "    else:",
          "        v = g('total_cost')",
          "        if v is None:",
          "            total_cost = _price(d, 'total_cost', '$', strict, 1)",
          "        else:"]
    L += _indent(_field_code(0, "total_cost", ("p",), ns, "d", "'$'", inline_price=True), 12)
    L += ["            total_cost = v"]
    values = dict(var)
    values.update({"cdr_token": "token", "cdr_location": "location", "currency": "currency",
                   "tariffs": "tariff_objs", "charging_periods": "periods", "signed_data": "signed",
                   "total_cost": "total_cost", "raw": "data"})
    ns["_CdrTwin"] = _twin(Cdr)
    L.append("    o = _new(_CdrTwin)")
    L += [f"    o.{f.name} = {values[f.name]}" for f in fields(Cdr)]
    L += ["    o.__class__ = _Cdr", "    return o"]
    exec("\n".join(L) + "\n", ns)  # noqa: S102 - generated from the constant schemas above
    return ns["parse_cdr"]


parse_cdr = _compile_parse_cdr()


# Memos of the other modules of the core, which register them at import (pricing: hours of a
# duration, time zones), so that _clear_memos empties them too.
_OTHER_MEMOS = []


def _clear_memos():
    """Empty every memo of the core (validated tariffs and locations, float conversions,
    date-times, valid codes; pricing's hours and zones once pricing is imported): for
    benchmarks that start cold, and for tests.  The code compiled per Tariff object
    (``pricing.compile_tariff``) stays: it belongs to that object."""
    for memo in (_TARIFF_CACHE, _LOCATION_CACHE, _FLOAT_DECIMALS, _FLOAT_DECIMALS_OLD, _DT_MEMO, _TARIFF_IDS,
                 *_CODE_MEMOS, *_OTHER_MEMOS):
        memo.clear()
