"""scripts/ocpi-price, run as a subprocess with the current interpreter."""

import glob
import json
import os
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "scripts", "ocpi-price")
OCPI_DIR = os.environ.get("OCPI_REFERENCE_DIR") or os.path.join(REPO_ROOT, os.pardir, "shared", "ocpi")
VECTORS_DIR = os.path.normpath(os.path.join(OCPI_DIR, "pricing-vectors"))

KEYS = ["total_cost", "total_energy", "total_energy_cost", "total_time", "total_time_cost",
        "total_parking_time", "total_parking_cost", "total_fixed_cost", "total_reservation_cost"]

TARIFF = {"currency": "EUR", "elements": [
    {"price_components": [{"type": "TIME", "price": 1.20, "step_size": 60},
                          {"type": "PARKING_TIME", "price": 1.00, "vat": 20, "step_size": 900}],
     "restrictions": {"start_time": "00:00", "end_time": "17:00"}},
    {"price_components": [{"type": "TIME", "price": 2.40, "step_size": 60}]},
]}
CDR = {"start_date_time": "2022-01-13T15:30:00Z", "end_date_time": "2022-01-13T16:30:00Z",
       "currency": "EUR", "charging_periods": [
           {"start_date_time": "2022-01-13T15:30:00Z", "dimensions": [{"type": "TIME", "volume": 0.5}]},
           {"start_date_time": "2022-01-13T16:00:00Z", "dimensions": [{"type": "PARKING_TIME", "volume": 0.1}]}]}


def run(*args, cwd=None):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.fixture
def files(tmp_path):
    def write(name, data):
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
        return str(path)
    return write


def test_script_is_executable_and_has_no_machine_path():
    assert os.access(SCRIPT, os.X_OK)
    with open(SCRIPT, encoding="utf-8") as fh:
        text = fh.read()
    assert text.startswith("#!/usr/bin/env python3")
    assert "/work/" not in text


def test_prices_and_prints_exact_keys(files):
    proc = run(files("cdr.json", CDR), files("tariff.json", TARIFF))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout, parse_float=Decimal)
    assert list(out) == KEYS
    # 30 min x 1.20 = 0.60; parking 6 min -> 15 min x 1.00 = 0.25 (incl 0.30)
    assert out["total_cost"] == {"excl_vat": Decimal("0.85"), "incl_vat": Decimal("0.9")}
    assert out["total_time_cost"] == {"excl_vat": Decimal("0.6"), "incl_vat": Decimal("0.6")}
    assert out["total_parking_cost"] == {"excl_vat": Decimal("0.25"), "incl_vat": Decimal("0.3")}
    assert out["total_time"] == 1 and out["total_parking_time"] == Decimal("0.1") and out["total_energy"] == 0
    assert out["total_reservation_cost"] == {"excl_vat": 0, "incl_vat": 0}


def test_tz_option(files):
    # 15:30Z is 16:30 in Paris (winter): first element until 17:00 local; 16:00Z = 17:00 local
    cdr, tariff = files("cdr.json", CDR), files("tariff.json", TARIFF)
    utc = json.loads(run(cdr, tariff).stdout, parse_float=Decimal)
    paris = json.loads(run(cdr, tariff, "--tz", "Europe/Paris").stdout, parse_float=Decimal)
    assert utc["total_time_cost"]["excl_vat"] == Decimal("0.6")
    assert paris["total_time_cost"]["excl_vat"] == Decimal("0.6")
    assert utc["total_parking_cost"]["excl_vat"] == Decimal("0.25")
    assert paris["total_parking_cost"]["excl_vat"] == 0  # 17:00 Paris: no PARKING_TIME component
    helsinki = json.loads(run(cdr, tariff, "--tz", "Europe/Helsinki").stdout, parse_float=Decimal)
    assert helsinki["total_time_cost"]["excl_vat"] == Decimal("1.2")  # 17:30 EET -> 2.40/h


def test_numbers_have_at_most_4_decimals_and_no_float_artefacts(files):
    tariff = {"currency": "EUR", "elements": [{"price_components": [
        {"type": "ENERGY", "price": 0.1, "vat": 21, "step_size": 1},
        {"type": "TIME", "price": 0.7, "vat": 21, "step_size": 1}]}]}
    cdr = dict(CDR, charging_periods=[{"start_date_time": "2022-01-13T15:30:00Z",
                                        "dimensions": [{"type": "ENERGY", "volume": 0.3}, {"type": "TIME", "volume": 0.1}]}])
    proc = run(files("cdr.json", cdr), files("tariff.json", tariff))
    assert proc.returncode == 0, proc.stderr
    assert '"excl_vat": 0.1,' in proc.stdout          # 0.03 + 0.07, not 0.09999999999999999
    assert '"incl_vat": 0.121' in proc.stdout
    for token in proc.stdout.replace(",", " ").replace("}", " ").split():
        if token[0].isdigit():
            assert "e" not in token.lower()
            assert len(token.partition(".")[2]) <= 4, token


VECTOR_CDRS = sorted(glob.glob(os.path.join(VECTORS_DIR, "*", "cdr*.json")))


@pytest.mark.parametrize("cdr_path", VECTOR_CDRS[:4] + VECTOR_CDRS[-2:], ids=lambda p: os.path.relpath(p, VECTORS_DIR))
def test_vectors_through_cli(cdr_path):
    proc = run(cdr_path, os.path.join(os.path.dirname(cdr_path), "tariff.json"))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout, parse_float=Decimal)
    with open(cdr_path, encoding="utf-8") as fh:
        stated = json.load(fh, parse_float=Decimal)
    q = Decimal("0.0001")
    for key in ("total_energy", "total_time"):
        assert out[key] == Decimal(str(stated[key])).quantize(q, rounding=ROUND_HALF_UP)
    if "min_price" not in open(os.path.join(os.path.dirname(cdr_path), "tariff.json")).read():
        assert out["total_cost"]["excl_vat"] == Decimal(str(stated["total_cost"]["excl_vat"]))


def _error_line(proc):
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_volume_names_file_and_path(files, tmp_path):
    bad = json.loads(json.dumps(CDR))
    bad["charging_periods"][0]["dimensions"][0]["volume"] = "abc"
    files("cdr.json", bad)
    files("tariff.json", TARIFF)
    line = _error_line(run("cdr.json", "tariff.json", cwd=tmp_path))
    assert line == 'ocpi-price: cdr.json: $.charging_periods[0].dimensions[0].volume: must be a number, got "abc"'


def test_bad_tariff_names_tariff_file(files, tmp_path):
    bad = json.loads(json.dumps(TARIFF))
    bad["elements"][1]["restrictions"] = {"day_of_week": ["MONDAY", "FUNDAY"]}
    files("cdr.json", CDR)
    files("t.json", bad)
    line = _error_line(run("cdr.json", "t.json", cwd=tmp_path))
    assert line == 'ocpi-price: t.json: $.elements[1].restrictions.day_of_week[1]: must be a valid DayOfWeek, got "FUNDAY"'


def test_invalid_json_gives_line_and_column(files, tmp_path):
    files("cdr.json", '{\n  "currency": "EUR",\n  "charging_periods": [1,]\n}\n')
    files("tariff.json", TARIFF)
    line = _error_line(run("cdr.json", "tariff.json", cwd=tmp_path))
    assert line.startswith("ocpi-price: cdr.json: invalid JSON at line 3, column 26: ")


def test_nan_literal_is_invalid_json(files, tmp_path):
    files("cdr.json", json.dumps(CDR).replace("0.5", "NaN"))
    files("tariff.json", TARIFF)
    line = _error_line(run("cdr.json", "tariff.json", cwd=tmp_path))
    assert line.startswith("ocpi-price: cdr.json: invalid JSON") and "NaN" in line


def test_unreadable_file(files, tmp_path):
    files("tariff.json", TARIFF)
    line = _error_line(run("missing.json", "tariff.json", cwd=tmp_path))
    assert line == "ocpi-price: missing.json: cannot read file: No such file or directory"
    line = _error_line(run(str(tmp_path), "tariff.json", cwd=tmp_path))
    assert line.startswith(f"ocpi-price: {tmp_path}: cannot read file: ")


def test_missing_required_field_and_wrong_top_level(files, tmp_path):
    cdr = dict(CDR)
    del cdr["currency"]
    files("cdr.json", cdr)
    files("list.json", "[]")
    files("tariff.json", TARIFF)
    assert _error_line(run("cdr.json", "tariff.json", cwd=tmp_path)) == "ocpi-price: cdr.json: $.currency: required field is missing"
    assert _error_line(run("list.json", "tariff.json", cwd=tmp_path)) == "ocpi-price: list.json: $: must be an object, got an array"


def test_currency_mismatch_and_bad_tz(files, tmp_path):
    files("cdr.json", dict(CDR, currency="CHF"))
    files("ok.json", CDR)
    files("tariff.json", TARIFF)
    assert _error_line(run("cdr.json", "tariff.json", cwd=tmp_path)) == \
        "ocpi-price: cdr.json: $.currency: CDR currency CHF differs from tariff currency EUR"
    assert _error_line(run("ok.json", "tariff.json", "--tz", "Nowhere/City", cwd=tmp_path)) == \
        "ocpi-price: --tz: unknown time zone 'Nowhere/City'"
