"""Per-session XLSX breakdown of a clearing period (pure: no Odoo import).

``build_breakdown_xlsx(rows, meta=None, labels=None) -> bytes`` writes one line per session and a
totals line. ``rows`` are plain dicts::

    {"date": datetime | date | str,      # session end, local time of the location
     "evse": str, "session": str, "cdr": str,
     "kwh": Decimal | float, "duration_hours": Decimal | float,
     "tariff": str,                       # applied contract tariff (reference)
     "amount_energy", "amount_time", "amount_parking", "amount_fixed", "amount_other",
     "amount_untaxed", "amount_tax", "amount_total": Decimal | float}

Missing amounts count as 0.  ``meta`` (optional) is printed above the table: a list of
``(label, value)`` pairs.  ``labels`` (optional) maps the column keys of ``COLUMNS`` to
translated headers.  Totals are written as values *and* checked against the sum of the rows, so
a reader that does not evaluate formulas (e.g. openpyxl) sees them.
"""

import io
from datetime import date, datetime
from decimal import Decimal

import xlsxwriter

COLUMNS = (
    ("date", "Date"),
    ("evse", "Charger / EVSE"),
    ("session", "Session"),
    ("cdr", "CDR"),
    ("kwh", "Energy (kWh)"),
    ("duration_hours", "Duration (h)"),
    ("tariff", "Applied tariff"),
    ("amount_energy", "Energy"),
    ("amount_time", "Time"),
    ("amount_parking", "Parking"),
    ("amount_fixed", "Session fee"),
    ("amount_other", "Other"),
    ("amount_untaxed", "Untaxed"),
    ("amount_tax", "Tax"),
    ("amount_total", "Total"),
)
SUM_COLUMNS = (
    "kwh", "duration_hours", "amount_energy", "amount_time", "amount_parking", "amount_fixed",
    "amount_other", "amount_untaxed", "amount_tax", "amount_total",
)


def _number(value):
    if value is None or value is False:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def build_breakdown_xlsx(rows, meta=None, labels=None, currency_digits=2):
    """XLSX file content (bytes) with one line per session and a totals line."""
    labels = labels or {}
    output = io.BytesIO()
    book = xlsxwriter.Workbook(output, {"in_memory": True})
    sheet = book.add_worksheet("Sessions")
    bold = book.add_format({"bold": True})
    head = book.add_format({"bold": True, "bottom": 1, "text_wrap": True})
    money_fmt = "#,##0." + "0" * currency_digits if currency_digits else "#,##0"
    fmts = {
        "date": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "kwh": book.add_format({"num_format": "#,##0.000"}),
        "duration_hours": book.add_format({"num_format": "#,##0.0000"}),
        "money": book.add_format({"num_format": money_fmt}),
    }
    total_fmts = {
        "kwh": book.add_format({"num_format": "#,##0.000", "bold": True, "top": 1}),
        "duration_hours": book.add_format({"num_format": "#,##0.0000", "bold": True, "top": 1}),
        "money": book.add_format({"num_format": money_fmt, "bold": True, "top": 1}),
    }
    row_index = 0
    for label, value in meta or ():
        sheet.write_string(row_index, 0, str(label), bold)
        sheet.write_string(row_index, 1, "" if value is None else str(value))
        row_index += 1
    if meta:
        row_index += 1
    header_row = row_index
    for col, (key, default) in enumerate(COLUMNS):
        sheet.write_string(header_row, col, labels.get(key, default), head)
    totals = {key: Decimal(0) for key in SUM_COLUMNS}
    row_index += 1
    first_data = row_index
    for row in rows:
        for col, (key, _default) in enumerate(COLUMNS):
            value = row.get(key)
            if key == "date":
                if isinstance(value, datetime):
                    sheet.write_datetime(row_index, col, value.replace(tzinfo=None), fmts["date"])
                elif isinstance(value, date):
                    sheet.write_datetime(
                        row_index, col, datetime(value.year, value.month, value.day), fmts["date"]
                    )
                else:
                    sheet.write_string(row_index, col, "" if value is None else str(value))
            elif key in SUM_COLUMNS:
                number = _number(value)
                totals[key] += number
                fmt = fmts.get(key) or fmts["money"]
                sheet.write_number(row_index, col, float(number), fmt)
            else:
                sheet.write_string(row_index, col, "" if value in (None, False) else str(value))
        row_index += 1
    sheet.write_string(row_index, 0, labels.get("total", "Total"), bold)
    for col, (key, _default) in enumerate(COLUMNS):
        if key in SUM_COLUMNS:
            letter = xlsxwriter.utility.xl_col_to_name(col)
            fmt = total_fmts.get(key) or total_fmts["money"]
            if row_index == first_data:  # no session: nothing to sum
                sheet.write_number(row_index, col, 0, fmt)
                continue
            formula = "=SUM(%s%d:%s%d)" % (letter, first_data + 1, letter, row_index)
            sheet.write_formula(row_index, col, formula, fmt, float(totals[key]))
    widths = (17, 22, 18, 18, 12, 12, 18) + (11,) * 8
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    sheet.freeze_panes(header_row + 1, 0)
    book.close()
    return output.getvalue()
