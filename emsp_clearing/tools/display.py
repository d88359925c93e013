"""How numbers, durations and times of a CDR read for people (backend form, portal).

The stored JSON keeps the engine's exact figures (for audit); these only format them: volumes
and prices rounded half-up, durations as h:mm:ss, UTC instants in a contract's time zone.
"""
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pytz

from .numbers import to_decimal


def _decimal(value):
    """``value`` (JSON number or text) as a Decimal, or None when empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return to_decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None


def format_number(value, places=4):
    """A number rounded half-up to ``places`` decimals, without trailing zeros past 2."""
    d = _decimal(value)
    if d is None:
        return ""
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = "{:f}".format(q)
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(2, "0")
        text = "%s.%s" % (whole, frac)
    return text


def format_hours(hours):
    """Hours (a number) as h:mm:ss."""
    d = _decimal(hours)
    if d is None:
        return ""
    sign = "-" if d < 0 else ""
    seconds = int((abs(d) * 3600).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "%s%d:%02d:%02d" % (sign, h, m, s)


def local_text(value, tz):
    """'2026-11-16T16:06:00Z' -> '2026-11-16 17:06:00' in ``tz`` (a pytz zone)."""
    if not value:
        return ""
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=pytz.utc)
    except (TypeError, ValueError):
        return str(value)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
