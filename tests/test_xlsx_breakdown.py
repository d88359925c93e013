"""clearing_core.xlsx_breakdown: read the file back with openpyxl and check lines and sums."""

import io
from datetime import datetime
from decimal import Decimal

import openpyxl
import pytest

from clearing_core.formats.xlsx_breakdown import COLUMNS, ProRata, build_breakdown_xlsx

KEYS = [key for key, _label, _kind in COLUMNS]


def _rows():
    return [
        {"start": datetime(2026, 3, 1, 7, 45), "end": datetime(2026, 3, 1, 8, 30),
         "evse": "FR*TST*E0001", "session": "S1", "cdr": "C1", "kwh": Decimal("12.345"),
         "duration_hours": Decimal("0.75"), "parking_hours": Decimal("0.1"),
         "tariff": "CT-0001", "amount_energy": Decimal("3.70"), "amount_time": Decimal("1.20"),
         "amount_parking": Decimal("0"), "amount_fixed": Decimal("0.50"),
         "amount_untaxed": Decimal("5.40"), "amount_tax": Decimal("1.08"),
         "amount_total": Decimal("6.48"), "dispute": "Rejected"},
        {"start": datetime(2026, 3, 2, 23, 50), "end": datetime(2026, 3, 3, 0, 35),
         "evse": "FR*TST*E0002", "session": "S2", "cdr": "C2", "kwh": 40.1,
         "duration_hours": 0.75, "tariff": "CT-0001", "amount_energy": 12.03,
         "amount_parking": 2.5, "amount_untaxed": 14.53, "amount_tax": 2.91,
         "amount_total": 17.44, "late": "Late"},
        {"start": datetime(2026, 3, 3, 10, 0), "end": datetime(2026, 3, 3, 11, 0),
         "evse": "FR*TST*E0001", "session": "S3", "cdr": "C3", "kwh": 0,
         "tariff": "CT-0001", "amount_adjustment": Decimal("-1.00"),
         "amount_untaxed": Decimal("-1.00"), "amount_tax": Decimal("-0.20"),
         "amount_total": Decimal("-1.20")},
    ]


def _read(content, data_only=True):
    return openpyxl.load_workbook(io.BytesIO(content), data_only=data_only)["Sessions"]


def test_lines_and_sums():
    content = build_breakdown_xlsx(_rows(), meta=[("Period", "2026-03"), ("Contract", "CT-0001")])
    values = list(_read(content).iter_rows(values_only=True))
    assert values[0][0] == "Period" and values[0][3] == "2026-03"
    header = values[3]
    assert header[: len(COLUMNS)] == tuple(label for _k, label, _kind in COLUMNS)
    data, total = values[4:7], values[7]
    assert total[0] == "Total"
    # date of the local start; start and end to the second
    assert data[1][KEYS.index("date")] == datetime(2026, 3, 2)
    assert data[1][KEYS.index("start")] == datetime(2026, 3, 2, 23, 50)
    assert data[1][KEYS.index("end")] == datetime(2026, 3, 3, 0, 35)
    assert data[0][KEYS.index("evse")] == "FR*TST*E0001"
    assert data[0][KEYS.index("dispute")] == "Rejected"
    assert data[1][KEYS.index("late")] == "Late"
    assert data[2][KEYS.index("dispute")] is None
    for key, expected in (("kwh", "52.445"), ("duration_hours", "1.5"),
                          ("parking_hours", "0.1"), ("amount_untaxed", "18.93"),
                          ("amount_tax", "3.79"), ("amount_total", "22.72"),
                          ("amount_parking", "2.5"), ("amount_adjustment", "-1")):
        col = KEYS.index(key)
        # the openpyxl reader sees the cached totals; they equal the sum of the lines
        assert round(sum(Decimal(str(r[col] or 0)) for r in data), 6) == Decimal(expected)
        assert round(Decimal(str(total[col])), 6) == Decimal(expected)
    # totals are formulas over the data lines
    letter = openpyxl.utils.get_column_letter(KEYS.index("amount_total") + 1)
    assert _read(content, data_only=False)["%s8" % letter].value == "=SUM(%s5:%s7)" % (
        letter, letter)


def test_rows_from_a_generator_and_expected_totals():
    content = build_breakdown_xlsx(
        (row for row in _rows()),
        expected={"amount_untaxed": Decimal("18.93"), "amount_total": Decimal("22.72")})
    assert len(list(_read(content).iter_rows(values_only=True))) == 5


def test_a_total_that_differs_from_the_invoice_raises():
    with pytest.raises(ValueError, match="amount_untaxed is 18.93, the invoice says 18.94"):
        build_breakdown_xlsx(_rows(), expected={"amount_untaxed": Decimal("18.94")})


def test_empty_period_and_labels():
    content = build_breakdown_xlsx([], labels={"date": "Date (heure locale)", "total": "Total général"})
    values = list(_read(content).iter_rows(values_only=True))
    assert values[0][0] == "Date (heure locale)"
    assert values[1][0] == "Total général"
    assert values[1][KEYS.index("amount_total")] == 0


def test_pro_rata_shares_add_up_to_the_total_exactly():
    weights = [Decimal("0.33")] * 7 + [Decimal("1.01"), Decimal("-0.40"), Decimal("12.345")]
    base = sum(weights)
    for total in (Decimal("2.79"), Decimal("0.01"), Decimal("-3.33"), Decimal("0")):
        shares = ProRata(total, base).share
        parts = [shares(w) for w in weights]
        assert sum(parts) == total
        for weight, part in zip(weights, parts):
            assert abs(part - total * weight / base) <= Decimal("0.01")
    with pytest.raises(ValueError):
        ProRata(Decimal("1"), Decimal("0"))


def test_price_grid_and_stated_tax_columns():
    """The grid that priced each session, and one column per tax name the senders stated (OCPI
    2.3.0), summed per name within a session and totalled."""
    rows = _rows()
    rows[0].update(grid="Contract grid", stated_taxes={"VAT": Decimal("1.08")})
    rows[1].update(grid="Fleet grid Taxis VIP",
                   stated_taxes={"VAT": Decimal("2.40"), "City tax": Decimal("0.51")})
    rows[2]["grid"] = "Contract grid"  # a 2.2.1 session: no stated tax
    content = build_breakdown_xlsx(rows, labels={"stated_tax": "Déclarée : %s"},
                                   stated_tax_names=["City tax", "VAT"])
    values = list(_read(content).iter_rows(values_only=True))
    header, data, total = values[0], values[1:4], values[4]
    assert header[len(COLUMNS):] == ("Déclarée : City tax", "Déclarée : VAT")
    assert header[KEYS.index("grid")] == "Price grid"
    assert [row[KEYS.index("grid")] for row in data] == [
        "Contract grid", "Fleet grid Taxis VIP", "Contract grid"]
    city, vat = len(COLUMNS), len(COLUMNS) + 1
    assert [row[vat] for row in data] == [1.08, 2.4, 0]
    assert [row[city] for row in data] == [0, 0.51, 0]
    assert total[vat] == pytest.approx(3.48) and total[city] == pytest.approx(0.51)
    formulas = list(_read(content, data_only=False).iter_rows(values_only=True))
    assert formulas[4][vat].startswith("=SUM(")


def test_without_stated_taxes_no_extra_column():
    content = build_breakdown_xlsx(_rows())
    header = next(_read(content).iter_rows(values_only=True))
    assert len(header) == len(COLUMNS)
