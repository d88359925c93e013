"""json_text.loads, the one JSON decoder: the values json.loads gives, and the refusals."""

import csv
import glob
import io
import json
import os

import pytest

from clearing_core import json_text, ocpi
from clearing_core.formats import cdr_csv
from clearing_core.transport import envelope

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCPI_DIR = os.environ.get("OCPI_REFERENCE_DIR") or os.path.join(REPO_ROOT, os.pardir, "shared", "ocpi")

SAMPLES = [
    '{"a": [1, -2, 3.5, -0.0, 1e-7, 2E+3, 123456789012345678901234567890], "b": null}',
    '[true, false, null, "", "caf\\u00e9 \\"x\\" \\\\ \\n", {"": {}}]',
    '  {"total_cost": {"excl_vat": 0.1, "incl_vat": 0.12}, "total_energy": 15}  ',
    '{"k": 1, "k": 2}',  # a repeated key: the last one, as json.loads
    '"\\ud83d\\ude00 \u00e9"',  # a surrogate pair and a non-ASCII character
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_values_and_types_as_json_loads(text):
    got = json_text.loads(text)
    want = json.loads(text)
    assert got == want
    # same types too (1 stays int, 1.0 float, -0.0 keeps its sign)
    assert json.dumps(got) == json.dumps(want)
    assert json_text.loads(text.encode("utf-8")) == want


def test_ocpi_examples_decode_as_json_loads():
    files = sorted(glob.glob(os.path.join(OCPI_DIR, "examples*", "*.json")))
    if not files:
        pytest.skip(f"no OCPI examples under {OCPI_DIR}")
    for path in files:
        with open(path, "rb") as fh:
            raw = fh.read()
        got = json_text.loads(raw)
        assert json.dumps(got) == json.dumps(json.loads(raw)), path


def test_float_values_are_exact_and_validate_alike():
    cdr_part = '{"excl_vat": 26.52005, "incl_vat": 0.30000000000000004}'
    got = json_text.loads(cdr_part)
    assert got["excl_vat"] == 26.52005 and got["incl_vat"] == 0.1 + 0.2
    assert ocpi._check_price(got, 1) == ocpi._check_price(json.loads(cdr_part), 1)


@pytest.mark.parametrize("text,where", [
    ("", "truncated"),
    ("   ", "truncated"),
    ("{", "truncated"),
    ("[1,]", "trailing comma"),
    ("{'a': 1}", "malformed"),
    ('{"a": NaN}', "malformed"),
    ('{"a": Infinity}', "malformed"),
    ('{"a": 1e400}', "out of range"),
    ('{"a": 1} x', "trailing characters"),
])
def test_refusals_are_value_errors_saying_what(text, where):
    with pytest.raises(ValueError, match=where):
        json_text.loads(text)


def test_invalid_utf8_and_lone_surrogate_refused():
    with pytest.raises(ValueError):
        json_text.loads(b'{"a": "\xff"}')
    with pytest.raises(ValueError):
        json_text.loads('"\\ud800"')


def test_the_add_on_decodes_with_it():
    """The OCPI request bodies and the CSV's charging_periods_json go through json_text: a NaN
    that json.loads would accept is refused on both paths."""
    with pytest.raises(envelope.OcpiBadJson, match="not valid JSON"):
        envelope.parse_json_body(b'{"volume": NaN}')
    assert envelope.parse_json_body(b'{"a": [1.5]}') == {"a": [1.5]}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(cdr_csv.COLUMNS)
    writer.writerow(['[{"start_date_time": "2024-01-01T00:00:00Z", "dimensions": '
                     '[{"type": "ENERGY", "volume": NaN}]}]' if c == "charging_periods_json" else "x"
                     for c in cdr_csv.COLUMNS])
    _cdrs, errors = cdr_csv.read_cdrs(out.getvalue().encode())
    assert any(e.column == "charging_periods_json" and "not valid JSON" in e.message for e in errors)
