"""CSV import -> OCPI CDR dicts: the documented header, row/column errors, core validation."""

import json
import os

import pytest

from clearing_core import ocpi
from clearing_core.formats import cdr_csv
from clearing_core.errors import OcpiValidationError

ROW = {
    "country_code": "BE", "party_id": "BEC", "id": "12345",
    "start_date_time": "2015-06-29T21:39:09Z", "end_date_time": "2015-06-29T23:37:32Z",
    "session_id": "", "token_uid": "012345678", "token_type": "RFID",
    "token_contract_id": "DE8ACC12E46L89", "token_country_code": "DE", "token_party_id": "TNM",
    "auth_method": "WHITELIST", "location_id": "LOC1", "location_name": "Gent Zuid",
    "location_address": "F.Rooseveltlaan 3A", "location_city": "Gent",
    "location_postal_code": "9000", "location_country": "BEL",
    "location_latitude": "3.729944", "location_longitude": "51.047599", "evse_uid": "3256",
    "evse_id": "BE*BEC*E041503003", "connector_id": "1", "connector_standard": "IEC_62196_T2",
    "connector_format": "SOCKET", "connector_power_type": "AC_1_PHASE", "currency": "EUR",
    "total_cost_excl_vat": "4.00", "total_cost_incl_vat": "4.40", "total_energy": "15.342",
    "total_time": "1.973", "total_time_cost_excl_vat": "4.00", "total_time_cost_incl_vat": "4.40",
    "tariff_id": "12", "last_updated": "2015-06-29T22:01:13Z",
}


def make_csv(rows, delimiter=",", header=None):
    header = header or list(rows[0].keys())
    lines = [delimiter.join(header)]
    for r in rows:
        lines.append(delimiter.join('"%s"' % str(r.get(h, "")).replace('"', '""') for h in header))
    return "\n".join(lines) + "\n"


def test_documented_header_lists_every_column():
    doc = cdr_csv.__doc__
    for col in cdr_csv.COLUMNS:
        assert col in doc, col
    assert cdr_csv.template_header().split(",")[:3] == ["country_code", "party_id", "id"]


def test_row_becomes_valid_ocpi_cdr_like_spec_example():
    cdrs, errors = cdr_csv.read_cdrs(make_csv([ROW]))
    assert errors == []
    (rownum, cdr), = cdrs
    assert rownum == 2
    cdr_obj = ocpi.parse_cdr(cdr)  # same strict validation as OCPI input
    assert cdr_obj.id == "12345" and cdr_obj.cdr_token.uid == "012345678"
    assert cdr["total_cost"] == {"excl_vat": 4.0, "incl_vat": 4.4}
    assert cdr["total_energy"] == 15.342 and cdr["total_time"] == 1.973
    assert cdr["charging_periods"] == [{"start_date_time": "2015-06-29T21:39:09Z", "tariff_id": "12",
                                        "dimensions": [{"type": "ENERGY", "volume": 15.342},
                                                       {"type": "TIME", "volume": 1.973}]}]
    assert cdr["cdr_location"]["coordinates"] == {"latitude": "3.729944", "longitude": "51.047599"}
    assert "session_id" not in cdr  # empty optional cell = absent
    # same fields as the spec's example where the CSV carries them
    spec = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "ocpi", "examples", "cdr_example.json")
    if os.path.exists(spec):
        with open(spec) as f:
            ex = json.load(f)
        for k in ("country_code", "party_id", "id", "start_date_time", "end_date_time",
                  "cdr_token", "auth_method", "currency", "total_cost", "last_updated"):
            assert cdr[k] == ex[k], k
        assert {k: v for k, v in cdr["cdr_location"].items()} == ex["cdr_location"]


def test_semicolon_bom_bytes_and_any_column_order():
    header = list(reversed(list(ROW.keys())))
    data = ("\ufeff" + make_csv([ROW], delimiter=";", header=header)).encode("utf-8")
    cdrs, errors = cdr_csv.read_cdrs(data)
    assert errors == [] and cdrs[0][1]["id"] == "12345"


def test_last_updated_defaults_to_end_so_reimport_is_identical():
    r = dict(ROW, last_updated="")
    a, _ = cdr_csv.read_cdrs(make_csv([r]))
    b, _ = cdr_csv.read_cdrs(make_csv([r]))
    assert a[0][1]["last_updated"] == "2015-06-29T23:37:32Z"
    assert a == b


def test_header_errors_name_row_1_and_column():
    header = [h for h in ROW if h != "currency"] + ["colour"]
    cdrs, errors = cdr_csv.read_cdrs(make_csv([ROW], header=header))
    assert cdrs == []
    msgs = {str(e) for e in errors}
    assert "row 1, column currency: required column is missing" in msgs
    assert "row 1, column colour: unknown column (see the documented header)" in msgs
    cdrs, errors = cdr_csv.read_cdrs("")
    assert errors and errors[0].row == 1


def test_bad_cells_name_row_and_column_and_other_rows_land():
    rows = [dict(ROW, id="A1"),
            dict(ROW, id="A2", total_energy="12,5"),
            dict(ROW, id="A3", token_uid=""),
            dict(ROW, id="A4", credit="maybe"),
            dict(ROW, id="A5", charging_periods_json="[{", tariff_id=""),
            dict(ROW, id="A6", total_time_cost_excl_vat="", total_time_cost_incl_vat="1"),
            dict(ROW, id="A7")]
    header = list(ROW) + ["credit", "charging_periods_json"]
    cdrs, errors = cdr_csv.read_cdrs(make_csv(rows, header=header))
    assert [c["id"] for _, c in cdrs] == ["A1", "A7"]
    assert [r for r, _ in cdrs] == [2, 8]
    got = {(e.row, e.column) for e in errors}
    assert got == {(3, "total_energy"), (4, "token_uid"), (5, "credit"),
                   (6, "charging_periods_json"), (7, "total_time_cost_excl_vat")}
    e = next(e for e in errors if e.row == 3)
    assert str(e) == "row 3, column total_energy: must be a number with a '.' decimal point, got '12,5'"


def test_wrong_number_of_values():
    text = make_csv([ROW]) + "a,b,c\n"
    cdrs, errors = cdr_csv.read_cdrs(text)
    assert len(cdrs) == 1 and errors[0].row == 3 and errors[0].column is None
    assert str(errors[0]).startswith("row 3: 3 values for")


def test_blank_lines_skipped_but_counted():
    text = make_csv([ROW, dict(ROW, id="B")])
    lines = text.split("\n")
    text = "\n".join(lines[:2] + [""] + lines[2:])
    cdrs, errors = cdr_csv.read_cdrs(text)
    assert errors == [] and [r for r, _ in cdrs] == [2, 4]


def test_credit_and_charging_periods_json():
    periods = [{"start_date_time": "2015-06-29T21:39:09Z",
                "dimensions": [{"type": "ENERGY", "volume": 10}]},
               {"start_date_time": "2015-06-29T22:39:09Z",
                "dimensions": [{"type": "ENERGY", "volume": 5.342}]}]
    r = dict(ROW, id="12345-C", credit="true", credit_reference_id="12345",
             total_cost_excl_vat="-4.00", total_cost_incl_vat="-4.40", tariff_id="",
             charging_periods_json=json.dumps(periods))
    cdrs, errors = cdr_csv.read_cdrs(make_csv([r]))
    assert errors == []
    cdr = cdrs[0][1]
    assert cdr["credit"] is True and cdr["credit_reference_id"] == "12345"
    assert cdr["charging_periods"] == periods
    parsed = ocpi.parse_cdr(cdr)
    assert parsed.credit and parsed.credit_reference_id == "12345"


def test_core_validation_error_maps_back_to_column():
    cdrs, errors = cdr_csv.read_cdrs(make_csv([dict(ROW, token_type="BADGE")]))
    assert errors == []
    with pytest.raises(OcpiValidationError) as e:
        ocpi.parse_cdr(cdrs[0][1])
    assert e.value.path == "$.cdr_token.type"
    assert cdr_csv.column_for_path(e.value.path) == "token_type"
    assert cdr_csv.column_for_path("$.total_cost.incl_vat") == "total_cost_incl_vat"
    assert cdr_csv.column_for_path("$.cdr_location.coordinates.latitude") == "location_latitude"
    assert cdr_csv.column_for_path("$.charging_periods[0].dimensions[1].volume") == "charging_periods_json"
    assert cdr_csv.column_for_path("$.total_cost") == "total_cost_excl_vat"
    assert cdr_csv.column_for_path("$.nonsense") is None


def test_numbers_that_json_cannot_carry_exactly_are_refused():
    cdrs, errors = cdr_csv.read_cdrs(make_csv([dict(ROW, total_energy="1.00000000000000000001")]))
    assert cdrs == [] and errors[0].column == "total_energy"
    cdrs, errors = cdr_csv.read_cdrs(make_csv([dict(ROW, total_energy="NaN")]))
    assert errors[0].column == "total_energy"
