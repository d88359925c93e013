"""Invoice lines of a clearing period, exact to the cent (pure: no Odoo import).

A session's amount per price component (energy, time, parking, fixed, reservation) is rounded
to the cent when the session is priced; the period is billed the sum of those rounded amounts.
``group_sessions`` sums them per line of the invoice -- one per (component, dimension, unit
price, late, price grid: the contract's or a fleet's) -- with the volumes billed, and ``exact_quantity_price`` chooses the line's
quantity and unit price so that quantity x price, rounded to the cent, is that sum exactly.

Why a choice is needed: 3 sessions of 0.4567 kWh at 0.49 EUR/kWh are billed 3 x 0.22 = 0.66
(each session rounded), while 1.3701 kWh x 0.49 = 0.671349 rounds to 0.67. The unit price stays
the tariff's (0.49, what the counterparty signed) and the quantity becomes the amount divided
by the price, to the quantity precision: 0.66 / 0.49 = 1.347 kWh, and 1.347 x 0.49 = 0.66003,
0.66 to the cent. That holds whenever price x half a quantity step is below half a cent (price
below 10 per unit with 3 decimals of quantity). The metered volume (1.370 kWh here) is in the
line's label and the per-session XLSX. Otherwise, in that order: the metered volume at a unit
price of amount / volume when that is exact at the price precision; else 1 x the amount.
"""

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from . import currencies

# stored amount columns of a session, per pricing category
CATEGORY_FIELDS = {
    "ENERGY": "amount_energy",
    "TIME": "amount_time",
    "PARKING": "amount_parking",
    "FIXED": "amount_fixed",
    "RESERVATION": "amount_reservation",
}
# kind of the lines that do not come from a priced component
ADJUSTMENT = "ADJUSTMENT"
CREDIT = "CREDIT"


def _dec(value):
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _allocate(total, weights, quantum):
    """Split ``total`` (a multiple of ``quantum``) over ``weights`` in multiples of
    ``quantum`` summing to ``total`` exactly (largest remainder)."""
    steps = int((total / quantum).to_integral_value())
    sign = -1 if steps < 0 else 1
    steps = abs(steps)
    weight_sum = sum(abs(w) for w in weights)
    if not weight_sum:
        shares = [Decimal(steps) / len(weights)] * len(weights)
    else:
        shares = [Decimal(steps) * abs(w) / weight_sum for w in weights]
    floors = [int(s.to_integral_value(rounding=ROUND_FLOOR)) for s in shares]
    left = steps - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (floors[i] - shares[i], i))
    for i in order[:left]:
        floors[i] += 1
    return [sign * f * quantum for f in floors]


def group_sessions(rows, currency):
    """Invoice groups of the sessions ``rows`` in ``currency`` (ISO code).

    Each row is a mapping with the session's stored rounded amounts (``amount_energy``...,
    ``amount_adjustment``, ``amount_untaxed``), ``is_late``, ``dispute_credit`` and
    ``price_breakdown`` (the priced lines: ``category``, ``dimension``, ``unit_price``,
    ``billed_volume``, ``excl_vat``) and, optionally, ``grid``: what names the price grid that
    priced the session (any hashable, e.g. a fleet id; None or absent: the contract's grid).
    Returns ``{key: {"amount", "volume", "sessions"}}`` where key is ``(kind, dimension,
    unit_price, late, grid)``: kind a category of ``CATEGORY_FIELDS``, ``ADJUSTMENT`` (min/max
    session price) or ``CREDIT`` (our credits for accepted disputes, one line per grid).
    Amounts are Decimals; their sum equals the sum of the rows' ``amount_untaxed``.
    """
    quantum = currencies.quantum(currency)
    groups = {}

    def add(key, amount, volume):
        group = groups.setdefault(key, {"amount": Decimal(0), "volume": Decimal(0),
                                        "sessions": 0})
        group["amount"] += amount
        group["volume"] += volume
        group["sessions"] += 1

    for row in rows:
        late = bool(row["is_late"])
        grid = row.get("grid") or None
        if row["dispute_credit"]:
            add((CREDIT, None, None, late, grid), _dec(row["amount_untaxed"]), Decimal(0))
            continue
        by_category = {}
        for line in row["price_breakdown"] or ():
            by_category.setdefault(line["category"], []).append(line)
        for category, fname in CATEGORY_FIELDS.items():
            amount = _dec(row[fname])
            lines = by_category.get(category)
            if not lines:
                if amount:
                    add((category, None, None, late, grid), amount, Decimal(0))
                continue
            sign = -1 if amount < 0 or (not amount and row.get("credit")) else 1
            # one part per (dimension, unit price) of the session, the rounded amount split
            parts = {}
            for line in lines:
                part = parts.setdefault((line["dimension"], _dec(line["unit_price"])),
                                        [Decimal(0), Decimal(0)])
                part[0] += _dec(line["excl_vat"])
                part[1] += _dec(line["billed_volume"])
            keys = list(parts)
            shares = ([amount] if len(keys) == 1
                      else _allocate(amount, [parts[k][0] for k in keys], quantum))
            for (dimension, unit_price), share in zip(keys, shares):
                add((category, dimension, unit_price, late, grid), share,
                    sign * parts[(dimension, unit_price)][1])
        adjustment = _dec(row["amount_adjustment"])
        if adjustment:
            add((ADJUSTMENT, None, None, late, grid), adjustment, Decimal(0))
    return groups


def _round(value, digits):
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def exact_quantity_price(amount, volume, unit_price, currency, quantity_digits, price_digits):
    """``(quantity, price_unit)`` whose product, rounded to ``currency``, is ``amount``
    exactly (see the module docstring for the order of the choices)."""
    amount = _dec(amount)
    volume = _dec(volume)

    def exact(quantity, price):
        return currencies.round_money(quantity * price, currency) == amount

    if unit_price is not None:
        price = _dec(unit_price)
        if price and _round(price, price_digits) == price:
            quantity = _round(volume, quantity_digits)
            if quantity and exact(quantity, price):
                return quantity, price
            quantity = _round(amount / price, quantity_digits)
            if quantity and exact(quantity, price):
                return quantity, price
    quantity = _round(volume, quantity_digits)
    if quantity:
        price = _round(amount / quantity, price_digits)
        if exact(quantity, price):
            return quantity, price
    return Decimal(1), amount
