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

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, getcontext, localcontext, setcontext
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import OcpiValidationError
from .ocpi import _OTHER_MEMOS, Price, _maker

__all__ = ["PricedLine", "PriceResult", "price_cdr", "compile_tariff", "CompiledTariff", "ZERO_PRICE"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_THOUSAND = Decimal(1000)
_SECONDS_PER_HOUR = Decimal(3600)
_MICRO = Decimal("0.000001")
_WEEK = timedelta(days=7)
ZERO_PRICE = Price(_ZERO, _ZERO)

# Line amounts: 28 significant digits, explicit so that a caller's context cannot change them.
_CTX = Context(prec=28, rounding=ROUND_HALF_UP)
# Sums: wide enough that adding line amounts never rounds.
_EXACT = Context(prec=1000, rounding=ROUND_HALF_UP, Emax=999999, Emin=-999999)
# The context price_cdr installs while it prices: installed as is (setcontext), not copied as
# localcontext() would do on every call (a copy per CDR was ~5 % of pricing).  Only the pricing
# code runs under it, and nothing reads its flags.
_EXACT_RUN = _EXACT.copy()

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


@dataclass(frozen=True, slots=True)
class PriceResult:
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

    def to_ocpi_totals(self, places=4, as_float=False):
        """The OCPI CDR totals rounded (ROUND_HALF_UP) to ``places`` decimals.

        Values are normalised Decimals (``5.5``, ``30``), or floats when ``as_float`` is true
        (a float of a <= 4-decimal Decimal prints without artefacts).  Keys: total_cost,
        total_energy, total_energy_cost, total_time, total_time_cost, total_parking_time,
        total_parking_cost, total_fixed_cost, total_reservation_cost; costs are
        ``{"excl_vat": ..., "incl_vat": ...}``.
        """
        conv = float if as_float else (lambda x: x)

        def num(v):
            return conv(_fmt(v, places))

        def price(p):
            return {"excl_vat": num(p.excl_vat), "incl_vat": num(p.incl_vat)}

        return {
            "total_cost": price(self.total_cost),
            "total_energy": num(self.total_energy),
            "total_energy_cost": price(self.total_energy_cost),
            "total_time": num(self.total_time),
            "total_time_cost": price(self.total_time_cost),
            "total_parking_time": num(self.total_parking_time),
            "total_parking_cost": price(self.total_parking_cost),
            "total_fixed_cost": price(self.total_fixed_cost),
            "total_reservation_cost": price(self.total_reservation_cost),
        }


_new_price = _maker(Price)
_new_result = _maker(PriceResult)


# --------------------------------------------------------------------------------------------
# Compiled tariff: restrictions turned into plain comparable values, candidates per dimension.
# --------------------------------------------------------------------------------------------
class _Elem:
    __slots__ = ("always", "local", "start_s", "end_s", "start_date", "end_date",
                 "days", "min_kwh", "max_kwh", "min_current", "max_current", "min_power",
                 "max_power", "min_dur", "max_dur", "reservation", "comps", "info")

    def __init__(self, index, element):
        r = element.restrictions
        comps = {}
        for pc in element.price_components:
            if pc.type not in comps:  # first component of a dimension in an element wins
                vat_factor = _ONE + pc.vat / _HUNDRED if pc.vat is not None else None
                comps[pc.type] = (pc.price, pc.vat, pc.step_size, vat_factor)
        self.comps = comps
        # What a priced line needs from the component of each dimension, one tuple per
        # (element, dimension): (price, vat, step_size, vat_factor, element index).  The pricing
        # loop compares FLAT infos by identity ("the element providing FLAT changed").
        self.info = {dim: c + (index,) for dim, c in comps.items()}
        self.start_s = self.end_s = self.start_date = self.end_date = self.days = None
        self.min_kwh = self.max_kwh = self.min_current = self.max_current = None
        self.min_power = self.max_power = self.min_dur = self.max_dur = None
        self.reservation = None
        if r is None:
            self.always = True
            self.local = False
            return
        if r.start_time is not None:
            self.start_s = int(r.start_time[:2]) * 3600 + int(r.start_time[3:]) * 60
        if r.end_time is not None:
            self.end_s = int(r.end_time[:2]) * 3600 + int(r.end_time[3:]) * 60
        if r.start_date is not None:
            self.start_date = date.fromisoformat(r.start_date)
        if r.end_date is not None:
            self.end_date = date.fromisoformat(r.end_date)
        if r.day_of_week:
            names = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
            self.days = frozenset(names.index(d) for d in r.day_of_week)
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


def _match_expr(e, tag=""):
    """``(expression, namespace)``: all restrictions of element ``e`` as one Python expression
    over ``wd, tod, local, energy, dur_s, dims`` (the local weekday, the local time of day in
    seconds, the local datetime, the session energy before the period, the session duration
    in seconds, the period's volumes), deciding like ``_matches``; the names of its constants
    end with ``tag`` so that the expressions of several elements can share one function.  Only
    validated values reach the source text (ints, via ``int()``); the others are referenced
    through the namespace.  ``_compile_run`` builds its if/elif chains from it."""
    ns = {}
    parts = []
    if e.days is not None:
        ns["days" + tag] = e.days
        parts.append(f"wd in days{tag}")
    st, et = e.start_s, e.end_s
    if st is not None or et is not None:
        st = None if st is None else int(st)
        et = None if et is None else int(et)
        if st is not None and et is not None:
            parts.append(f"{st} <= tod < {et}" if st <= et else f"(tod >= {st} or tod < {et})")
        elif st is not None:
            parts.append(f"tod >= {st}")
        else:
            parts.append(f"tod < {et}")
    if e.start_date is not None:
        ns["sd" + tag] = e.start_date
        parts.append(f"local.date() >= sd{tag}")
    if e.end_date is not None:
        ns["ed" + tag] = e.end_date
        parts.append(f"local.date() < ed{tag}")
    if e.min_kwh is not None:
        ns["min_kwh" + tag] = e.min_kwh
        parts.append(f"energy >= min_kwh{tag}")
    if e.max_kwh is not None:
        ns["max_kwh" + tag] = e.max_kwh
        parts.append(f"energy < max_kwh{tag}")
    if e.min_dur is not None:
        parts.append(f"dur_s >= {int(e.min_dur)}")
    if e.max_dur is not None:
        parts.append(f"dur_s < {int(e.max_dur)}")

    def measure(primary, avg, secondary, test, name, limit):
        # _measure inlined: the first of the three figures present, and no figure -> False.
        ns[name + tag] = limit
        return (f"((v := dims.get({primary!r})) is not None or (v := dims.get({avg!r})) is not None"
                f" or (v := dims.get({secondary!r})) is not None) and v {test} {name}{tag}")

    if e.min_current is not None:
        parts.append(measure("MIN_CURRENT", "CURRENT", "MAX_CURRENT", ">=", "min_current", e.min_current))
    if e.max_current is not None:
        parts.append(measure("MAX_CURRENT", "CURRENT", "MIN_CURRENT", "<", "max_current", e.max_current))
    if e.min_power is not None:
        parts.append(measure("MIN_POWER", "POWER", "MAX_POWER", ">=", "min_power", e.min_power))
    if e.max_power is not None:
        parts.append(measure("MAX_POWER", "POWER", "MIN_POWER", "<", "max_power", e.max_power))
    return " and ".join(f"({part})" for part in parts), ns


class CompiledTariff:
    """Per-tariff precomputation (built once, cached by identity of the Tariff object)."""

    __slots__ = ("tariff", "cands", "needs_local", "needs_dur", "run")

    def __init__(self, tariff):
        self.tariff = tariff
        elems = [_Elem(i, e) for i, e in enumerate(tariff.elements)]
        regular = [e for e in elems if e.reservation is None]
        reserv = [e for e in elems if e.reservation == "RESERVATION"]
        expires = [e for e in elems if e.reservation == "RESERVATION_EXPIRES"]
        # kind 0: normal period, 1: reservation period, 2: period of an expired reservation
        groups = (regular, reserv, expires + reserv)
        self.cands = tuple(
            {dim: tuple(e for e in g if dim in e.comps)
             for dim in ("ENERGY", "FLAT", "TIME", "PARKING_TIME")}
            for g in groups
        )
        self.needs_local = any(e.local for e in elems)
        self.needs_dur = any(e.min_dur is not None or e.max_dur is not None for e in elems)
        # run(cdr, zone) -> PriceResult: _price specialised to this tariff (see _compile_run).
        self.run = _compile_run(self)


# --------------------------------------------------------------------------------------------
# The pricing loop generated per tariff.  ``_price`` below is the readable reference; the
# generated ``run`` does the same computation with the tariff's choices inlined: the element
# selection of each dimension as if/elif chains over the restriction tests, the component
# constants of each branch, the branches a tariff cannot take left out.  Lines are built in one
# pass: each priced line gets its final PricedLine at once, amounts go to per-category lists
# (summed at the end in line order, as _price sums them), and the last line of a dimension is
# rebuilt if step_size rounding moves its billed volume.  The tests compare run with _price.
# --------------------------------------------------------------------------------------------
_LAST_OF = {"ENERGY": "e", "TIME": "t", "PARKING_TIME": "p", "RESERVATION": "r"}
_LIST_OF = {"FIXED": "fx", "ENERGY": "en", "TIME": "ti", "PARKING": "pa", "RESERVATION": "re"}


def _compile_run(ct):
    ns = {"_ZERO": _ZERO, "_ONE": _ONE, "_WEEK": _WEEK, "_line": _new_line, "PricedLine": PricedLine,
          "_new_price": _new_price, "_new_result": _new_result, "ZERO_PRICE": ZERO_PRICE, "_hours": _hours,
          "_HOURS": _HOURS, "_restep": _restep, "_THOUSAND": _THOUSAND, "_SECONDS_PER_HOUR": _SECONDS_PER_HOUR,
          "_bounds": _bounds, "TARIFF": ct.tariff}
    consts = {}

    def const(value):
        name = consts.get(id(value))
        if name is None:
            name = consts[id(value)] = f"k{len(consts)}"
            ns[name] = value
        return name

    used = set()  # categories that can get lines

    def line(ind, dim, cat, vol, info):
        """Lines appending the PricedLine of (dim, vol) priced with ``info``."""
        price, vat, step, factor, eidx = info
        used.add(cat)
        lst = _LIST_OF[cat]
        if dim == "FLAT":
            # volume 1: the amounts are constants (computed as the loop would, exactly)
            with localcontext(_EXACT):
                ex = price * _ONE
                inc = ex * factor if factor is not None else ex
            out = [f"ex = {const(ex)}", f"inc = {const(inc)}"]
        else:
            out = [f"ex = {const(price)} * {vol}",
                   f"inc = ex * {const(factor)}" if factor is not None else "inc = ex"]
            # the last line of the dimension, for step_size: its index in ``out`` (its volume
            # is there) and its component; a RESERVATION line's place in its amount lists too
            # (reservation FLAT lines share them), the others are the last of theirs
            k = _LAST_OF[dim]
            out += [f"last_{k} = len(out)", f"info_{k} = {const(info)}"]
            if dim == "RESERVATION":
                out.append(f"k_{k} = len({lst}_ex)")
        out += [f"{lst}_ex.append(ex)", f"{lst}_in.append(inc)",
                f"add(_line(PricedLine, (i, pstart, pend, {dim!r}, {cat!r}, {vol}, {vol}, {const(price)}, "
                f"{const(vat)}, ex, inc, {eidx}, {step})))"]
        return [" " * ind + x for x in out]

    def select(ind, cands, dim, body):
        """if/elif chain choosing the element of ``dim`` among ``cands``; ``body(ind, info)``
        gives the lines for the chosen element; nothing when no element applies."""
        out = []
        first = True
        for e in cands:
            info = e.info[dim]
            if e.always:
                if first:
                    out += body(ind, info)
                else:
                    out.append(" " * ind + "else:")
                    out += body(ind + 4, info)
                return out
            expr, ens = _match_expr(e, f"_{len(ns)}")
            ns.update(ens)
            out.append(" " * ind + ("if " if first else "elif ") + expr + ":")
            out += body(ind + 4, info)
            first = False
        return out

    def block(ind, kind, is_res):
        c = ct.cands[kind]
        sp = " " * ind
        out = []
        # FLAT: charged when the element providing it becomes active
        flat = c["FLAT"]
        cat = "RESERVATION" if is_res else "FIXED"

        def flat_body(i2, info):
            return ([" " * i2 + f"fi = {const(info)}", " " * i2 + "if fi is not prev_flat:"]
                    + line(i2 + 4, "FLAT", cat, "_ONE", info))
        if flat:
            if not flat[0].always:
                out.append(sp + "fi = None")
            out += select(ind, flat, "FLAT", flat_body)
            out.append(sp + "prev_flat = fi")
        else:
            out.append(sp + "prev_flat = None")
        out.append(sp + "ev = dims.get('ENERGY')")
        if c["ENERGY"]:
            out.append(sp + "if ev:")
            out += select(ind + 4, c["ENERGY"], "ENERGY",
                          lambda i2, info: [" " * i2 + "sum_e += ev"] + line(i2, "ENERGY", "ENERGY", "ev", info))
        if c["TIME"]:
            out += [sp + "vt = dims.get('TIME')", sp + "if vt:"]
            out += select(ind + 4, c["TIME"], "TIME",
                          lambda i2, info: [" " * i2 + "sum_t += vt"] + line(i2, "TIME", "TIME", "vt", info))
        out += [sp + "vp = dims.get('PARKING_TIME')", sp + "if vp is not None:", sp + "    total_parking += vp"]
        if c["PARKING_TIME"]:
            out.append(sp + "    if vp:")
            out += select(ind + 8, c["PARKING_TIME"], "PARKING_TIME",
                          lambda i2, info: [" " * i2 + "sum_p += vp"] + line(i2, "PARKING_TIME", "PARKING", "vp", info))
        if is_res:
            out += [sp + "vr = dims['RESERVATION_TIME']", sp + "total_res_time += vr"]
            if c["TIME"]:
                out.append(sp + "if vr:")
                out += select(ind + 4, c["TIME"], "TIME",
                              lambda i2, info: [" " * i2 + "sum_r += vr"] + line(i2, "RESERVATION", "RESERVATION", "vr", info))
        return out

    body = []
    body += block(12, 0, False)
    res1 = block(16, 1, True)
    res2 = block(16, 2, True)
    L = ["def run(cdr, zone):",
         "    periods = cdr.charging_periods",
         "    n = len(periods)",
         "    session_start = cdr.start_date_time",
         "    session_end = cdr.end_date_time",
         "    local = wd = tod = dur_s = None"]
    if ct.needs_local:
        L += ["    shift = None",
              "    if zone is not None and session_end - session_start < _WEEK:",
              "        off = session_start.astimezone(zone).utcoffset()",
              "        if off == session_end.astimezone(zone).utcoffset():",
              "            shift = off"]
    L += ["    energy = _ZERO", "    total_parking = _ZERO", "    total_res_time = _ZERO", "    prev_flat = None",
          "    out = []", "    add = out.append",
          "    sum_e = sum_t = sum_p = sum_r = _ZERO",
          "    last_e = last_t = last_p = last_r = -1",
          "    expired = None"]
    for cat in sorted(used, key=list(_LIST_OF).index):
        lst = _LIST_OF[cat]
        L.append(f"    {lst}_ex = []; {lst}_in = []")
    L += ["    for i in range(n):",
         "        p = periods[i]",
         "        dims = p.volumes",
         "        if dims is None:  # a ChargingPeriod built by hand",
         "            dims = {d.type: d.volume for d in p.dimensions}",
         "        pstart = p.start_date_time",
         "        pend = periods[i + 1].start_date_time if i + 1 < n else session_end"]
    if ct.needs_local:
        L += ["        if zone is None:",
              "            local = pstart",
              "        elif shift is not None:",
              "            local = pstart + shift",
              "        else:",
              "            local = pstart.astimezone(zone)",
              "        wd = local.weekday()",
              "        tod = local.hour * 3600 + local.minute * 60 + local.second"]
    if ct.needs_dur:
        L.append("        dur_s = (pstart - session_start).total_seconds()")
    L += ["        if 'RESERVATION_TIME' in dims:",
          "            if expired is None:  # expired: the CDR has only reservation periods",
          "                expired = all('RESERVATION_TIME' in (q.volumes if q.volumes is not None else",
          "                                                     {d.type for d in q.dimensions}) for q in periods)",
          "            if expired:"]
    L += res2
    L.append("            else:")
    L += res1
    L.append("        else:")
    L += body
    L += ["        if ev is not None:",
          "            energy += ev  # session energy before the next period"]
    # step_size, once per session and per dimension, on the billed total
    if "ENERGY" in used:
        L += ["    if last_e >= 0:",
              "        step = info_e[2]",
              "        if step > 0 and (sum_e * _THOUSAND) % step:",
              "            _restep(out, last_e, en_ex, en_in, -1, sum_e, info_e, _THOUSAND, 'ENERGY', 'ENERGY')"]
    park = "PARKING" in used
    if park:
        L += ["    if last_p >= 0:",
              "        _restep(out, last_p, pa_ex, pa_in, -1, sum_p, info_p, _SECONDS_PER_HOUR, 'PARKING_TIME', 'PARKING')"]
    if "TIME" in used:
        L += [f"    {'elif' if park else 'if'} last_t >= 0:",
              "        _restep(out, last_t, ti_ex, ti_in, -1, sum_t, info_t, _SECONDS_PER_HOUR, 'TIME', 'TIME')"]
    if "RESERVATION" in used and any(ct.cands[k]["TIME"] for k in (1, 2)):
        L += ["    if last_r >= 0:",
              "        _restep(out, last_r, re_ex, re_in, k_r, sum_r, info_r, _SECONDS_PER_HOUR, 'RESERVATION', 'RESERVATION')"]
    for cat, lst in _LIST_OF.items():
        if cat in used:
            L += [f"    {lst}_x = sum({lst}_ex, _ZERO)", f"    {lst}_i = sum({lst}_in, _ZERO)"]
        else:
            L += [f"    {lst}_x = {lst}_i = _ZERO"]
    L += ["    raw_ex = fx_x + en_x + ti_x + pa_x + re_x",
          "    raw_in = fx_i + en_i + ti_i + pa_i + re_i"]
    t = ct.tariff
    if t.min_price is None and t.max_price is None:
        L += ["    adj = ZERO_PRICE", "    total = _new_price(raw_ex, raw_in)"]
    else:
        L.append("    new_ex, new_in = raw_ex, raw_in")
        if t.min_price is not None:
            L += ["    lo_ex, lo_in = _bounds(TARIFF.min_price, raw_ex, raw_in)",
                  "    if new_ex < lo_ex:", "        new_ex = lo_ex",
                  "    if new_in < lo_in:", "        new_in = lo_in"]
        if t.max_price is not None:
            L += ["    hi_ex, hi_in = _bounds(TARIFF.max_price, raw_ex, raw_in)",
                  "    if new_ex > hi_ex:", "        new_ex = hi_ex",
                  "    if new_in > hi_in:", "        new_in = hi_in"]
        L += ["    adj = _new_price(new_ex - raw_ex, new_in - raw_in)",
              "    total = _new_price(raw_ex + adj.excl_vat, raw_in + adj.incl_vat)"]
    L += ["    duration = session_end - session_start",
          "    hours = None if duration.microseconds else _HOURS.get(duration.days * 86400 + duration.seconds)",
          "    return _new_result(",
          "        cdr.currency, total,",
          "        _new_price(fx_x, fx_i) if fx_x or fx_i else ZERO_PRICE,",
          "        energy,",
          "        _new_price(en_x, en_i) if en_x or en_i else ZERO_PRICE,",
          "        hours if hours is not None else _hours(duration),",
          "        _new_price(ti_x, ti_i) if ti_x or ti_i else ZERO_PRICE,",
          "        total_parking,",
          "        _new_price(pa_x, pa_i) if pa_x or pa_i else ZERO_PRICE,",
          "        total_res_time,",
          "        _new_price(re_x, re_i) if re_x or re_i else ZERO_PRICE,",
          "        adj, tuple(out))"]
    src = "\n".join(L) + "\n"
    exec(src, ns)  # noqa: S102 - generated from the validated tariff (ints, constants by name)
    return ns["run"]


def _restep(out, index, ex_list, in_list, k, total, info, units_per_unit, dim, cat):
    """step_size on the billed total ``total`` of a dimension (see ``_apply_step``): the last
    line (``out[index]``, priced with ``info``, amounts at ``ex_list[k]`` / ``in_list[k]``) gets
    the rounding surplus and is rebuilt."""
    price, vat, step, factor, eidx = info
    if step <= 0:
        return
    vol = out[index][5]
    units = total * units_per_unit
    billed_units = _ceil_to_step(units, step)
    if billed_units > units:
        billed = vol + (_CTX.divide(billed_units, units_per_unit) - total)
        ex = price * billed
        inc = ex * factor if factor is not None else ex
        ex_list[k] = ex
        in_list[k] = inc
        old = out[index]
        out[index] = _new_line(PricedLine, (old[0], old[1], old[2], dim, cat, vol, billed, price, vat, ex, inc, eidx,
                                            step))


_COMPILED = {}


def compile_tariff(tariff):
    """Return the (cached) :class:`CompiledTariff` of ``tariff``."""
    key = id(tariff)
    hit = _COMPILED.get(key)
    if hit is not None and hit.tariff is tariff:
        return hit
    if len(_COMPILED) >= 512:
        _COMPILED.clear()
    ct = CompiledTariff(tariff)
    _COMPILED[key] = ct
    return ct


_ZONES = {}


def _zone(tz):
    if not tz:  # None / "" / False: UTC
        return None
    if isinstance(tz, str):
        z = _ZONES.get(tz, _MISSING_ZONE)
        if z is not _MISSING_ZONE:
            return z
        if tz in _UTC_NAMES:
            z = None
        else:
            try:
                z = ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {tz!r}") from None
        _ZONES[tz] = z
        return z
    if tz is timezone.utc:
        return None
    return tz  # any tzinfo


_MISSING_ZONE = object()


def _measure(dims, primary, avg, secondary):
    v = dims.get(primary)
    if v is None:
        v = dims.get(avg)
        if v is None:
            v = dims.get(secondary)
    return v


def _matches(e, local, energy, dur_s, dims):
    """True when all restrictions of element ``e`` hold at the start of a period."""
    if e.local:
        if e.days is not None and local.weekday() not in e.days:
            return False
        st, et = e.start_s, e.end_s
        if st is not None or et is not None:
            t = local.hour * 3600 + local.minute * 60 + local.second
            if st is not None and et is not None:
                if st <= et:
                    if not (st <= t < et):
                        return False
                elif not (t >= st or t < et):  # wraps past midnight
                    return False
            elif st is not None:
                if t < st:
                    return False
            elif t >= et:
                return False
        if e.start_date is not None or e.end_date is not None:
            day = local.date()
            if e.start_date is not None and day < e.start_date:
                return False
            if e.end_date is not None and day >= e.end_date:
                return False
    if e.min_kwh is not None and energy < e.min_kwh:
        return False
    if e.max_kwh is not None and energy >= e.max_kwh:
        return False
    if e.min_dur is not None and dur_s < e.min_dur:
        return False
    if e.max_dur is not None and dur_s >= e.max_dur:
        return False
    if e.min_current is not None:
        v = _measure(dims, "MIN_CURRENT", "CURRENT", "MAX_CURRENT")
        if v is None or v < e.min_current:
            return False
    if e.max_current is not None:
        v = _measure(dims, "MAX_CURRENT", "CURRENT", "MIN_CURRENT")
        if v is None or v >= e.max_current:
            return False
    if e.min_power is not None:
        v = _measure(dims, "MIN_POWER", "POWER", "MAX_POWER")
        if v is None or v < e.min_power:
            return False
    if e.max_power is not None:
        v = _measure(dims, "MAX_POWER", "POWER", "MIN_POWER")
        if v is None or v >= e.max_power:
            return False
    return True


def _ceil_to_step(units, step):
    """Smallest multiple of ``step`` >= ``units`` (Decimal units, int step > 0), exact."""
    q, r = divmod(units, step)
    if r > 0:
        q += 1
    return q * step


_HOURS = {}


def _hours(td):
    """Duration in hours (28 significant digits), memoised for whole seconds."""
    if td.microseconds:
        return _CTX.divide(Decimal(td.days * 86400 + td.seconds) + Decimal(td.microseconds) * _MICRO,
                           _SECONDS_PER_HOUR)
    seconds = td.days * 86400 + td.seconds
    h = _HOURS.get(seconds)
    if h is None:
        h = _CTX.divide(Decimal(seconds), _SECONDS_PER_HOUR)
        if len(_HOURS) >= 65536:
            _HOURS.clear()
        _HOURS[seconds] = h
    return h


_OTHER_MEMOS.extend((_HOURS, _ZONES))  # emptied by ocpi._clear_memos


def price_cdr(cdr, tariff, tz="UTC"):
    """Price ``cdr`` (``ocpi.Cdr``) with ``tariff`` (``ocpi.Tariff``).

    ``tz``: IANA zone name (or tzinfo) in which time restrictions (start/end time, dates,
    day of week) are evaluated -- the local time of the location.
    """
    if tariff.currency is not None and cdr.currency is not None and tariff.currency != cdr.currency:
        raise OcpiValidationError(
            "$.currency", f"CDR currency {cdr.currency} differs from tariff currency {tariff.currency}")
    ct = _COMPILED.get(id(tariff))  # compile_tariff, its hit path inline
    if ct is None or ct.tariff is not tariff:
        ct = compile_tariff(tariff)
    zone = _ZONES.get(tz, _MISSING_ZONE) if type(tz) is str else _MISSING_ZONE  # _zone's hit path
    if zone is _MISSING_ZONE:
        zone = _zone(tz)  # validated even when no restriction needs it
    # Additions, subtractions and products are exact in _EXACT; the only divisions (seconds to
    # hours after step_size, session duration, VAT ratio of a bound) use _CTX explicitly.
    saved = getcontext()
    setcontext(_EXACT_RUN)
    try:
        return ct.run(cdr, zone)
    finally:
        setcontext(saved)


def _select(cands, local, energy, dur_s, dims):
    """Readable reference of the selection: the first candidate element whose restrictions
    all hold (``_matches``), or None: the choice of the reference ``_price``, which the
    generated ``run`` (its if/elif chains from ``_match_expr``) is tested against."""
    for e in cands:
        if e.always or _matches(e, local, energy, dur_s, dims):
            return e
    return None


_new_line = tuple.__new__


def _price(cdr, ct, zone):
    """Readable reference of the pricing loop: ``CompiledTariff.run`` (generated per tariff,
    what ``price_cdr`` runs) must give exactly this, and the tests compare the two.  Plain
    Python on purpose -- each element chosen by ``_select`` (the restrictions tested by
    ``_matches``), the local time by a full conversion -- so that it shares no generated code
    with ``run``.  Runs in the ``_EXACT`` context, like ``run``."""
    periods = cdr.charging_periods
    volumes = [p.volumes if p.volumes is not None else {d.type: d.volume for d in p.dimensions}
               for p in periods]
    # Reservation periods carry RESERVATION_TIME; the reservation expired when the CDR has no
    # other period.
    expired = all("RESERVATION_TIME" in dims for dims in volumes)
    ends = [p.start_date_time for p in periods[1:]] + [cdr.end_date_time]

    # lines: [period_index, dimension, category, volume, billed, info]; info is the
    # (price, vat, step_size, vat_factor, element_index) of the selected element (_Elem.info).
    lines = []
    energy_so_far = _ZERO  # session energy before the period
    total_parking = _ZERO
    total_res_time = _ZERO
    prev_flat = None
    for i, p in enumerate(periods):
        dims = volumes[i]
        is_res = "RESERVATION_TIME" in dims
        if not is_res:
            cands = ct.cands[0]
        elif expired:
            cands = ct.cands[2]
        else:
            cands = ct.cands[1]
        local = p.start_date_time if zone is None else p.start_date_time.astimezone(zone)
        dur_s = (p.start_date_time - cdr.start_date_time).total_seconds()

        def info_of(dim):
            e = _select(cands[dim], local, energy_so_far, dur_s, dims)
            return None if e is None else e.info[dim]

        # FLAT: charged when the element supplying it becomes active.
        flat = info_of("FLAT")
        if flat is not None and flat is not prev_flat:
            lines.append((i, "FLAT", "RESERVATION" if is_res else "FIXED", _ONE, _ONE, flat))
        prev_flat = flat
        if dims.get("ENERGY"):
            info = info_of("ENERGY")
            if info is not None:
                lines.append((i, "ENERGY", "ENERGY", dims["ENERGY"], dims["ENERGY"], info))
        if dims.get("TIME"):
            info = info_of("TIME")
            if info is not None:
                lines.append((i, "TIME", "TIME", dims["TIME"], dims["TIME"], info))
        if dims.get("PARKING_TIME") is not None:
            total_parking += dims["PARKING_TIME"]
        if dims.get("PARKING_TIME"):
            info = info_of("PARKING_TIME")
            if info is not None:
                lines.append((i, "PARKING_TIME", "PARKING", dims["PARKING_TIME"], dims["PARKING_TIME"], info))
        if is_res:
            total_res_time += dims["RESERVATION_TIME"]
            if dims["RESERVATION_TIME"]:
                info = info_of("TIME")  # reservation time is priced with the TIME component
                if info is not None:
                    lines.append((i, "RESERVATION", "RESERVATION", dims["RESERVATION_TIME"],
                                  dims["RESERVATION_TIME"], info))
        if dims.get("ENERGY") is not None:
            energy_so_far += dims["ENERGY"]

    # step_size: once per session and per dimension, on the billed total, with the step_size
    # of the last priced line; PARKING_TIME rounded instead of TIME when both were billed.
    def last_line(dim):
        found = [k for k, line in enumerate(lines) if line[1] == dim]
        return found[-1] if found else None

    def volume_sum(dim):
        return sum((line[3] for line in lines if line[1] == dim), _ZERO)

    _apply_step(lines, last_line("ENERGY"), volume_sum("ENERGY"), _THOUSAND)
    if last_line("PARKING_TIME") is not None:
        _apply_step(lines, last_line("PARKING_TIME"), volume_sum("PARKING_TIME"), _SECONDS_PER_HOUR)
    else:
        _apply_step(lines, last_line("TIME"), volume_sum("TIME"), _SECONDS_PER_HOUR)
    _apply_step(lines, last_line("RESERVATION"), volume_sum("RESERVATION"), _SECONDS_PER_HOUR)

    # Amounts, per line and per category (sums in the exact context).
    priced = []
    for i, dim, cat, vol, billed, (price, vat, step, factor, eidx) in lines:
        ex = price * billed
        inc = ex * factor if factor is not None else ex
        priced.append(PricedLine(i, periods[i].start_date_time, ends[i], dim, cat, vol, billed, price, vat,
                                 ex, inc, eidx, step))

    def category(cat):
        ex = sum((line.excl_vat for line in priced if line.category == cat), _ZERO)
        inc = sum((line.incl_vat for line in priced if line.category == cat), _ZERO)
        return Price(ex, inc) if ex or inc else ZERO_PRICE

    totals = {cat: category(cat) for cat in ("FIXED", "ENERGY", "TIME", "PARKING", "RESERVATION")}
    raw_ex = sum((line.excl_vat for line in priced), _ZERO)
    raw_in = sum((line.incl_vat for line in priced), _ZERO)

    # min_price / max_price clamp the excl and incl totals independently.
    new_ex, new_in = raw_ex, raw_in
    tariff = ct.tariff
    if tariff.min_price is not None:
        lo_ex, lo_in = _bounds(tariff.min_price, raw_ex, raw_in)
        new_ex = max(new_ex, lo_ex)
        new_in = max(new_in, lo_in)
    if tariff.max_price is not None:
        hi_ex, hi_in = _bounds(tariff.max_price, raw_ex, raw_in)
        new_ex = min(new_ex, hi_ex)
        new_in = min(new_in, hi_in)
    if tariff.min_price is None and tariff.max_price is None:
        adjustment = ZERO_PRICE
    else:
        adjustment = Price(new_ex - raw_ex, new_in - raw_in)
    total = Price(raw_ex + adjustment.excl_vat, raw_in + adjustment.incl_vat)

    return PriceResult(
        cdr.currency, total, totals["FIXED"], energy_so_far, totals["ENERGY"],
        _hours(cdr.end_date_time - cdr.start_date_time), totals["TIME"], total_parking,
        totals["PARKING"], total_res_time, totals["RESERVATION"], adjustment, tuple(priced),
    )


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
