"""Exact decimals of the numbers the add-on reads (JSON numbers, Odoo floats), one way."""

from decimal import Decimal


def to_decimal(value):
    """Exact Decimal of a number as it was written: a float by its shortest repr (what was typed
    in a form or sent in JSON), an int, a numeric string or a Decimal as is; None is 0."""
    if value is None:
        return Decimal(0)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def float_to_decimal(value, quant=None):
    """Exact decimal of an Odoo float field (what the user typed; empty is 0), quantized to
    ``quant`` when given."""
    result = to_decimal(float(value or 0.0))
    return result.quantize(quant) if quant else result


def decimal_to_json(value):
    """JSON number for an OCPI payload: int when integral, else float (exact repr)."""
    value = value.normalize()
    if value == value.to_integral_value():
        return int(value)
    return float(value)
