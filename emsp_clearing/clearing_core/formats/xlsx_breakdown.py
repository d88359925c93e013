"""Per-session XLSX breakdown of a clearing period or of its invoice (pure: no Odoo import).

``build_breakdown_xlsx(rows, meta=None, labels=None, currency_digits=2, expected=None,
stated_tax_names=()) -> bytes`` writes one line per session and a totals line, in xlsxwriter's constant-memory mode (each row
goes to disk as it is written: a 100k-session sheet costs no more memory than a 10-session one;
``rows`` may be a generator). ``rows`` are plain dicts::

    {"start", "end": datetime (naive, local time of the location),
     "evse": str, "session": str, "cdr": str,
     "kwh", "duration_hours", "parking_hours": Decimal | float,
     "tariff": str,                       # applied contract tariff (reference)
     "grid": str,                         # the price grid: the contract's, or a fleet's
     "amount_energy", "amount_time", "amount_parking", "amount_fixed", "amount_reservation",
     "amount_adjustment",                 # min/max session price adjustment
     "amount_untaxed", "amount_tax", "amount_total": Decimal | float,
     "late": str, "dispute": str,         # printed as given ("" when none)
     "stated_taxes": {name: amount}}      # optional: the taxes the sender stated (OCPI 2.3.0)

The date column is the local date of ``start``. Missing amounts count as 0. ``meta`` (optional)
is printed above the table: ``(label, value)`` pairs. ``labels`` (optional) maps the keys of
``COLUMNS`` (and ``"total"``) to translated headers. Totals are written as values (a reader that
does not evaluate formulas, e.g. openpyxl, sees them) with the SUM formula. ``expected``
(optional) maps total keys to the amounts the sheet must add up to (the invoice's): a
difference raises ``ValueError`` -- the sheet never disagrees silently with its invoice.
``stated_tax_names`` (optional) adds one money column per tax name the senders stated (OCPI
2.3.0 ``TaxAmount.name``), after the amounts, totalled too; its header is ``labels
["stated_tax"] % name`` (default "Stated tax: <name>"). The names must be known before the
first row (constant-memory mode writes the header first): the caller reads them beforehand.

``ProRata(total, base, digits)`` shares an amount (an invoice's VAT) over the sessions in
proportion to their untaxed amounts, streaming, in cents that add up exactly to the total.
"""

import os
import tempfile
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import xlsxwriter

# (key, default header, kind): kind "date", "datetime", "text", "qty3", "qty4" or "money"
COLUMNS = (
    ("date", "Date", "date"),
    ("start", "Start (local)", "datetime"),
    ("end", "End (local)", "datetime"),
    ("evse", "Charger / EVSE", "text"),
    ("session", "Session", "text"),
    ("cdr", "CDR", "text"),
    ("kwh", "Energy (kWh)", "qty3"),
    ("duration_hours", "Duration (h)", "qty4"),
    ("parking_hours", "Parking (h)", "qty4"),
    ("tariff", "Applied tariff", "text"),
    ("grid", "Price grid", "text"),
    ("amount_energy", "Energy", "money"),
    ("amount_time", "Charging time", "money"),
    ("amount_parking", "Parking", "money"),
    ("amount_fixed", "Session fee", "money"),
    ("amount_reservation", "Reservation", "money"),
    ("amount_adjustment", "Min/max adjustment", "money"),
    ("amount_untaxed", "Excl. VAT", "money"),
    ("amount_tax", "VAT", "money"),
    ("amount_total", "Incl. VAT", "money"),
    ("late", "Late", "text"),
    ("dispute", "Dispute", "text"),
)
SUM_KINDS = ("qty3", "qty4", "money")
SUM_COLUMNS = tuple(key for key, _label, kind in COLUMNS if kind in SUM_KINDS)
WIDTHS = {"date": 11, "datetime": 16, "text": 18, "qty3": 12, "qty4": 11, "money": 12}


def to_decimal(value):
    """Decimal of an amount or quantity (floats by their shortest repr); None/False are 0."""
    if value is None or value is False:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


class ProRata:
    """Shares ``total`` over parts in proportion to their weights, summing to ``base``.

    Each share is the difference of the rounded cumulative shares, so the shares add up to
    ``total`` exactly once the weights added up to ``base`` (and each is within one unit of the
    last digit of its exact proportional share). Constant memory: parts are given one by one.
    """

    def __init__(self, total, base, digits=2):
        self.total = to_decimal(total)
        self.base = to_decimal(base)
        self.quantum = Decimal(1).scaleb(-digits)
        self.cumulated = Decimal(0)
        self.given = Decimal(0)
        if not self.base and self.total:
            raise ValueError("cannot share %s over parts that add up to 0" % self.total)

    def share(self, weight):
        if not self.base:
            return Decimal(0)
        self.cumulated += to_decimal(weight)
        upto = (self.total * self.cumulated / self.base).quantize(
            self.quantum, rounding=ROUND_HALF_UP)
        share = upto - self.given
        self.given = upto
        return share


STATED_TAX = "stated_tax"


def breakdown_columns(stated_tax_names=(), labels=None):
    """``(key, header, kind)`` of the sheet: ``COLUMNS`` then one money column per stated tax
    name (key ``("stated_tax", name)``)."""
    labels = labels or {}
    header = labels.get(STATED_TAX) or "Stated tax: %s"
    if "%s" not in header:  # a translation that lost its placeholder still names the tax
        header += " %s"
    return tuple((key, labels.get(key, default), kind) for key, default, kind in COLUMNS) + tuple(
        ((STATED_TAX, name), header % name, "money") for name in stated_tax_names)


def build_breakdown_xlsx(rows, meta=None, labels=None, currency_digits=2, expected=None,
                         stated_tax_names=()):
    """XLSX file content (bytes) with one line per session and a totals line."""
    labels = labels or {}
    handle, path = tempfile.mkstemp(suffix=".xlsx", prefix="clearing-breakdown-")
    os.close(handle)
    try:
        book = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tempfile.gettempdir()})
        _write_sheet(book, rows, meta, labels, currency_digits, expected,
                     breakdown_columns(stated_tax_names, labels))
        book.close()
        with open(path, "rb") as stream:
            return stream.read()
    finally:
        os.unlink(path)


def _write_sheet(book, rows, meta, labels, currency_digits, expected, columns):
    sheet = book.add_worksheet("Sessions")
    bold = book.add_format({"bold": True})
    head = book.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"})
    money = "#,##0." + "0" * currency_digits if currency_digits else "#,##0"
    numbers = {"qty3": "#,##0.000", "qty4": "#,##0.0000", "money": money}
    fmts = {kind: book.add_format({"num_format": fmt}) for kind, fmt in numbers.items()}
    fmts["date"] = book.add_format({"num_format": "yyyy-mm-dd"})
    fmts["datetime"] = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    total_fmts = {kind: book.add_format({"num_format": fmt, "bold": True, "top": 1})
                  for kind, fmt in numbers.items()}
    for col, (_key, _label, kind) in enumerate(columns):
        sheet.set_column(col, col, WIDTHS[kind])

    row_index = 0
    for label, value in meta or ():
        sheet.write_string(row_index, 0, str(label), bold)
        sheet.write_string(row_index, 3, "" if value is None or value is False else str(value))
        row_index += 1
    if meta:
        row_index += 1
    header_row = row_index
    sheet.freeze_panes(header_row + 1, 0)
    for col, (_key, header, _kind) in enumerate(columns):
        sheet.write_string(header_row, col, header, head)
    row_index += 1
    first_data = row_index
    totals = {key: Decimal(0) for key, _header, kind in columns if kind in SUM_KINDS}
    write_number, write_string, write_datetime = (
        sheet.write_number, sheet.write_string, sheet.write_datetime)
    for row in rows:
        start = row.get("start")
        stated = row.get("stated_taxes") or {}
        for col, (key, _header, kind) in enumerate(columns):
            if kind in SUM_KINDS:
                number = to_decimal(stated.get(key[1]) if isinstance(key, tuple)
                                    else row.get(key))
                totals[key] += number
                write_number(row_index, col, float(number), fmts[kind])
            elif kind == "text":
                value = row.get(key)
                if value not in (None, False, ""):
                    write_string(row_index, col, str(value))
            else:
                value = start if key == "date" else row.get(key)
                if isinstance(value, datetime):
                    value = value.replace(tzinfo=None)
                    if key == "date":
                        value = datetime(value.year, value.month, value.day)
                    write_datetime(row_index, col, value, fmts[kind])
                elif isinstance(value, date):
                    write_datetime(row_index, col, datetime(value.year, value.month, value.day),
                                   fmts[kind])
        row_index += 1

    for key, amount in (expected or {}).items():
        if totals[key] != to_decimal(amount):
            raise ValueError(
                "breakdown total %s is %s, the invoice says %s" % (key, totals[key], amount))
    sheet.write_string(row_index, 0, labels.get("total", "Total"), bold)
    for col, (key, _header, kind) in enumerate(columns):
        if kind not in SUM_KINDS:
            continue
        if row_index == first_data:  # no session: nothing to sum
            sheet.write_number(row_index, col, 0, total_fmts[kind])
            continue
        letter = xlsxwriter.utility.xl_col_to_name(col)
        formula = "=SUM(%s%d:%s%d)" % (letter, first_data + 1, letter, row_index)
        sheet.write_formula(row_index, col, formula, total_fmts[kind], float(totals[key]))
    return totals
