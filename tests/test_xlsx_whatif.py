"""The what-if XLSX (pure writer): rows, totals per component, read back with openpyxl."""

import io
from decimal import Decimal

import openpyxl

from clearing_core.formats.xlsx_whatif import build_whatif_xlsx


def test_rows_and_totals_per_component():
    rows = [
        {"month": "2026-02", "component": "Energy", "sessions": 3,
         "current": Decimal("9.10"), "simulated": Decimal("12.20"), "difference": Decimal("3.10")},
        {"month": "2026-02", "component": "Untaxed", "sessions": 3,
         "current": Decimal("10.10"), "simulated": Decimal("13.20"), "difference": Decimal("3.10")},
        {"month": "2026-01", "component": "Energy", "sessions": 2,
         "current": Decimal("0.20"), "simulated": Decimal("0.10"), "difference": Decimal("-0.10")},
        {"month": "2026-01", "component": "Untaxed", "sessions": 2,
         "current": Decimal("1.20"), "simulated": Decimal("1.10"), "difference": Decimal("-0.10")},
    ]
    content = build_whatif_xlsx(rows, meta=[("Contract", "C-1")], labels={"total": "Σ"})
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][:2] == ("Contract", "C-1")
    header = values.index(("Month", "Component", "Sessions", "Current amount",
                           "Simulated amount", "Difference"))
    body = values[header + 1:]
    assert body[0] == ("2026-02", "Energy", 3, 9.1, 12.2, 3.1)
    totals = {row[1]: row for row in body if row[0] == "Σ"}
    assert totals["Energy"][2:] == (5, 9.3, 12.3, 3.0)
    assert totals["Untaxed"][2:] == (5, 11.3, 14.3, 3.0)
    assert len(body) == 6


def test_empty_simulation():
    sheet = openpyxl.load_workbook(io.BytesIO(build_whatif_xlsx([]))).active
    assert list(sheet.iter_rows(values_only=True)) == [
        ("Month", "Component", "Sessions", "Current amount", "Simulated amount", "Difference")]
