"""Pricing rules of OCPI 2.2.1, one hand-computed case (or more) per rule.

Most cases are the worked examples of mod_tariffs.asciidoc / mod_cdrs.asciidoc turned into
CDRs; the expected figures are the spec's (and recomputed by hand in the comments).
"""

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext

import pytest

from clearing_core import ocpi, pricing
from clearing_core.currencies import round_money
from clearing_core.errors import OcpiValidationError

D = Decimal
UTC = timezone.utc
MIN = D(1) / D(60)  # one minute in hours (28 significant digits)


def make_cdr(start, end, periods, currency="EUR"):
    """periods: [(start, {DIMENSION: volume})]; volumes as Decimal/int/str."""
    return ocpi.parse_cdr({
        "start_date_time": start, "end_date_time": end, "currency": currency,
        "charging_periods": [
            {"start_date_time": s, "dimensions": [{"type": t, "volume": D(str(v))} for t, v in dims.items()]}
            for s, dims in periods
        ],
    }, strict=False)


def comp(ctype, price, step=1, vat=None):
    c = {"type": ctype, "price": D(str(price)), "step_size": step}
    if vat is not None:
        c["vat"] = D(str(vat))
    return c


def make_tariff(elements, **extra):
    """elements: [([components], restrictions or None)]"""
    data = {"currency": "EUR", "elements": []}
    for comps, restr in elements:
        e = {"price_components": comps}
        if restr is not None:
            e["restrictions"] = restr
        data["elements"].append(e)
    data.update(extra)
    return ocpi.parse_tariff(data, strict=False)


def eur(value):
    return round_money(value, "EUR")


def totals(result):
    return eur(result.total_cost.excl_vat), eur(result.total_cost.incl_vat)


# --------------------------------------------------------------------------------------------
# VAT, flat fee, simple dimensions
# --------------------------------------------------------------------------------------------
def test_flat_and_energy_with_vat_per_component():
    # tariff example 9: 0.50 start (20%) + 0.25/kWh (10%), 20 kWh -> 5.50 excl / 6.10 incl
    t = make_tariff([([comp("FLAT", "0.50", vat=20), comp("ENERGY", "0.25", vat=10)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:00:00Z",
                                   [("2019-01-01T10:00:00Z", {"ENERGY": 20})]), t)
    assert r.total_cost == ocpi.Price(D("5.50"), D("6.10"))
    assert r.total_fixed_cost == ocpi.Price(D("0.50"), D("0.60"))
    assert r.total_energy_cost == ocpi.Price(D("5.00"), D("5.50"))
    assert [(ln.dimension, ln.category, ln.vat) for ln in r.lines] == [("FLAT", "FIXED", D(20)), ("ENERGY", "ENERGY", D(10))]


def test_no_vat_means_incl_equals_excl_and_zero_vat_too():
    for vat in (None, 0):
        t = make_tariff([([comp("TIME", "2.00", vat=vat)], None)])
        r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:30:00Z",
                                       [("2019-01-01T10:00:00Z", {"TIME": "1.5"})]), t)
        assert r.total_cost == ocpi.Price(D("3.00"), D("3.00"))
        assert r.lines[0].vat == (None if vat is None else D(0))


def test_fractional_vat_alt_text_example():
    # tariff example 2: 1.90/h, 5.2% VAT, step 300 s; 2.5 h -> 4.75 excl, 5.00 incl (4.997)
    t = make_tariff([([comp("TIME", "1.90", step=300, vat="5.2")], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:30:00Z",
                                   [("2019-01-01T10:00:00Z", {"TIME": "2.5"})]), t)
    assert r.total_cost.excl_vat == D("4.75")
    assert r.total_cost.incl_vat == D("4.997")
    assert totals(r) == (D("4.75"), D("5.00"))


def test_period_end_is_next_start_or_session_end():
    t = make_tariff([([comp("ENERGY", "0.30")], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:00:00Z",
                                   [("2019-01-01T10:00:00Z", {"ENERGY": 1}), ("2019-01-01T11:00:00Z", {"ENERGY": 2})]), t)
    assert [(ln.period_start.hour, ln.period_end.hour) for ln in r.lines] == [(10, 11), (11, 12)]
    assert r.total_time == D(2) and r.total_energy == D(3)


def test_volumes_stated_by_cdr_are_the_basis():
    # No TIME dimension in the CDR -> a TIME component bills nothing, even over 2 hours.
    t = make_tariff([([comp("TIME", "2.00"), comp("ENERGY", "0.25")], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:00:00Z",
                                   [("2019-01-01T10:00:00Z", {"ENERGY": 4})]), t)
    assert r.total_cost.excl_vat == D("1.00") and r.total_time_cost.excl_vat == 0


# --------------------------------------------------------------------------------------------
# Element selection per dimension
# --------------------------------------------------------------------------------------------
def test_first_matching_element_per_dimension():
    # element 0 has ENERGY only under max_power 16; TIME comes from element 1 regardless.
    t = make_tariff([
        ([comp("ENERGY", "0.20")], {"max_power": 16}),
        ([comp("TIME", "1.00"), comp("ENERGY", "0.50")], None),
    ])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:00:00Z", [
        ("2019-01-01T10:00:00Z", {"ENERGY": 10, "TIME": 1, "MAX_POWER": 11}),
        ("2019-01-01T11:00:00Z", {"ENERGY": 10, "TIME": 1, "MAX_POWER": 22}),
    ]), t)
    assert [(ln.dimension, ln.element_index, ln.unit_price) for ln in r.lines] == [
        ("ENERGY", 0, D("0.20")), ("TIME", 1, D("1.00")), ("ENERGY", 1, D("0.50")), ("TIME", 1, D("1.00"))]
    assert r.total_cost.excl_vat == D("2.00") + D("5.00") + D("2.00")


def test_no_matching_element_means_no_cost():
    t = make_tariff([([comp("PARKING_TIME", "5.00")], {"start_time": "09:00", "end_time": "18:00"})])
    r = pricing.price_cdr(make_cdr("2019-01-01T19:00:00Z", "2019-01-01T20:00:00Z",
                                   [("2019-01-01T19:00:00Z", {"PARKING_TIME": 1})]), t)
    assert r.total_cost == ocpi.Price(D(0), D(0)) and r.lines == ()
    assert r.total_parking_time == D(1)


def test_max_power_example():
    # mod_tariffs "Tariff with max_power": 1 kWh at 6 kW, 40 kWh at 48 kW, 0.5 kWh at 4 kW -> 20.30
    t = make_tariff([([comp("ENERGY", "0.20", vat=20)], {"max_power": D("16.00")}),
                     ([comp("ENERGY", "0.35", vat=20)], {"max_power": D("32.00")}),
                     ([comp("ENERGY", "0.50", vat=20)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:00:00Z", [
        ("2019-01-01T10:00:00Z", {"ENERGY": 1, "MAX_POWER": 6}),
        ("2019-01-01T10:10:00Z", {"ENERGY": 40, "MAX_POWER": 48}),
        ("2019-01-01T11:00:00Z", {"ENERGY": "0.5", "MAX_POWER": 4}),
    ]), t)
    assert r.total_cost.excl_vat == D("20.30")
    assert [ln.element_index for ln in r.lines] == [0, 2, 0]


def test_power_boundaries_min_inclusive_max_exclusive():
    t = make_tariff([([comp("ENERGY", "1")], {"min_power": 11, "max_power": 22}), ([comp("ENERGY", "9")], None)])

    def price(min_p, max_p):
        dims = {"ENERGY": 1}
        if min_p is not None:
            dims["MIN_POWER"] = min_p
        if max_p is not None:
            dims["MAX_POWER"] = max_p
        r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z",
                                       [("2019-01-01T10:00:00Z", dims)]), t)
        return r.total_cost.excl_vat

    assert price(11, 21) == 1      # 11 >= 11 and 21 < 22
    assert price("10.9", 21) == 9  # below min_power
    assert price(11, 22) == 9      # max_power is exclusive
    assert price(None, None) == 9  # no power figures: the restriction cannot hold
    assert price(None, 15) == 1    # MIN_POWER absent: MAX_POWER is the only figure for both


def test_current_restrictions_complex_example_monday():
    # mod_tariffs "Complex Tariff example": Monday 09:30, 165 min charging at max 16 A, 42 min
    # parking -> 9.00 excl / 10.30 incl (FLAT 2.50 + TIME 2.75 + PARKING 45 min 3.75).
    t = ocpi.parse_tariff(COMPLEX_TARIFF)
    cdr = make_cdr("2015-06-29T09:30:00Z", "2015-06-29T12:57:00Z", [
        ("2015-06-29T09:30:00Z", {"TIME": "2.75", "MAX_CURRENT": 16, "ENERGY": 10}),
        ("2015-06-29T12:15:00Z", {"PARKING_TIME": "0.7"}),
    ])
    r = pricing.price_cdr(cdr, t)
    assert r.total_cost == ocpi.Price(D("9.00"), D("10.300"))
    assert r.total_time_cost.excl_vat == D("2.75")  # "not affected by step_size"
    park = [ln for ln in r.lines if ln.dimension == "PARKING_TIME"][0]
    assert park.billed_volume == D("0.75") and park.element_index == 4


def test_current_restrictions_complex_example_saturday():
    # Saturday 13:30, 114 min at >= 43 A, 71 min parking.  TIME: element 3 (1.25/h weekend,
    # min_current 32).  114 min x 1.25/h = 2.375 -- the spec's table prints 2.28 (which is
    # 114 min x 1.20/h, an arithmetic slip of the example); parking 75 min x 6.00 = 7.50.
    t = ocpi.parse_tariff(COMPLEX_TARIFF)
    cdr = make_cdr("2015-07-04T13:30:00Z", "2015-07-04T16:35:00Z", [
        ("2015-07-04T13:30:00Z", {"TIME": "1.9", "MIN_CURRENT": 43, "MAX_CURRENT": 48}),
        ("2015-07-04T15:24:00Z", {"PARKING_TIME": 71 * MIN}),
    ])
    r = pricing.price_cdr(cdr, t)
    assert r.total_time_cost == ocpi.Price(D("2.375"), D("2.85"))
    assert eur(r.total_parking_cost.excl_vat) == D("7.50")
    assert totals(r) == (D("12.38"), D("13.98"))
    assert [ln.element_index for ln in r.lines if ln.dimension != "FLAT"] == [3, 5]


COMPLEX_TARIFF = {
    "country_code": "DE", "party_id": "ALL", "id": "14", "currency": "EUR", "type": "REGULAR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": D("2.50"), "vat": D("15.0"), "step_size": 1}]},
        {"price_components": [{"type": "TIME", "price": D("1.00"), "vat": D("20.0"), "step_size": 900}],
         "restrictions": {"max_current": D("32.00")}},
        {"price_components": [{"type": "TIME", "price": D("2.00"), "vat": D("20.0"), "step_size": 600}],
         "restrictions": {"min_current": D("32.00"), "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
        {"price_components": [{"type": "TIME", "price": D("1.25"), "vat": D("20.0"), "step_size": 600}],
         "restrictions": {"min_current": D("32.00"), "day_of_week": ["SATURDAY", "SUNDAY"]}},
        {"price_components": [{"type": "PARKING_TIME", "price": D("5.00"), "vat": D("10.0"), "step_size": 300}],
         "restrictions": {"start_time": "09:00", "end_time": "18:00", "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
        {"price_components": [{"type": "PARKING_TIME", "price": D("6.00"), "vat": D("10.0"), "step_size": 300}],
         "restrictions": {"start_time": "10:00", "end_time": "17:00", "day_of_week": ["SATURDAY"]}},
    ],
    "last_updated": "2015-06-29T20:39:09Z",
}


def test_max_duration_example():
    # "Tariff with max_duration": 40 min session, 5 kWh in the first 30 min (free), 1.2 kWh
    # in the remaining 10 min at 0.25 -> 0.30.
    t = make_tariff([([comp("ENERGY", "0.00", vat=20)], {"max_duration": 1800}),
                     ([comp("ENERGY", "0.25", vat=20)], {"max_duration": 3600}),
                     ([comp("ENERGY", "0.40", vat=20)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T10:40:00Z", [
        ("2019-01-01T10:00:00Z", {"ENERGY": 5}), ("2019-01-01T10:30:00Z", {"ENERGY": "1.2"})]), t)
    assert r.total_cost.excl_vat == D("0.30")
    # after 60 minutes the last element applies
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:10:00Z", [
        ("2019-01-01T10:00:00Z", {"ENERGY": 5}), ("2019-01-01T10:30:00Z", {"ENERGY": 1}),
        ("2019-01-01T11:00:00Z", {"ENERGY": 1})]), t)
    assert r.total_cost.excl_vat == D("0.25") + D("0.40")


def test_duration_boundaries_min_inclusive_max_exclusive():
    t = make_tariff([([comp("PARKING_TIME", "0")], {"min_duration": 0, "max_duration": 1800}),
                     ([comp("PARKING_TIME", "3")], {"min_duration": 1800})])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z", [
        ("2019-01-01T10:00:00Z", {"PARKING_TIME": "0.5"}),
        ("2019-01-01T10:29:59Z", {"PARKING_TIME": "0.0025"}),  # 9 s: whole seconds, no step rounding
        ("2019-01-01T10:30:00Z", {"PARKING_TIME": "0.5"})]), t)
    assert [ln.element_index for ln in r.lines] == [0, 0, 1]
    assert r.total_parking_cost.excl_vat == D("1.5")


def test_kwh_restrictions_use_energy_before_the_period():
    # first kWh free (max_kwh exclusive), then 0.20 from 1 kWh (min_kwh inclusive)
    t = make_tariff([([comp("ENERGY", "0.0")], {"max_kwh": D("1.0")}),
                     ([comp("ENERGY", "0.2")], {"min_kwh": D("1.0")})])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z", [
        ("2019-01-01T10:00:00Z", {"ENERGY": "0.6"}),   # before: 0   -> free
        ("2019-01-01T10:10:00Z", {"ENERGY": "0.4"}),   # before: 0.6 -> free
        ("2019-01-01T10:20:00Z", {"ENERGY": "2"}),     # before: 1.0 -> paid (max exclusive, min inclusive)
        ("2019-01-01T10:30:00Z", {"ENERGY": "3"}),     # before: 3.0 -> paid
    ]), t)
    assert [ln.element_index for ln in r.lines] == [0, 0, 1, 1]
    assert r.total_energy_cost.excl_vat == D("1.0")


# --------------------------------------------------------------------------------------------
# Time of day, midnight wrap, dates, weekdays, time zones
# --------------------------------------------------------------------------------------------
NIGHT = make_tariff([([comp("ENERGY", "0.10")], {"start_time": "22:00", "end_time": "06:00"}),
                     ([comp("ENERGY", "0.30")], None)])


@pytest.mark.parametrize("at,price", [
    ("2019-01-01T21:59:59Z", "0.30"), ("2019-01-01T22:00:00Z", "0.10"), ("2019-01-01T23:30:00Z", "0.10"),
    ("2019-01-02T00:00:00Z", "0.10"), ("2019-01-02T05:59:00Z", "0.10"), ("2019-01-02T06:00:00Z", "0.30"),
    ("2019-01-02T12:00:00Z", "0.30"),
])
def test_time_window_wrapping_midnight(at, price):
    r = pricing.price_cdr(make_cdr(at, at, [(at, {"ENERGY": 1})]), NIGHT)
    assert r.total_cost.excl_vat == D(price)


@pytest.mark.parametrize("at,price", [
    ("2019-01-01T19:59:00Z", "0"), ("2019-01-01T20:00:00Z", "2"), ("2019-01-01T23:59:59Z", "2"),
    ("2019-01-02T00:00:00Z", "0"),
])
def test_end_time_midnight_means_end_of_day(at, price):
    t = make_tariff([([comp("ENERGY", "2")], {"start_time": "20:00", "end_time": "00:00"})])
    r = pricing.price_cdr(make_cdr(at, at, [(at, {"ENERGY": 1})]), t)
    assert r.total_cost.excl_vat == D(price)


def test_only_start_time_or_only_end_time():
    after = make_tariff([([comp("ENERGY", "1")], {"start_time": "17:00"})])
    before = make_tariff([([comp("ENERGY", "1")], {"end_time": "17:00"})])
    for at, a, b in (("2019-01-01T16:59:00Z", 0, 1), ("2019-01-01T17:00:00Z", 1, 0)):
        cdr = make_cdr(at, at, [(at, {"ENERGY": 1})])
        assert pricing.price_cdr(cdr, after).total_cost.excl_vat == a
        assert pricing.price_cdr(cdr, before).total_cost.excl_vat == b


SUNDAY = make_tariff([([comp("ENERGY", "0.50")], {"day_of_week": ["SUNDAY"]}), ([comp("ENERGY", "0.25")], None)])


@pytest.mark.parametrize("at,tz,price", [
    # spring-forward night in Paris: Sunday 2024-03-31, 02:00 CET -> 03:00 CEST (01:00 UTC)
    ("2024-03-30T23:30:00Z", "UTC", "0.25"),           # Saturday in UTC
    ("2024-03-30T23:30:00Z", "Europe/Paris", "0.50"),  # 00:30 CET = Sunday in Paris
    ("2024-03-31T21:30:00Z", "Europe/Paris", "0.50"),  # 23:30 CEST Sunday
    ("2024-03-31T22:30:00Z", "UTC", "0.50"),           # still Sunday in UTC
    ("2024-03-31T22:30:00Z", "Europe/Paris", "0.25"),  # 00:30 CEST = Monday in Paris (+2 after DST)
    ("2024-03-31T22:00:00Z", "Europe/Paris", "0.25"),  # exactly local midnight
])
def test_day_of_week_in_local_time_across_dst(at, tz, price):
    r = pricing.price_cdr(make_cdr(at, at, [(at, {"ENERGY": 1})]), SUNDAY, tz=tz)
    assert r.total_cost.excl_vat == D(price)


def test_time_of_day_in_local_time_across_dst():
    t = make_tariff([([comp("ENERGY", "1")], {"start_time": "03:00", "end_time": "04:00"})])
    at = "2024-03-31T01:30:00Z"  # 03:30 CEST (the clock jumped from 02:00 to 03:00)
    cdr = make_cdr(at, at, [(at, {"ENERGY": 1})])
    assert pricing.price_cdr(cdr, t, tz="Europe/Paris").total_cost.excl_vat == 1
    assert pricing.price_cdr(cdr, t, tz="UTC").total_cost.excl_vat == 0
    # autumn: 02:30 happens twice on 2024-10-27 (00:30Z CEST and 01:30Z CET): both match 02:00-03:00
    t2 = make_tariff([([comp("ENERGY", "1")], {"start_time": "02:00", "end_time": "03:00"})])
    for at in ("2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z"):
        cdr = make_cdr(at, at, [(at, {"ENERGY": 1})])
        assert pricing.price_cdr(cdr, t2, tz="Europe/Paris").total_cost.excl_vat == 1
    at = "2024-10-27T02:00:00Z"  # 03:00 CET
    assert pricing.price_cdr(make_cdr(at, at, [(at, {"ENERGY": 1})]), t2, tz="Europe/Paris").total_cost.excl_vat == 0


def test_dates_start_inclusive_end_exclusive_in_local_time():
    t = make_tariff([([comp("ENERGY", "1")], {"start_date": "2025-01-01", "end_date": "2025-01-03"})])

    def price(at, tz):
        return pricing.price_cdr(make_cdr(at, at, [(at, {"ENERGY": 1})]), t, tz=tz).total_cost.excl_vat

    assert price("2024-12-31T23:30:00Z", "UTC") == 0
    assert price("2024-12-31T23:30:00Z", "Europe/Paris") == 1  # already 1 January in Paris
    assert price("2025-01-02T23:59:00Z", "UTC") == 1
    assert price("2025-01-03T00:00:00Z", "UTC") == 0           # end_date exclusive
    assert price("2025-01-02T23:30:00Z", "Europe/Paris") == 0  # 3 January in Paris
    assert price("2025-01-02T23:30:00Z", "America/New_York") == 1


def test_unknown_time_zone_is_refused():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z",
                                   [("2019-01-01T10:00:00Z", {"ENERGY": 1})]), NIGHT, tz="Mars/Olympus")


# --------------------------------------------------------------------------------------------
# step_size
# --------------------------------------------------------------------------------------------
STEP_TARIFF = make_tariff([
    ([comp("TIME", "1.20", 1800), comp("PARKING_TIME", "1.00", 900)], {"start_time": "00:00", "end_time": "17:00"}),
    ([comp("TIME", "2.40", 900), comp("PARKING_TIME", "1.00", 900)], {"start_time": "17:00", "end_time": "20:00"}),
    ([comp("TIME", "2.40", 900)], {"start_time": "20:00", "end_time": "00:00"}),
])


def test_step_size_example_1_time_then_parking():
    # 16:55 charges 10 min, parks 2 min: 5 min x 1.20 + 5 min x 2.40 + 15 min parking x 1.00 = 0.55
    r = pricing.price_cdr(make_cdr("2019-01-01T16:55:00Z", "2019-01-01T17:07:00Z", [
        ("2019-01-01T16:55:00Z", {"TIME": 5 * MIN}), ("2019-01-01T17:00:00Z", {"TIME": 5 * MIN}),
        ("2019-01-01T17:05:00Z", {"PARKING_TIME": 2 * MIN})]), STEP_TARIFF)
    assert eur(r.total_time_cost.excl_vat) == D("0.30")
    assert r.total_parking_cost.excl_vat == D("0.25")
    assert eur(r.total_cost.excl_vat) == D("0.55")


def test_step_size_example_2_time_only():
    # 16:35 charges 35 min: total rounded to 45 min (step of the last TIME component, 900 s);
    # 25 min x 1.20 + 20 min x 2.40 = 1.30
    r = pricing.price_cdr(make_cdr("2019-01-01T16:35:00Z", "2019-01-01T17:10:00Z", [
        ("2019-01-01T16:35:00Z", {"TIME": 25 * MIN}), ("2019-01-01T17:00:00Z", {"TIME": 10 * MIN})]), STEP_TARIFF)
    assert eur(r.total_cost.excl_vat) == D("1.30")
    assert r.lines[1].billed_volume * 60 == pytest.approx(D(20), abs=D("1e-20"))
    assert r.lines[0].billed_volume == r.lines[0].volume


def test_step_size_example_3_switch_to_free():
    # 19:40 charges 12 min, parks 20 min; parking after 20:00 is free (no PARKING_TIME
    # component) -> 8 billable min rounded to 15: 12 min x 2.40 + 15 min x 1.00 = 0.73
    r = pricing.price_cdr(make_cdr("2019-01-01T19:40:00Z", "2019-01-01T20:12:00Z", [
        ("2019-01-01T19:40:00Z", {"TIME": 12 * MIN}), ("2019-01-01T19:52:00Z", {"PARKING_TIME": 8 * MIN}),
        ("2019-01-01T20:00:00Z", {"PARKING_TIME": 12 * MIN})]), STEP_TARIFF)
    assert r.total_time_cost.excl_vat == D("0.48")
    assert r.total_parking_cost.excl_vat == D("0.25")
    assert eur(r.total_cost.excl_vat) == D("0.73")


def test_step_size_energy_on_session_total():
    # mod_cdrs: 0.20/kWh before 17:00, 0.27 after, both step 500 Wh; 4.3 + 1.1 = 5.4 -> 5.5 kWh;
    # the extra 0.1 kWh goes to the last period: 4.3 x 0.20 + 1.2 x 0.27 = 1.184
    t = make_tariff([([comp("ENERGY", "0.20", 500)], {"end_time": "17:00"}), ([comp("ENERGY", "0.27", 500)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T16:00:00Z", "2019-01-01T18:00:00Z", [
        ("2019-01-01T16:00:00Z", {"ENERGY": "4.3"}), ("2019-01-01T17:00:00Z", {"ENERGY": "1.1"})]), t)
    assert [ln.billed_volume for ln in r.lines] == [D("4.3"), D("1.2")]
    assert r.total_energy_cost.excl_vat == D("1.184")
    assert r.total_energy == D("5.4")


def test_step_size_time_on_session_total():
    # mod_cdrs: 5/h before 17:00, 7/h after, step 10 min; 6 + 22 min = 28 -> 30: 24 min after 17:00
    t = make_tariff([([comp("TIME", "5", 600)], {"end_time": "17:00"}), ([comp("TIME", "7", 600)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T16:54:00Z", "2019-01-01T17:22:00Z", [
        ("2019-01-01T16:54:00Z", {"TIME": "0.1"}), ("2019-01-01T17:00:00Z", {"TIME": 22 * MIN})]), t)
    assert r.lines[1].billed_volume == pytest.approx(D("0.4"), abs=D("1e-25"))
    assert eur(r.total_cost.excl_vat) == D("3.30")  # 0.5 + 2.8


def test_step_size_parking_only_when_time_and_parking():
    # mod_cdrs: TIME 1/h and PARKING 2/h, both step 10 min; 21 min charging (not rounded),
    # 16 min parking -> 20 min: 0.35 + 0.6667
    t = make_tariff([([comp("TIME", "1", 600), comp("PARKING_TIME", "2", 600)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T10:37:00Z", [
        ("2019-01-01T10:00:00Z", {"TIME": "0.35"}), ("2019-01-01T10:21:00Z", {"PARKING_TIME": 16 * MIN})]), t)
    assert r.total_time_cost.excl_vat == D("0.35")
    assert eur(r.total_parking_cost.excl_vat) == D("0.67")
    assert r.lines[1].billed_volume * 60 == pytest.approx(D(20), abs=D("1e-20"))


@pytest.mark.parametrize("step,expected", [(1, "0.029"), (25, "0.03125"), (500, "0.125")])
def test_step_size_energy_wh_note(step, expected):
    # PriceComponent note: 115.2 Wh at 0.25/kWh -> 116 Wh: 0.029; step 25 -> 125 Wh; step 500 -> 500 Wh
    t = make_tariff([([comp("ENERGY", "0.25", step)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z",
                                   [("2019-01-01T10:00:00Z", {"ENERGY": "0.1152"})]), t)
    assert r.total_cost.excl_vat == D(expected)


def test_exact_multiple_is_not_rounded():
    t = make_tariff([([comp("TIME", "3", 60)], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:30:00Z",
                                   [("2019-01-01T10:00:00Z", {"TIME": "2.5"})]), t)
    assert r.lines[0].billed_volume == D("2.5") and r.total_cost.excl_vat == D("7.5")


# --------------------------------------------------------------------------------------------
# FLAT
# --------------------------------------------------------------------------------------------
def test_flat_once_per_element_activation():
    same = make_tariff([([comp("FLAT", "1.00")], None), ([comp("TIME", "1")], None)])
    periods = [("2019-01-01T16:00:00Z", {"TIME": 1}), ("2019-01-01T17:00:00Z", {"TIME": 1}),
               ("2019-01-01T18:00:00Z", {"TIME": 1})]
    cdr = make_cdr("2019-01-01T16:00:00Z", "2019-01-01T19:00:00Z", periods)
    assert pricing.price_cdr(cdr, same).total_fixed_cost.excl_vat == D("1.00")
    # a FLAT before 17:00 and another from 17:00: both elements become active -> both charged
    switch = make_tariff([([comp("FLAT", "1.00")], {"end_time": "17:00"}), ([comp("FLAT", "0.50")], None)])
    r = pricing.price_cdr(cdr, switch)
    assert r.total_fixed_cost.excl_vat == D("1.50")
    assert [(ln.period_index, ln.element_index) for ln in r.lines] == [(0, 0), (1, 1)]
    # an element that becomes active again is charged again (A, B, A)
    window = make_tariff([([comp("FLAT", "0.50")], {"start_time": "17:00", "end_time": "18:00"}),
                          ([comp("FLAT", "1.00")], None)])
    r = pricing.price_cdr(cdr, window)
    assert [ln.element_index for ln in r.lines] == [1, 0, 1]


# --------------------------------------------------------------------------------------------
# Reservation
# --------------------------------------------------------------------------------------------
def _res_tariff(res_elements):
    return make_tariff(res_elements + [([comp("FLAT", "0.50", vat=20), comp("ENERGY", "0.25", vat=10)], None)])


def test_reservation_example_15():
    # reservation 5/h (20%, step 60 s), started 15 min after reservation, 20 kWh -> 6.75 / 7.60
    t = _res_tariff([([comp("TIME", "5.00", 60, 20)], {"reservation": "RESERVATION"})])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:15:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": "0.25"}),
        ("2019-01-01T10:15:00Z", {"ENERGY": 20, "TIME": 2})]), t)
    assert r.total_cost == ocpi.Price(D("6.75"), D("7.600"))
    assert r.total_reservation_cost == ocpi.Price(D("1.25"), D("1.500"))
    assert r.total_fixed_cost.excl_vat == D("0.50")
    assert [ln.dimension for ln in r.lines] == ["RESERVATION", "FLAT", "ENERGY"]


def test_reservation_example_16_fee_and_step():
    # reservation fee 2.00 + 5/h billed per 5 min; 13 min -> 15 min; -> 8.75 / 10.00
    t = _res_tariff([([comp("FLAT", "2.00", 1, 20), comp("TIME", "5.00", 300, 20)], {"reservation": "RESERVATION"})])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:13:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": 13 * MIN}),
        ("2019-01-01T10:13:00Z", {"ENERGY": 20})]), t)
    assert totals(r) == (D("8.75"), D("10.00"))
    assert eur(r.total_reservation_cost.excl_vat) == D("3.25")  # fee + 15 min, both reservation costs
    assert r.total_fixed_cost == ocpi.Price(D("0.50"), D("0.600"))
    assert [(ln.dimension, ln.category) for ln in r.lines] == [
        ("FLAT", "RESERVATION"), ("RESERVATION", "RESERVATION"), ("FLAT", "FIXED"), ("ENERGY", "ENERGY")]


EXPIRE_FEE = [([comp("FLAT", "4.00", 1, 20)], {"reservation": "RESERVATION_EXPIRES"}),
              ([comp("TIME", "2.00", 600, 20)], {"reservation": "RESERVATION"})]


def test_reservation_example_17_used_and_expired():
    t = _res_tariff(EXPIRE_FEE)
    used = make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:22:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": 22 * MIN}), ("2019-01-01T10:22:00Z", {"ENERGY": 20})])
    r = pricing.price_cdr(used, t)
    assert totals(r) == (D("6.50"), D("7.30"))  # 30 min x 2.00 + 0.50 + 5.00
    expired = make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": 1})])
    r = pricing.price_cdr(expired, t)
    assert r.total_cost == ocpi.Price(D("6.00"), D("7.200"))  # expiry fee 4.00 + 60 min x 2.00
    assert r.total_fixed_cost.excl_vat == 0 and r.total_reservation_cost.excl_vat == D("6.00")


def test_reservation_example_18_expire_time_takes_precedence():
    t = _res_tariff([([comp("TIME", "6.00", 600, 20)], {"reservation": "RESERVATION_EXPIRES"}),
                     ([comp("TIME", "3.00", 600, 20)], {"reservation": "RESERVATION"})])
    used = make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:22:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": 22 * MIN}), ("2019-01-01T10:22:00Z", {"ENERGY": 20})])
    assert totals(pricing.price_cdr(used, t)) == (D("7.00"), D("7.90"))
    expired = make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:30:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": "1.5"})])
    assert pricing.price_cdr(expired, t).total_cost == ocpi.Price(D("9.00"), D("10.800"))


def test_reservation_elements_do_not_price_charging():
    # a reservation TIME component never prices charging TIME, and a regular element never
    # prices reservation time
    t = make_tariff([([comp("TIME", "9")], {"reservation": "RESERVATION"}), ([comp("TIME", "1")], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T12:00:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": 1}), ("2019-01-01T11:00:00Z", {"TIME": 1})]), t)
    assert [(ln.dimension, ln.unit_price) for ln in r.lines] == [("RESERVATION", D(9)), ("TIME", D(1))]
    regular_only = make_tariff([([comp("TIME", "1")], None)])
    r = pricing.price_cdr(make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z", [
        ("2019-01-01T10:00:00Z", {"RESERVATION_TIME": 1})]), regular_only)
    assert r.lines == () and r.total_reservation_time == D(1)


# --------------------------------------------------------------------------------------------
# min_price / max_price
# --------------------------------------------------------------------------------------------
def _energy_cdr(kwh):
    return make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z", [("2019-01-01T10:00:00Z", {"ENERGY": kwh})])


def test_max_price_example_6():
    t = make_tariff([([comp("FLAT", "0.50", vat=20), comp("ENERGY", "0.25", vat=10)], None)],
                    max_price={"excl_vat": D(10), "incl_vat": D(11)})
    r = pricing.price_cdr(_energy_cdr(50), t)  # 13.00 / 14.35 -> capped
    assert r.total_cost == ocpi.Price(D(10), D(11))
    assert r.min_max_adjustment == ocpi.Price(D("-3.00"), D("-3.350"))
    assert r.total_energy_cost.excl_vat == D("12.50")  # component totals stay unclamped
    r = pricing.price_cdr(_energy_cdr(30), t)  # 8.00 / 8.85 under the cap
    assert r.total_cost == ocpi.Price(D("8.00"), D("8.850")) and r.min_max_adjustment == ocpi.Price(0, 0)


def test_min_price_example_12():
    t = make_tariff([([comp("ENERGY", "0.25", vat=10)], None)], min_price={"excl_vat": D("0.50"), "incl_vat": D("0.55")})
    assert pricing.price_cdr(_energy_cdr(20), t).total_cost == ocpi.Price(D("5.00"), D("5.500"))
    r = pricing.price_cdr(_energy_cdr("1.2"), t)
    assert r.total_cost == ocpi.Price(D("0.50"), D("0.55"))
    assert r.min_max_adjustment == ocpi.Price(D("0.20"), D("0.220"))


def test_min_and_max_apply_to_excl_and_incl_independently():
    # VAT 30% on TIME: excl 1.10 >= min excl 1.00 but incl 1.43 < min incl 1.50 -> only incl raised
    t = make_tariff([([comp("TIME", "1.10", vat=30)], None)], min_price={"excl_vat": D("1.00"), "incl_vat": D("1.50")})
    cdr = make_cdr("2019-01-01T10:00:00Z", "2019-01-01T11:00:00Z", [("2019-01-01T10:00:00Z", {"TIME": 1})])
    r = pricing.price_cdr(cdr, t)
    assert r.total_cost == ocpi.Price(D("1.10"), D("1.50"))
    assert r.min_max_adjustment == ocpi.Price(D(0), D("0.07"))
    # max: excl 1.10 > 1.05 capped, incl 1.43 <= 1.50 kept
    t = make_tariff([([comp("TIME", "1.10", vat=30)], None)], max_price={"excl_vat": D("1.05"), "incl_vat": D("1.50")})
    assert pricing.price_cdr(cdr, t).total_cost == ocpi.Price(D("1.05"), D("1.430"))


def test_min_price_without_incl_vat_keeps_effective_vat_ratio():
    t = make_tariff([([comp("ENERGY", "0.25", vat=10)], None)], min_price={"excl_vat": D("0.50")})
    r = pricing.price_cdr(_energy_cdr("1.2"), t)
    assert r.total_cost == ocpi.Price(D("0.50"), D("0.55"))
    free = make_tariff([([comp("FLAT", "0")], None)], min_price={"excl_vat": D("1")})
    assert pricing.price_cdr(_energy_cdr(1), free).total_cost == ocpi.Price(D(1), D(1))


# --------------------------------------------------------------------------------------------
# Errors, output format
# --------------------------------------------------------------------------------------------
def test_currency_mismatch_is_refused():
    t = ocpi.parse_tariff({"currency": "CHF", "elements": [{"price_components": [comp("ENERGY", 1)]}]}, strict=False)
    with pytest.raises(OcpiValidationError) as info:
        pricing.price_cdr(_energy_cdr(1), t)
    assert str(info.value) == "$.currency: CDR currency EUR differs from tariff currency CHF"


def test_to_ocpi_totals_rounds_half_up_to_4_places():
    t = make_tariff([([comp("ENERGY", "0.33335")], None)])
    r = pricing.price_cdr(_energy_cdr(1), t)
    out = r.to_ocpi_totals()
    assert out["total_cost"] == {"excl_vat": D("0.3334"), "incl_vat": D("0.3334")}
    assert set(out) == {"total_cost", "total_energy", "total_energy_cost", "total_time", "total_time_cost",
                        "total_parking_time", "total_parking_cost", "total_fixed_cost", "total_reservation_cost"}
    assert r.to_ocpi_totals(places=2)["total_cost"]["excl_vat"] == D("0.33")
    assert r.to_ocpi_totals(as_float=True)["total_energy"] == 1.0
    assert str(out["total_time"]) == "1" and str(out["total_parking_cost"]["excl_vat"]) == "0"


def test_prepared_tariff_is_kept_per_object():
    t = make_tariff([([comp("ENERGY", "1")], None)])
    assert pricing.prepare_tariff(t) is pricing.prepare_tariff(t)
    t2 = make_tariff([([comp("ENERGY", "1")], None)])
    assert pricing.prepare_tariff(t2) is not pricing.prepare_tariff(t)
    assert pricing.prepare_tariff(t2).tariff is t2


# --------------------------------------------------------------------------------------------
# Invariant on randomized sessions (fixed seeds)
# --------------------------------------------------------------------------------------------
def _random_tariff(rng):
    elements = []
    for _ in range(rng.randint(1, 6)):
        comps = []
        for dim in rng.sample(["ENERGY", "FLAT", "TIME", "PARKING_TIME"], rng.randint(1, 4)):
            c = {"type": dim, "price": D(rng.randint(0, 500)) / 100,
                 "step_size": rng.choice([1, 1, 60, 300, 900, 500, 1000])}
            if rng.random() < 0.7:
                c["vat"] = D(rng.choice([0, 5, 10, 20, 21, 55])) / D(rng.choice([1, 10]))
            comps.append(c)
        restr = {}
        if rng.random() < 0.3:
            restr["start_time"] = f"{rng.randint(0, 23):02d}:{rng.choice([0, 30]):02d}"
            restr["end_time"] = f"{rng.randint(0, 23):02d}:{rng.choice([0, 15]):02d}"
        if rng.random() < 0.2:
            restr["day_of_week"] = rng.sample(list(ocpi.DAYS_OF_WEEK), rng.randint(1, 6))
        if rng.random() < 0.2:
            restr["max_kwh"] = D(rng.randint(1, 40))
        if rng.random() < 0.2:
            restr["min_duration"] = rng.randint(0, 7200)
        if rng.random() < 0.15:
            restr["max_power"] = D(rng.randint(5, 100))
        if rng.random() < 0.1 and all(c["type"] in ("FLAT", "TIME") for c in comps):
            restr["reservation"] = rng.choice(["RESERVATION", "RESERVATION_EXPIRES"])
        elements.append((comps, restr or None))
    for kind in ("RESERVATION", "RESERVATION_EXPIRES"):
        if rng.random() < 0.4:
            comps = [{"type": "TIME", "price": D(rng.randint(0, 600)) / 100, "step_size": rng.choice([1, 60, 600]),
                      "vat": D(20)}]
            if rng.random() < 0.5:
                comps.append({"type": "FLAT", "price": D(rng.randint(0, 400)) / 100, "step_size": 1})
            elements.insert(rng.randint(0, len(elements)), (comps, {"reservation": kind}))
    extra = {}
    if rng.random() < 0.3:
        extra["min_price"] = {"excl_vat": D(rng.randint(0, 300)) / 100}
        if rng.random() < 0.5:
            extra["min_price"]["incl_vat"] = extra["min_price"]["excl_vat"] * D("1.2")
    if rng.random() < 0.3:
        extra["max_price"] = {"excl_vat": D(rng.randint(300, 3000)) / 100, "incl_vat": D(rng.randint(300, 3600)) / 100}
    return make_tariff(elements, **extra)


def _random_cdr(rng):
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 525600))
    t = start
    periods = []
    if rng.random() < 0.3:
        mins = rng.randint(1, 90)
        periods.append((t, {"RESERVATION_TIME": (D(mins) / 60).quantize(D("0.0001"))}))
        if rng.random() < 0.3:  # expired reservation: nothing else in the CDR
            fmt = "%Y-%m-%dT%H:%M:%SZ"
            end = t + timedelta(minutes=mins)
            return make_cdr(start.strftime(fmt), end.strftime(fmt), [(p.strftime(fmt), d) for p, d in periods])
        t += timedelta(minutes=mins)
    for _ in range(rng.randint(1, 8)):
        mins = rng.randint(0, 180)
        dims = {}
        if rng.random() < 0.7:
            dims["TIME"] = (D(mins * 60 + rng.randint(0, 59)) / 3600).quantize(D("0.0001"))
            dims["ENERGY"] = D(rng.randint(0, 50000)) / 1000
            dims["MAX_POWER"] = D(rng.randint(1, 150))
        else:
            dims["PARKING_TIME"] = (D(mins) / 60).quantize(D("0.0001"))
        periods.append((t, dims))
        t += timedelta(minutes=mins)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return make_cdr(start.strftime(fmt), t.strftime(fmt), [(p.strftime(fmt), d) for p, d in periods])


@pytest.mark.parametrize("seed", range(20))
def test_randomized_invariants(seed):
    rng = random.Random(seed)
    for _ in range(40):
        tariff = _random_tariff(rng)
        cdr = _random_cdr(rng)
        tz = rng.choice(["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"])
        r = pricing.price_cdr(cdr, tariff, tz=tz)
        with localcontext() as ctx:
            ctx.prec = 200  # a wide context: the sums below are exact
            cats = {"FIXED": r.total_fixed_cost, "ENERGY": r.total_energy_cost, "TIME": r.total_time_cost,
                    "PARKING": r.total_parking_cost, "RESERVATION": r.total_reservation_cost}
            for basis in ("excl_vat", "incl_vat"):
                lines_sum = sum((getattr(ln, basis) for ln in r.lines), D(0))
                comp_sum = sum((getattr(p, basis) for p in cats.values()), D(0))
                adj = getattr(r.min_max_adjustment, basis)
                assert lines_sum == comp_sum
                assert comp_sum + adj == getattr(r.total_cost, basis)
                for cat, price in cats.items():
                    assert sum((getattr(ln, basis) for ln in r.lines if ln.category == cat), D(0)) == getattr(price, basis)
            assert r.total_energy == sum((d.volume for p in cdr.charging_periods for d in p.dimensions if d.type == "ENERGY"), D(0))
        ex, inc = r.total_cost.excl_vat, r.total_cost.incl_vat
        if tariff.min_price is not None:
            assert ex >= tariff.min_price.excl_vat
        if tariff.max_price is not None:
            assert ex <= tariff.max_price.excl_vat and inc <= tariff.max_price.incl_vat
        for ln in r.lines:
            assert ln.billed_volume >= ln.volume > 0
            assert ln.excl_vat >= 0 and ln.incl_vat >= ln.excl_vat
            assert ln.period_start <= ln.period_end
            assert ln.dimension in ("ENERGY", "FLAT", "TIME", "PARKING_TIME", "RESERVATION")
        # step_size: at most one line per dimension is rounded up, and it is the last one
        for dim in ("ENERGY", "TIME", "PARKING_TIME", "RESERVATION"):
            dl = [ln for ln in r.lines if ln.dimension == dim]
            assert all(ln.billed_volume == ln.volume for ln in dl[:-1])
        if any(ln.dimension == "PARKING_TIME" for ln in r.lines):
            assert all(ln.billed_volume == ln.volume for ln in r.lines if ln.dimension == "TIME")


def random_restrictions(rng, time, minutes, date, days, max_days, bound, duration):
    """Random OCPI TariffRestrictions; each argument is the probability of that kind of field
    (``minutes``: the minutes a time may have, ``max_days``: the most weekdays listed)."""
    restr = {}
    if rng.random() < time:
        restr["start_time"] = f"{rng.randint(0, 23):02d}:{rng.choice(minutes):02d}"
    if rng.random() < time:
        restr["end_time"] = f"{rng.randint(0, 23):02d}:{rng.choice(minutes):02d}"
    if rng.random() < date:
        restr["start_date"] = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if rng.random() < date:
        restr["end_date"] = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if rng.random() < days:
        restr["day_of_week"] = rng.sample(list(ocpi.DAYS_OF_WEEK), rng.randint(1, max_days))
    for key in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power"):
        if rng.random() < bound:
            restr[key] = D(rng.randint(0, 600)) / 10
    for key in ("min_duration", "max_duration"):
        if rng.random() < duration:
            restr[key] = rng.randint(0, 14400)
    return restr

def test_to_ocpi_totals_independent_of_callers_decimal_context():
    t = make_tariff([([comp("ENERGY", "0.25", vat=10)], None)])
    r = pricing.price_cdr(_energy_cdr("123456.7"), t)
    with localcontext() as ctx:
        ctx.prec = 5
        out = r.to_ocpi_totals()
    assert out["total_cost"] == {"excl_vat": D("30864.175"), "incl_vat": D("33950.5925")}
    assert str(out["total_energy"]) == "123456.7"


def test_session_spanning_a_dst_change_uses_each_period_offset():
    # Paris springs forward at 01:00Z on 2024-03-31: 00:30Z is 01:30 CET, 01:30Z is 03:30 CEST.
    t = make_tariff([([comp("ENERGY", "1")], {"start_time": "03:00", "end_time": "04:00"}),
                     ([comp("ENERGY", "0")], {"start_time": "01:00", "end_time": "02:00"})])
    cdr = make_cdr("2024-03-31T00:30:00Z", "2024-03-31T02:00:00Z", [
        ("2024-03-31T00:30:00Z", {"ENERGY": 1}), ("2024-03-31T01:30:00Z", {"ENERGY": 1})])
    r = pricing.price_cdr(cdr, t, tz="Europe/Paris")
    assert [ln.element_index for ln in r.lines] == [1, 0]
    # the same wall-clock pattern within one offset (a week later) goes through the fast path
    cdr = make_cdr("2024-04-07T23:30:00Z", "2024-04-08T02:00:00Z", [
        ("2024-04-07T23:30:00Z", {"ENERGY": 1}), ("2024-04-08T01:30:00Z", {"ENERGY": 1})])
    r = pricing.price_cdr(cdr, t, tz="Europe/Paris")  # 01:30 and 03:30 CEST
    assert [ln.element_index for ln in r.lines] == [1, 0]


def _hand_built(cdr, rng=None):
    """The same CDR with ChargingPeriods built by hand (no ``volumes`` map); with ``rng``,
    random current and power figures added to the periods that have none of them."""
    periods = []
    for p in cdr.charging_periods:
        dims = p.dimensions
        if rng is not None and not any(d.type.endswith(("CURRENT", "POWER")) for d in dims):
            dims += tuple(ocpi.CdrDimension(key, D(rng.randint(0, 600)) / 10)
                          for key in ("MIN_CURRENT", "MAX_CURRENT", "CURRENT", "MIN_POWER", "MAX_POWER", "POWER")
                          if rng.random() < 0.4)
        periods.append(ocpi.ChargingPeriod(p.start_date_time, dims, p.tariff_id))
    return cdr._replace(charging_periods=tuple(periods))


def _restricted_tariff(rng):
    """A random tariff whose elements may carry any kind of restriction (dates, times, days,
    energy, current, power, duration, reservation)."""
    elements = []
    for _ in range(rng.randint(1, 7)):
        comps = [comp(dim, rng.randint(0, 9), rng.choice([1, 60, 300])) for dim in
                 rng.sample(["ENERGY", "FLAT", "TIME", "PARKING_TIME"], rng.randint(1, 3))]
        restr = random_restrictions(rng, time=0.4, minutes=[0, 30], date=0.2, days=0.3,
                                    max_days=6, bound=0.15, duration=0.2)
        if rng.random() < 0.15 and all(c["type"] in ("FLAT", "TIME") for c in comps):
            restr["reservation"] = rng.choice(["RESERVATION", "RESERVATION_EXPIRES"])
        elements.append((comps, restr or None))
    return make_tariff(elements)


@pytest.mark.parametrize("seed", range(6))
def test_hand_built_periods_price_like_parsed_ones(seed):
    """A CDR whose ChargingPeriods were built by hand (no ``volumes`` map) prices exactly like
    the same CDR as parsed -- every line, every total, the same Decimals (``repr`` shows
    exponents) -- on random tariffs (every kind of restriction, reservations, lenient
    reservation elements with other dimensions, min/max prices) in several zones."""
    rng = random.Random(1000 + seed)
    for _ in range(60):
        tariff = _random_tariff(rng)
        if rng.random() < 0.3:
            tariff = _restricted_tariff(rng)
        elif rng.random() < 0.3:  # lenient: a reservation element may price other dimensions too
            data = {"currency": "EUR", "elements": [
                {"price_components": [comp(dim, rng.randint(0, 9), rng.choice([1, 60, 300]), rng.choice([None, 20]))
                                      for dim in rng.sample(["ENERGY", "FLAT", "TIME", "PARKING_TIME"], 2)],
                 "restrictions": {"reservation": rng.choice(["RESERVATION", "RESERVATION_EXPIRES"])}}]
                + [{"price_components": [comp("TIME", "2.5", 60, 20)]}]}
            tariff = ocpi.parse_tariff(data, strict=False)
        cdr = _random_cdr(rng)
        by_hand = _hand_built(cdr)
        for tz in ("UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"):
            assert repr(pricing.price_cdr(by_hand, tariff, tz)) == repr(pricing.price_cdr(cdr, tariff, tz)), (
                tariff, cdr, tz)
