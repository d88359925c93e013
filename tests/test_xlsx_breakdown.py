"""clearing_core.xlsx_breakdown: read the file back with openpyxl and check lines and sums."""

import io
from datetime import datetime
from decimal import Decimal

import openpyxl

from clearing_core.formats.xlsx_breakdown import COLUMNS, build_breakdown_xlsx


def _rows():
    return [
        {"date": datetime(2026, 3, 1, 8, 30), "evse": "FR*TST*E0001", "session": "S1",
         "cdr": "C1", "kwh": Decimal("12.345"), "duration_hours": Decimal("1.5"),
         "tariff": "CT-0001", "amount_energy": Decimal("3.70"), "amount_time": Decimal("1.20"),
         "amount_parking": Decimal("0"), "amount_fixed": Decimal("0.50"),
         "amount_untaxed": Decimal("5.40"), "amount_tax": Decimal("1.08"),
         "amount_total": Decimal("6.48")},
        {"date": datetime(2026, 3, 2, 22, 5), "evse": "FR*TST*E0002", "session": "S2",
         "cdr": "C2", "kwh": 40.1, "duration_hours": 0.75, "tariff": "CT-0001",
         "amount_energy": 12.03, "amount_parking": 2.5, "amount_untaxed": 14.53,
         "amount_tax": 2.91, "amount_total": 17.44},
        {"date": "2026-03-03", "evse": "FR*TST*E0001", "session": "S3", "cdr": "C3",
         "kwh": 0, "duration_hours": 0, "tariff": "CT-0001", "amount_untaxed": Decimal("-1.00"),
         "amount_tax": Decimal("-0.20"), "amount_total": Decimal("-1.20")},
    ]


def _read(content):
    book = openpyxl.load_workbook(io.BytesIO(content), data_only=True)
    return book["Sessions"]


def test_lines_and_sums():
    content = build_breakdown_xlsx(_rows(), meta=[("Period", "2026-03"), ("Contract", "CT-0001")])
    sheet = _read(content)
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][:2] == ("Period", "2026-03")
    header = values[3]
    assert header[: len(COLUMNS)] == tuple(label for _k, label in COLUMNS)
    data = values[4:7]
    total = values[7]
    assert total[0] == "Total"
    assert data[0][0] == datetime(2026, 3, 1, 8, 30)
    assert data[0][1] == "FR*TST*E0001"
    assert data[2][0] == "2026-03-03"
    keys = [k for k, _l in COLUMNS]
    for key, expected in (("kwh", "52.445"), ("duration_hours", "2.25"),
                          ("amount_untaxed", "18.93"), ("amount_tax", "3.79"),
                          ("amount_total", "22.72"), ("amount_parking", "2.5")):
        col = keys.index(key)
        # the openpyxl reader sees the cached totals; they equal the sum of the lines
        assert round(sum(Decimal(str(r[col])) for r in data), 6) == Decimal(expected)
        assert round(Decimal(str(total[col])), 6) == Decimal(expected)
    # totals are formulas over the data lines
    formulas = openpyxl.load_workbook(io.BytesIO(content), data_only=False)["Sessions"]
    col_letter = openpyxl.utils.get_column_letter(keys.index("amount_total") + 1)
    assert formulas["%s8" % col_letter].value == "=SUM(%s5:%s7)" % (col_letter, col_letter)


def test_untaxed_plus_tax_is_total_per_line():
    sheet = _read(build_breakdown_xlsx(_rows()))
    keys = [k for k, _l in COLUMNS]
    for row in list(sheet.iter_rows(values_only=True))[1:4]:
        untaxed, tax, total = (Decimal(str(row[keys.index(k)]))
                               for k in ("amount_untaxed", "amount_tax", "amount_total"))
        assert round(untaxed + tax - total, 6) == 0


def test_empty_period_and_labels():
    sheet = _read(build_breakdown_xlsx([], labels={"date": "Date (heure locale)", "total": "Total général"}))
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "Date (heure locale)"
    assert values[1][0] == "Total général"
    keys = [k for k, _l in COLUMNS]
    assert values[1][keys.index("amount_total")] == 0
