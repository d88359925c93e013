"""Invoice lines of a clearing period: exact to the cent (clearing_core.invoice_lines)."""

import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from clearing_core import invoice_lines
from clearing_core.invoice_lines import exact_quantity_price, group_sessions

CENT = Decimal("0.01")


def money(value):
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def session(parts, late=False, adjustment=Decimal(0), credit=False, dispute_credit=False,
            grid=None):
    """A stored session: ``parts`` is a list of (category, dimension, unit price, volume);
    ``grid`` the fleet grid that priced it (None: the contract's)."""
    breakdown = []
    amounts = dict.fromkeys(invoice_lines.CATEGORY_FIELDS.values(), Decimal(0))
    sign = -1 if credit else 1
    for category, dimension, price, volume in parts:
        price, volume = Decimal(price), Decimal(volume)
        breakdown.append({"category": category, "dimension": dimension,
                          "unit_price": str(price), "billed_volume": str(volume),
                          "excl_vat": str(price * volume)})
    for category, fname in invoice_lines.CATEGORY_FIELDS.items():
        exact = sum((Decimal(line["excl_vat"]) for line in breakdown
                     if line["category"] == category), Decimal(0))
        amounts[fname] = sign * money(exact)
    row = {"is_late": late, "credit": credit, "dispute_credit": dispute_credit,
           "amount_adjustment": adjustment, "price_breakdown": breakdown, "grid": grid,
           **amounts}
    row["amount_untaxed"] = sum(amounts.values()) + adjustment
    return row


def lines_total(groups, price_digits=4, quantity_digits=3):
    total = Decimal(0)
    for (kind, _dimension, price, _late, _grid), group in groups.items():
        quantity, unit = exact_quantity_price(
            group["amount"], group["volume"], price, "EUR", quantity_digits, price_digits)
        line = money(quantity * unit)
        assert line == group["amount"], (kind, price, group, quantity, unit)
        total += line
    return total


def test_awkward_energy_is_exact():
    rows = [session([("ENERGY", "ENERGY", "0.49", "0.4567")]) for _i in range(3)]
    groups = group_sessions(rows, "EUR")
    [(key, group)] = groups.items()
    assert key == ("ENERGY", "ENERGY", Decimal("0.49"), False, None)
    assert group["amount"] == Decimal("0.66")  # 3 x 0.22, not round(1.3701 x 0.49) = 0.67
    assert group["volume"] == Decimal("1.3701")
    assert exact_quantity_price(group["amount"], group["volume"], Decimal("0.49"), "EUR",
                                3, 4) == (Decimal("1.347"), Decimal("0.49"))


@pytest.mark.parametrize("seed", range(5))
def test_many_random_sessions_sum_to_the_cent(seed):
    rng = random.Random(seed)
    prices = {"ENERGY": ["0.49", "0.3950", "0.2345", "9.99"], "TIME": ["3.6", "0.0125", "12"],
              "PARKING": ["2.5", "7.4321"], "FIXED": ["0.35", "1"]}
    dims = {"ENERGY": "ENERGY", "TIME": "TIME", "PARKING": "PARKING_TIME", "FIXED": "FLAT"}
    rows = []
    for _i in range(3000):
        parts = []
        for category in rng.sample(sorted(prices), rng.randint(1, 4)):
            for _j in range(rng.randint(1, 2)):  # time-of-day brackets: 2 prices a session
                volume = "1" if category == "FIXED" else "%.4f" % rng.uniform(0.0001, 80)
                parts.append((category, dims[category], rng.choice(prices[category]), volume))
        rows.append(session(parts, late=rng.random() < 0.1,
                            adjustment=Decimal(rng.choice(["0", "0", "0.37", "-1.01"])),
                            credit=rng.random() < 0.02,
                            grid=rng.choice([None, None, 7, 9])))
    groups = group_sessions(rows, "EUR")
    expected = sum(row["amount_untaxed"] for row in rows)
    assert sum(g["amount"] for g in groups.values()) == expected
    assert lines_total(groups) == expected


def test_split_of_a_session_over_two_prices_keeps_its_cents():
    row = session([("ENERGY", "ENERGY", "0.3333", "1.001"), ("ENERGY", "ENERGY", "0.6667", "1.001")])
    groups = group_sessions([row], "EUR")
    assert sum(g["amount"] for g in groups.values()) == row["amount_energy"]
    for group in groups.values():
        assert group["amount"] == money(group["amount"])


def test_credits_and_adjustments_are_own_lines():
    rows = [
        session([("ENERGY", "ENERGY", "0.49", "10")], adjustment=Decimal("0.10")),
        {**session([]), "dispute_credit": True, "amount_untaxed": Decimal("-4.90")},
    ]
    groups = group_sessions(rows, "EUR")
    assert groups[(invoice_lines.ADJUSTMENT, None, None, False, None)]["amount"] == Decimal("0.10")
    assert groups[(invoice_lines.CREDIT, None, None, False, None)]["amount"] == Decimal("-4.90")


def test_each_grid_has_its_own_lines():
    """A fleet session at the contract's price is still billed on its fleet's line."""
    rows = [session([("ENERGY", "ENERGY", "0.49", "10")]),
            session([("ENERGY", "ENERGY", "0.49", "4.5")], grid=3),
            session([("ENERGY", "ENERGY", "0.30", "2")], grid=3, adjustment=Decimal("1.00"))]
    groups = group_sessions(rows, "EUR")
    assert groups[("ENERGY", "ENERGY", Decimal("0.49"), False, None)]["amount"] == Decimal("4.90")
    assert groups[("ENERGY", "ENERGY", Decimal("0.49"), False, 3)]["amount"] == Decimal("2.21")
    assert groups[("ENERGY", "ENERGY", Decimal("0.30"), False, 3)]["amount"] == Decimal("0.60")
    assert groups[(invoice_lines.ADJUSTMENT, None, None, False, 3)]["amount"] == Decimal("1.00")
    assert len(groups) == 4
    assert lines_total(groups) == sum(row["amount_untaxed"] for row in rows)


def test_fallbacks_stay_exact():
    # a price beyond the price precision: metered volume at amount / volume, else 1 x amount
    quantity, price = exact_quantity_price(Decimal("10.00"), Decimal("3"), Decimal("0.123456"),
                                           "EUR", 3, 4)
    assert money(quantity * price) == Decimal("10.00")
    quantity, price = exact_quantity_price(Decimal("0.01"), Decimal("0"), None, "EUR", 3, 4)
    assert (quantity, price) == (Decimal(1), Decimal("0.01"))
    # a large price: quantity steps are too coarse for amount / price
    quantity, price = exact_quantity_price(Decimal("1234.57"), Decimal("98.7656"),
                                           Decimal("12.5"), "EUR", 3, 4)
    assert money(quantity * price) == Decimal("1234.57")
