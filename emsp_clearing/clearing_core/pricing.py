"""OCPI 2.2.1 pricing engine: ``price_cdr(cdr, tariff, tz="UTC") -> PriceResult``.

Semantics (OCPI 2.2.1, release-2.2.1-bugfixes; see README.md of this package):

* Every charging period is priced on the dimension volumes stated by the CDR (ENERGY in kWh,
  TIME / PARKING_TIME / RESERVATION_TIME in hours).  A period ends when the next one starts;
  the last one ends at the CDR ``end_date_time``.
* For each dimension of each period, the price component is taken from the FIRST tariff
  element that has a component of that dimension and whose restrictions all hold at the
  start of the period: time of day / date / day of week in local time of ``tz``;
  ``min_kwh``/``max_kwh`` on the energy consumed in the session before the period;
  ``min_duration``/``max_duration`` on the session duration at the start of the period;
  ``min/max_current`` and ``min/max_power`` on the period's MIN_/MAX_ values.
* FLAT: charged once each time the element supplying the FLAT component becomes active
  (i.e. in a period whose selected FLAT element differs from the previous period's).
* step_size: once per session on the billed total of a dimension, with the step_size of the
  last priced line of that dimension; the rounding surplus is added to that last line.
  When both TIME and PARKING_TIME were billed, only PARKING_TIME is rounded.  ENERGY and
  reservation time are rounded independently.
* Reservation: periods carrying a RESERVATION_TIME dimension are reservation periods.  Their
  RESERVATION_TIME volume is priced with the TIME component, and their FLAT with the FLAT
  component, of elements restricted to ``reservation`` (RESERVATION_EXPIRES elements first
  when the reservation expired, i.e. the CDR has no period other than reservation periods).
  Non-reservation elements never apply to reservation periods and vice versa.
* VAT per component: ``incl = excl * (1 + vat/100)``; no ``vat`` -> ``incl = excl``.
* min_price / max_price clamp the excl-VAT total and the incl-VAT total independently (both
  rules apply, as the Tariff object notes say); ``min_max_adjustment`` holds the difference.

Results are unrounded Decimals.  Every product and sum is exact (computed in a 1000-digit
context); the only rounding is to 28 significant digits where hours come from a division (a
step_size surplus, e.g. 301 s = 0.08361... h, and the session duration).  Line amounts are
therefore exactly ``unit_price * billed_volume`` (times ``1 + vat/100``), and
``sum(line.excl_vat) + min_max_adjustment.excl_vat == total_cost.excl_vat`` holds exactly
(likewise incl VAT and per-category totals) -- sum them in a context wide enough not to round
(e.g. ``decimal.localcontext(prec=200)``), as the totals themselves are.
"""

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import OcpiValidationError
from .ocpi import DAYS_OF_WEEK, V221, Price, TariffRestrictions, TaxAmount, _new, price_to_ocpi

__all__ = ["PricedLine", "PriceResult", "price_cdr", "prepare_tariff", "PreparedTariff", "ZERO_PRICE"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_THOUSAND = Decimal(1000)
_SECONDS_PER_HOUR = Decimal(3600)
_MICRO = Decimal("0.000001")
ZERO_PRICE = Price(_ZERO, _ZERO)

# Line amounts: 28 significant digits, explicit so that a caller's context cannot change them.
_CTX = Context(prec=28, rounding=ROUND_HALF_UP)
# Products and sums: wide enough that they never round.
_EXACT = Context(prec=1000, rounding=ROUND_HALF_UP, Emax=999999, Emin=-999999)

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu", "GMT",
                        "Etc/GMT", "Z"})


class PricedLine(NamedTuple):
    """One priced (charging period x dimension).  ``dimension`` is ENERGY, FLAT, TIME,
    PARKING_TIME or RESERVATION (reservation time); ``category`` names the CDR total it goes
    to: FIXED, ENERGY, TIME, PARKING or RESERVATION (a FLAT of a reservation element is a
    RESERVATION cost, as ``total_reservation_cost`` includes "fixed price components")."""

    period_index: int
    period_start: datetime
    period_end: datetime
    dimension: str
    category: str
    volume: Decimal
    billed_volume: Decimal
    unit_price: Decimal
    vat: Decimal | None
    excl_vat: Decimal
    incl_vat: Decimal
    element_index: int
    step_size: int


def _fmt(value, places):
    """Round half-up to ``places`` decimals and normalise (5.5000 -> 5.5, 3E+1 -> 30)."""
    with localcontext(_CTX):
        q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if not q:
            return Decimal(0)
        q = q.normalize()
        if q.as_tuple().exponent > 0:
            q = q.quantize(_ONE)
        return q


class PriceResult(NamedTuple):
    currency: str
    total_cost: Price
    total_fixed_cost: Price
    total_energy: Decimal
    total_energy_cost: Price
    total_time: Decimal
    total_time_cost: Price
    total_parking_time: Decimal
    total_parking_cost: Price
    total_reservation_time: Decimal
    total_reservation_cost: Price
    min_max_adjustment: Price
    lines: tuple

    def tax_amounts(self, category=None):
        """The taxes of ``total_cost`` (or of the lines of ``category``: FIXED, ENERGY...) per
        VAT rate, as ``ocpi.TaxAmount("VAT", None, rate, amount)`` in the order the rates
        first appear; lines without VAT carry no tax.  For the total, the tax part of
        ``min_max_adjustment`` goes to the rate when there is one, else to a TaxAmount
        without percentage.  The amounts add up exactly to ``incl_vat - excl_vat``."""
        with localcontext(_EXACT):
            by_rate = {}
            for line in self.lines:
                if line.vat is not None and (category is None or line.category == category):
                    by_rate[line.vat] = by_rate.get(line.vat, _ZERO) + (line.incl_vat - line.excl_vat)
            if category is None:
                adjustment = self.min_max_adjustment.incl_vat - self.min_max_adjustment.excl_vat
                if adjustment:
                    if len(by_rate) == 1:
                        rate = next(iter(by_rate))
                        by_rate[rate] += adjustment
                    else:
                        by_rate[None] = by_rate.get(None, _ZERO) + adjustment
            return tuple(TaxAmount("VAT", None, rate, amount) for rate, amount in by_rate.items())

    def to_ocpi_totals(self, places=4, as_float=False, version=V221):
        """The OCPI CDR totals rounded (ROUND_HALF_UP) to ``places`` decimals.

        Values are normalised Decimals (``5.5``, ``30``), or floats when ``as_float`` is true
        (a float of a <= 4-decimal Decimal prints without artefacts).  Keys: total_cost,
        total_energy, total_energy_cost, total_time, total_time_cost, total_parking_time,
        total_parking_cost, total_fixed_cost, total_reservation_cost; costs are the Price of
        ``version``: ``{"excl_vat", "incl_vat"}`` (2.2.1) or ``{"before_taxes", "taxes"}``
        (2.3.0, taxes per VAT rate: ``tax_amounts``).
        """
        conv = float if as_float else (lambda x: x)

        def num(v):
            return conv(_fmt(v, places))

        def price(p, category):
            if version == V221:
                return {"excl_vat": num(p.excl_vat), "incl_vat": num(p.incl_vat)}
            return price_to_ocpi(p._replace(taxes=self.tax_amounts(category)), version, num)

        return {
            "total_cost": price(self.total_cost, None),
            "total_energy": num(self.total_energy),
            "total_energy_cost": price(self.total_energy_cost, "ENERGY"),
            "total_time": num(self.total_time),
            "total_time_cost": price(self.total_time_cost, "TIME"),
            "total_parking_time": num(self.total_parking_time),
            "total_parking_cost": price(self.total_parking_cost, "PARKING"),
            "total_fixed_cost": price(self.total_fixed_cost, "FIXED"),
            "total_reservation_cost": price(self.total_reservation_cost, "RESERVATION"),
        }


# --------------------------------------------------------------------------------------------
# Prepared tariff: restrictions turned into plain comparable values, candidates per dimension.
# --------------------------------------------------------------------------------------------
def _seconds_of_day(hhmm):
    return int(hhmm[:2]) * 3600 + int(hhmm[3:]) * 60


class _Element:
    """One tariff element, ready for ``_select``: its restrictions as numbers, dates and weekday
    numbers, and per dimension what a priced line needs from its first component of that
    dimension (``info``: price, vat, step_size, 1 + vat/100 or None, element index)."""

    __slots__ = ("always", "local", "start_s", "end_s", "start_date", "end_date",
                 "days", "min_kwh", "max_kwh", "min_current", "max_current", "min_power",
                 "max_power", "min_dur", "max_dur", "reservation", "info")

    def __init__(self, index, element, taxed):
        self.info = {}
        for pc in element.price_components:
            if pc.type not in self.info:  # first component of a dimension in an element wins
                vat = pc.vat if taxed else None  # tax_included N/A: no tax applies
                vat_factor = _ONE + vat / _HUNDRED if vat is not None else None
                self.info[pc.type] = (pc.price, vat, pc.step_size, vat_factor, index)
        r = element.restrictions or TariffRestrictions()
        self.start_s = _seconds_of_day(r.start_time) if r.start_time is not None else None
        self.end_s = _seconds_of_day(r.end_time) if r.end_time is not None else None
        self.start_date = date.fromisoformat(r.start_date) if r.start_date is not None else None
        self.end_date = date.fromisoformat(r.end_date) if r.end_date is not None else None
        self.days = frozenset(DAYS_OF_WEEK.index(d) for d in r.day_of_week) if r.day_of_week else None
        self.min_kwh, self.max_kwh = r.min_kwh, r.max_kwh
        self.min_current, self.max_current = r.min_current, r.max_current
        self.min_power, self.max_power = r.min_power, r.max_power
        self.min_dur, self.max_dur = r.min_duration, r.max_duration
        self.reservation = r.reservation
        self.local = (self.start_s is not None or self.end_s is not None or self.days is not None
                      or self.start_date is not None or self.end_date is not None)
        self.always = not (self.local or self.min_kwh is not None or self.max_kwh is not None
                           or self.min_current is not None or self.max_current is not None
                           or self.min_power is not None or self.max_power is not None
                           or self.min_dur is not None or self.max_dur is not None)


class PreparedTariff:
    """A tariff ready for pricing: for each kind of period (0 regular, 1 reservation, 2 expired
    reservation), the candidate elements of each dimension in tariff order."""

    __slots__ = ("tariff", "cands", "needs_local", "inclusive")

    def __init__(self, tariff):
        self.tariff = tariff
        # 2.3.0 tax_included: YES = prices include the taxes; N/A = no tax applies; NO (and
        # 2.2.1, None) = prices before taxes.
        self.inclusive = tariff.tax_included == "YES"
        taxed = tariff.tax_included != "N/A"
        elems = [_Element(i, e, taxed) for i, e in enumerate(tariff.elements)]
        regular = [e for e in elems if e.reservation is None]
        reserv = [e for e in elems if e.reservation == "RESERVATION"]
        expires = [e for e in elems if e.reservation == "RESERVATION_EXPIRES"]
        self.cands = tuple(
            {dim: tuple(e for e in group if dim in e.info) for dim in ("ENERGY", "FLAT", "TIME", "PARKING_TIME")}
            for group in (regular, reserv, expires + reserv)
        )
        self.needs_local = any(e.local for e in elems)


_PREPARED = {}  # id(tariff) -> PreparedTariff of that object (a caller prices many CDRs with one)
_PREPARED_SIZE = 512


def prepare_tariff(tariff):
    """The :class:`PreparedTariff` of ``tariff``, kept for the same object (bounded)."""
    hit = _PREPARED.get(id(tariff))
    if hit is not None and hit.tariff is tariff:
        return hit
    if len(_PREPARED) >= _PREPARED_SIZE:
        _PREPARED.clear()
    prepared = _PREPARED[id(tariff)] = PreparedTariff(tariff)
    return prepared


def _zone(tz):
    """The tzinfo of ``tz`` (IANA name or tzinfo), None for UTC; ``ValueError`` if unknown."""
    if not tz or tz is timezone.utc:  # None / "" / False: UTC
        return None
    if not isinstance(tz, str):
        return tz  # any tzinfo
    if tz in _UTC_NAMES:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


# --------------------------------------------------------------------------------------------
# Element selection
# --------------------------------------------------------------------------------------------
def _measure(dims, primary, avg, secondary):
    v = dims.get(primary)
    if v is None:
        v = dims.get(avg)
        if v is None:
            v = dims.get(secondary)
    return v


def _in_time_window(e, tod):
    """``tod`` (local seconds since midnight) inside [start_time, end_time); wraps past midnight
    when start_time > end_time."""
    st, et = e.start_s, e.end_s
    if st is not None and et is not None:
        return st <= tod < et if st <= et else (tod >= st or tod < et)
    if st is not None:
        return tod >= st
    return et is None or tod < et


def _select(cands, dim, at, energy, dur_s, dims):
    """The ``info`` of ``dim`` of the first candidate element whose restrictions all hold at the
    start of a period, or None (no cost for that dimension).  ``at``: the local (weekday,
    seconds since midnight, date) of the period start, None when no element of the tariff
    needs them; ``energy``: the session's energy before the period; ``dur_s``: seconds since
    the session start; ``dims``: the period's {dimension: volume}."""
    for e in cands:
        if not e.always:
            if e.local:
                weekday, tod, day = at
                if e.days is not None and weekday not in e.days:
                    continue
                if not _in_time_window(e, tod):
                    continue
                if e.start_date is not None and day < e.start_date:
                    continue
                if e.end_date is not None and day >= e.end_date:
                    continue
            if e.min_kwh is not None and energy < e.min_kwh:
                continue
            if e.max_kwh is not None and energy >= e.max_kwh:
                continue
            if e.min_dur is not None and dur_s < e.min_dur:
                continue
            if e.max_dur is not None and dur_s >= e.max_dur:
                continue
            if e.min_current is not None:
                v = _measure(dims, "MIN_CURRENT", "CURRENT", "MAX_CURRENT")
                if v is None or v < e.min_current:
                    continue
            if e.max_current is not None:
                v = _measure(dims, "MAX_CURRENT", "CURRENT", "MIN_CURRENT")
                if v is None or v >= e.max_current:
                    continue
            if e.min_power is not None:
                v = _measure(dims, "MIN_POWER", "POWER", "MAX_POWER")
                if v is None or v < e.min_power:
                    continue
            if e.max_power is not None:
                v = _measure(dims, "MAX_POWER", "POWER", "MIN_POWER")
                if v is None or v >= e.max_power:
                    continue
        return e.info[dim]
    return None


# --------------------------------------------------------------------------------------------
# Pricing
# --------------------------------------------------------------------------------------------
def price_cdr(cdr, tariff, tz="UTC"):
    """Price ``cdr`` (``ocpi.Cdr``) with ``tariff`` (``ocpi.Tariff``).

    ``tz``: IANA zone name (or tzinfo) in which time restrictions (start/end time, dates,
    day of week) are evaluated -- the local time of the location.
    """
    if tariff.currency is not None and cdr.currency is not None and tariff.currency != cdr.currency:
        raise OcpiValidationError(
            "$.currency", f"CDR currency {cdr.currency} differs from tariff currency {tariff.currency}")
    prepared = prepare_tariff(tariff)
    zone = _zone(tz)  # validated even when no restriction needs it
    # Additions, subtractions and products are exact in _EXACT; the only divisions (seconds to
    # hours after step_size, session duration, VAT ratio of a bound) use _CTX explicitly.
    with localcontext(_EXACT):
        return _price(cdr, prepared, zone)


def _price(cdr, prepared, zone):
    periods = cdr.charging_periods
    # Reservation periods carry RESERVATION_TIME; the reservation expired when the CDR has no
    # other period.
    volumes = []
    expired = True
    for p in periods:
        dims = p.volumes if p.volumes is not None else {d.type: d.volume for d in p.dimensions}
        volumes.append(dims)
        if "RESERVATION_TIME" not in dims:
            expired = False
    ends = [p.start_date_time for p in periods[1:]]
    ends.append(cdr.end_date_time)

    # lines: [period_index, dimension, category, volume, billed, info]; info is the
    # (price, vat, step_size, vat_factor, element_index) of the selected element.
    lines = []
    energy_so_far = _ZERO  # session energy before the period
    total_parking = _ZERO
    total_res_time = _ZERO
    prev_flat = None
    at = None
    for i, p in enumerate(periods):
        dims = volumes[i]
        is_res = "RESERVATION_TIME" in dims
        cands = prepared.cands[(2 if expired else 1) if is_res else 0]
        if prepared.needs_local:
            local = p.start_date_time if zone is None else p.start_date_time.astimezone(zone)
            at = (local.weekday(), local.hour * 3600 + local.minute * 60 + local.second, local.date())
        dur_s = (p.start_date_time - cdr.start_date_time).total_seconds()

        # FLAT: charged when the element supplying it becomes active.
        flat = _select(cands["FLAT"], "FLAT", at, energy_so_far, dur_s, dims)
        if flat is not None and flat is not prev_flat:
            lines.append((i, "FLAT", "RESERVATION" if is_res else "FIXED", _ONE, _ONE, flat))
        prev_flat = flat
        for dim, category in (("ENERGY", "ENERGY"), ("TIME", "TIME"), ("PARKING_TIME", "PARKING")):
            volume = dims.get(dim)
            if volume:
                info = _select(cands[dim], dim, at, energy_so_far, dur_s, dims)
                if info is not None:
                    lines.append((i, dim, category, volume, volume, info))
        if dims.get("PARKING_TIME") is not None:
            total_parking += dims["PARKING_TIME"]
        if is_res:
            total_res_time += dims["RESERVATION_TIME"]
            if dims["RESERVATION_TIME"]:
                # reservation time is priced with the TIME component
                info = _select(cands["TIME"], "TIME", at, energy_so_far, dur_s, dims)
                if info is not None:
                    lines.append((i, "RESERVATION", "RESERVATION", dims["RESERVATION_TIME"],
                                  dims["RESERVATION_TIME"], info))
        if dims.get("ENERGY") is not None:
            energy_so_far += dims["ENERGY"]

    # step_size: once per session and per dimension, on the billed total, with the step_size
    # of the last priced line; PARKING_TIME rounded instead of TIME when both were billed.
    last = {}
    billed_total = {}
    for k, line in enumerate(lines):
        last[line[1]] = k
        billed_total[line[1]] = billed_total.get(line[1], _ZERO) + line[3]
    _apply_step(lines, last.get("ENERGY"), billed_total.get("ENERGY"), _THOUSAND)
    if "PARKING_TIME" in last:
        _apply_step(lines, last["PARKING_TIME"], billed_total["PARKING_TIME"], _SECONDS_PER_HOUR)
    else:
        _apply_step(lines, last.get("TIME"), billed_total.get("TIME"), _SECONDS_PER_HOUR)
    _apply_step(lines, last.get("RESERVATION"), billed_total.get("RESERVATION"), _SECONDS_PER_HOUR)

    # Amounts, per line and per category (sums in the exact context, in line order).
    priced = []
    sums = {"FIXED": [_ZERO, _ZERO], "ENERGY": [_ZERO, _ZERO], "TIME": [_ZERO, _ZERO],
            "PARKING": [_ZERO, _ZERO], "RESERVATION": [_ZERO, _ZERO]}
    raw_ex = raw_in = _ZERO
    inclusive = prepared.inclusive
    for i, dim, cat, vol, billed, (price, vat, step, factor, eidx) in lines:
        if inclusive:  # the price includes the taxes: before taxes = after / (1 + vat/100)
            inc = price * billed
            ex = _CTX.divide(inc, factor) if factor is not None else inc
        else:
            ex = price * billed
            inc = ex * factor if factor is not None else ex
        priced.append(_new(PricedLine, (i, periods[i].start_date_time, ends[i], dim, cat, vol, billed,
                                        price, vat, ex, inc, eidx, step)))
        sums[cat][0] += ex
        sums[cat][1] += inc
        raw_ex += ex
        raw_in += inc
    totals = {cat: _new(Price, (ex, inc, None)) if ex or inc else ZERO_PRICE for cat, (ex, inc) in sums.items()}

    # min_price / max_price clamp the excl and incl totals independently.
    tariff = prepared.tariff
    if tariff.min_price is None and tariff.max_price is None:
        adjustment = ZERO_PRICE
    else:
        new_ex, new_in = raw_ex, raw_in
        if tariff.min_price is not None:
            lo_ex, lo_in = _bounds(tariff.min_price, raw_ex, raw_in)
            new_ex = max(new_ex, lo_ex)
            new_in = max(new_in, lo_in)
        if tariff.max_price is not None:
            hi_ex, hi_in = _bounds(tariff.max_price, raw_ex, raw_in)
            new_ex = min(new_ex, hi_ex)
            new_in = min(new_in, hi_in)
        adjustment = _new(Price, (new_ex - raw_ex, new_in - raw_in, None))
    total = _new(Price, (raw_ex + adjustment.excl_vat, raw_in + adjustment.incl_vat, None))

    return _new(PriceResult, (
        cdr.currency, total, totals["FIXED"], energy_so_far, totals["ENERGY"],
        _hours(cdr.end_date_time - cdr.start_date_time), totals["TIME"], total_parking,
        totals["PARKING"], total_res_time, totals["RESERVATION"], adjustment, tuple(priced),
    ))


def _hours(td):
    """Duration in hours (28 significant digits)."""
    seconds = Decimal(td.days * 86400 + td.seconds)
    if td.microseconds:
        seconds += Decimal(td.microseconds) * _MICRO
    return _CTX.divide(seconds, _SECONDS_PER_HOUR)


def _bounds(bound, raw_ex, raw_in):
    """(excl, incl) limits of a min_price/max_price.  When the bound has no incl_vat, the incl
    limit keeps the session's effective VAT ratio (incl/excl), or equals excl_vat when the
    session has no cost to derive a ratio from."""
    ex = bound.excl_vat
    if bound.incl_vat is not None:
        return ex, bound.incl_vat
    if raw_ex:
        return ex, _CTX.divide(ex * raw_in, raw_ex)
    return ex, ex


def _ceil_to_step(units, step):
    """Smallest multiple of ``step`` >= ``units`` (Decimal units, int step > 0), exact."""
    q, r = divmod(units, step)
    if r > 0:
        q += 1
    return q * step


def _apply_step(lines, last_index, total, units_per_unit):
    """Round the billed total of a dimension (``total``: the sum of the volumes of its priced
    lines) up to the step_size of its last priced line; the surplus is added to that last
    line's billed volume."""
    if last_index is None:
        return
    last = lines[last_index]
    step = last[5][2]
    if step <= 0:
        return
    units = total * units_per_unit
    billed_units = _ceil_to_step(units, step)
    if billed_units > units:
        i, dim, cat, vol, billed, info = last
        lines[last_index] = (i, dim, cat, vol, vol + (_CTX.divide(billed_units, units_per_unit) - total), info)
