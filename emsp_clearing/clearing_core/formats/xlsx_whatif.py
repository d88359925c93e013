"""XLSX of a what-if simulation (pure: no Odoo import).

``build_whatif_xlsx(rows, meta=None, labels=None, currency_digits=2) -> bytes`` writes one line
per (month, component) -- sessions, current amount, simulated amount, difference -- and a totals
line per component. ``rows`` are plain dicts, in the order to print::

    {"month": "2026-03", "component": str, "sessions": int,
     "current": Decimal, "simulated": Decimal, "difference": Decimal}

The workbook is written in xlsxwriter's ``constant_memory`` mode (row by row, each row flushed
to a temporary file), so its size does not grow the process memory.
"""

import os
import tempfile
from decimal import Decimal

import xlsxwriter

COLUMNS = (
    ("month", "Month"),
    ("component", "Component"),
    ("sessions", "Sessions"),
    ("current", "Current amount"),
    ("simulated", "Simulated amount"),
    ("difference", "Difference"),
)
AMOUNTS = ("current", "simulated", "difference")


def build_whatif_xlsx(rows, meta=None, labels=None, currency_digits=2):
    """XLSX file content (bytes); ``rows`` as in the module docstring; ``meta`` ``(label,
    value)`` pairs printed above the table; ``labels`` translated headers and the ``total``
    label."""
    labels = labels or {}
    handle, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    try:
        workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
        sheet = workbook.add_worksheet("What-if")
        bold = workbook.add_format({"bold": True})
        money_format = "#,##0.%s" % ("0" * currency_digits) if currency_digits else "#,##0"
        money = workbook.add_format({"num_format": money_format})
        money_bold = workbook.add_format({"num_format": money_format, "bold": True})
        row_index = 0
        for label, value in meta or ():
            sheet.write_string(row_index, 0, str(label), bold)
            sheet.write_string(row_index, 1, str(value))
            row_index += 1
        if meta:
            row_index += 1
        for col, (key, default) in enumerate(COLUMNS):
            sheet.write_string(row_index, col, labels.get(key, default), bold)
        row_index += 1
        totals = {}
        for row in rows:
            sheet.write_string(row_index, 0, row["month"])
            sheet.write_string(row_index, 1, row["component"])
            sheet.write_number(row_index, 2, row["sessions"])
            for col, key in enumerate(AMOUNTS, start=3):
                sheet.write_number(row_index, col, float(row[key]), money)
            total = totals.setdefault(row["component"], {
                "sessions": 0, **{key: Decimal(0) for key in AMOUNTS}})
            total["sessions"] += row["sessions"]
            for key in AMOUNTS:
                total[key] += Decimal(row[key])
            row_index += 1
        for component, total in totals.items():
            sheet.write_string(row_index, 0, labels.get("total", "Total"), bold)
            sheet.write_string(row_index, 1, component, bold)
            sheet.write_number(row_index, 2, total["sessions"], bold)
            for col, key in enumerate(AMOUNTS, start=3):
                sheet.write_number(row_index, col, float(total[key]), money_bold)
            row_index += 1
        workbook.close()
        with open(path, "rb") as handle_in:
            return handle_in.read()
    finally:
        os.unlink(path)
