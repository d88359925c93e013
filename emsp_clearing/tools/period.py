"""Billing period arithmetic: the period holding a day, its statement (lock) date."""

import calendar
from datetime import date, timedelta


def period_bounds(frequency, day):
    """First and last day (inclusive) of the billing period of ``frequency`` holding ``day``."""
    if frequency == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if frequency == "quarterly":
        first_month = (day.month - 1) // 3 * 3 + 1
        start = date(day.year, first_month, 1)
        last_month = first_month + 2
        return start, date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])
    start = day.replace(day=1)
    return start, day.replace(day=calendar.monthrange(day.year, day.month)[1])


def lock_date_for(frequency, billing_day, window_days, period_end):
    """Statement (lock) date D of a period ending on ``period_end``.

    D is the billing day following the period (day ``billing_day`` of the next month for
    monthly/quarterly billing, the next weekday ``billing_day`` (1 = Monday) for weekly
    billing), but never earlier than the end of a full control window that opens the day after
    the period: the counterparty always sees a complete period during the whole window.
    """
    after = period_end + timedelta(days=1)
    if frequency == "weekly":
        target = after + timedelta(days=(billing_day - after.isoweekday()) % 7)
    else:
        target = after.replace(day=min(max(billing_day, 1), 28))
    return max(target, after + timedelta(days=window_days))
