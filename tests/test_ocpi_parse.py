"""OCPI 2.2.1 parsing and validation (strict and lenient), error paths and messages."""

import copy
import glob
import json
import os
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from clearing_core import currencies, ocpi
from clearing_core.errors import OcpiValidationError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCPI_DIR = os.environ.get("OCPI_REFERENCE_DIR") or os.path.join(REPO_ROOT, os.pardir, "shared", "ocpi")
EXAMPLES_DIR = os.path.normpath(os.path.join(OCPI_DIR, "examples"))
UTC = timezone.utc

# A complete, valid OCPI 2.2.1 CDR (same content as the spec example, kept here so that the
# mutation tests do not depend on the shared folder).
BASE_CDR = {
    "country_code": "BE", "party_id": "BEC", "id": "12345",
    "start_date_time": "2015-06-29T21:39:09Z", "end_date_time": "2015-06-29T23:37:32Z",
    "cdr_token": {"country_code": "DE", "party_id": "TNM", "uid": "012345678", "type": "RFID",
                  "contract_id": "DE8ACC12E46L89"},
    "auth_method": "WHITELIST",
    "cdr_location": {
        "id": "LOC1", "name": "Gent Zuid", "address": "F.Rooseveltlaan 3A", "city": "Gent",
        "postal_code": "9000", "country": "BEL",
        "coordinates": {"latitude": "3.729944", "longitude": "51.047599"},
        "evse_uid": "3256", "evse_id": "BE*BEC*E041503003", "connector_id": "1",
        "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
        "connector_power_type": "AC_1_PHASE",
    },
    "currency": "EUR",
    "tariffs": [{
        "country_code": "BE", "party_id": "BEC", "id": "12", "currency": "EUR",
        "elements": [{"price_components": [{"type": "TIME", "price": 2.00, "vat": 10.0, "step_size": 300}]}],
        "last_updated": "2015-02-02T14:15:01Z",
    }],
    "charging_periods": [
        {"start_date_time": "2015-06-29T21:39:09Z",
         "dimensions": [{"type": "TIME", "volume": 1.0}, {"type": "ENERGY", "volume": 10}], "tariff_id": "12"},
        {"start_date_time": "2015-06-29T22:39:09Z",
         "dimensions": [{"type": "TIME", "volume": 0.973}, {"type": "MAX_CURRENT", "volume": 16}]},
    ],
    "total_cost": {"excl_vat": 4.00, "incl_vat": 4.40},
    "total_energy": 15.342, "total_time": 1.973,
    "total_time_cost": {"excl_vat": 4.00, "incl_vat": 4.40},
    "last_updated": "2015-06-29T22:01:13Z",
}

BASE_TARIFF = {
    "country_code": "DE", "party_id": "ALL", "id": "14", "currency": "EUR", "type": "REGULAR",
    "min_price": {"excl_vat": 0.5, "incl_vat": 0.55},
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 2.50, "vat": 15.0, "step_size": 1}]},
        {"price_components": [{"type": "TIME", "price": 1.00, "vat": 20.0, "step_size": 900}],
         "restrictions": {"max_current": 32.00, "start_time": "09:00", "end_time": "18:00",
                          "start_date": "2015-01-01", "end_date": "2016-01-01",
                          "day_of_week": ["MONDAY", "FRIDAY"], "min_kwh": 0, "max_kwh": 50,
                          "min_duration": 0, "max_duration": 7200, "min_power": 1, "max_power": 22}},
    ],
    "last_updated": "2015-06-29T20:39:09Z",
}


def _load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh, parse_float=Decimal)


def _mutated(base, path, value, delete=False):
    data = copy.deepcopy(base)
    node = data
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def _error(fn, data, strict=True):
    with pytest.raises(OcpiValidationError) as info:
        fn(data, strict=strict)
    return info.value


# --------------------------------------------------------------------------------------------
# Reference examples
# --------------------------------------------------------------------------------------------
def test_examples_folder_present():
    assert os.path.isdir(EXAMPLES_DIR), f"set OCPI_REFERENCE_DIR; {EXAMPLES_DIR} not found"


def test_spec_example_cdr_parses_strict():
    raw = _load(os.path.join(EXAMPLES_DIR, "cdr_example.json"))
    cdr = ocpi.parse_cdr(raw, strict=True)
    assert cdr.id == "12345" and cdr.country_code == "BE" and cdr.party_id == "BEC"
    assert cdr.start_date_time == datetime(2015, 6, 29, 21, 39, 9, tzinfo=UTC)
    assert cdr.end_date_time == datetime(2015, 6, 29, 23, 37, 32, tzinfo=UTC)
    assert cdr.cdr_token.uid == "012345678" and cdr.cdr_token.type == "RFID"
    assert cdr.cdr_token.contract_id == "DE8ACC12E46L89"
    assert cdr.auth_method == "WHITELIST"
    assert cdr.cdr_location.connector_standard == "IEC_62196_T2"
    assert cdr.cdr_location.coordinates.latitude == "3.729944"
    assert cdr.currency == "EUR"
    assert len(cdr.tariffs) == 1 and cdr.tariffs[0].elements[0].price_components[0].step_size == 300
    assert cdr.charging_periods[0].dimensions[0] == ocpi.CdrDimension("TIME", Decimal("1.973"))
    assert cdr.charging_periods[0].tariff_id == "12"
    assert cdr.total_cost == ocpi.Price(Decimal("4.00"), Decimal("4.40"))
    assert cdr.total_energy == Decimal("15.342") and cdr.total_time == Decimal("1.973")
    assert cdr.raw is raw


def _example_tariffs():
    return sorted(glob.glob(os.path.join(EXAMPLES_DIR, "tariff*.json")))


def test_example_tariff_files_found():
    assert len(_example_tariffs()) >= 19


@pytest.mark.parametrize("path", _example_tariffs(), ids=os.path.basename)
def test_example_tariffs_parse(path):
    raw = _load(path)
    lenient = ocpi.parse_tariff(raw, strict=False)
    assert lenient.elements
    if os.path.basename(path) == "tariff_put_example.json":
        # The spec's PUT example omits last_updated, which the Tariff object requires (card. 1).
        err = _error(ocpi.parse_tariff, raw)
        assert str(err) == "$.last_updated: required field is missing"
    else:
        strict = ocpi.parse_tariff(raw, strict=True)
        assert strict == lenient
        assert strict.last_updated is not None


def test_free_of_charge_flat_step_size_zero_allowed_but_not_for_time():
    flat = {"country_code": "DE", "party_id": "ALL", "id": "15", "currency": "EUR",
            "elements": [{"price_components": [{"type": "FLAT", "price": 0.00, "step_size": 0}]}],
            "last_updated": "2015-06-29T20:39:09Z"}
    assert ocpi.parse_tariff(flat).elements[0].price_components[0].step_size == 0
    time0 = _mutated(flat, ["elements", 0, "price_components", 0, "type"], "TIME")
    err = _error(ocpi.parse_tariff, time0)
    assert str(err) == "$.elements[0].price_components[0].step_size: must be >= 1, got 0"
    assert ocpi.parse_tariff(time0, strict=False).elements[0].price_components[0].step_size == 0


def test_base_documents_are_valid():
    cdr = ocpi.parse_cdr(copy.deepcopy(BASE_CDR))
    assert cdr.charging_periods[1].dimensions[1] == ocpi.CdrDimension("MAX_CURRENT", Decimal(16))
    # float input is converted through str(): 0.973 stays exactly 0.973
    assert cdr.charging_periods[1].dimensions[0].volume == Decimal("0.973")
    t = ocpi.parse_tariff(copy.deepcopy(BASE_TARIFF))
    r = t.elements[1].restrictions
    assert r.start_time == "09:00" and r.max_duration == 7200 and r.day_of_week == ("MONDAY", "FRIDAY")
    assert r.max_current == Decimal("32.0") and r.min_kwh == Decimal(0)
    assert t.min_price == ocpi.Price(Decimal("0.5"), Decimal("0.55"))
    assert t.elements[0].restrictions is None


# --------------------------------------------------------------------------------------------
# Bad CDRs: the error names the JSON path and says what is wrong.
# --------------------------------------------------------------------------------------------
BAD_CDRS = [
    (["cdr_token", "uid"], None, True, "$.cdr_token.uid: required field is missing"),
    (["charging_periods", 1, "dimensions", 0, "volume"], -3, False,
     "$.charging_periods[1].dimensions[0].volume: must be >= 0, got -3"),
    (["charging_periods", 0, "dimensions", 0, "volume"], "abc", False,
     '$.charging_periods[0].dimensions[0].volume: must be a number, got "abc"'),
    (["charging_periods", 0, "dimensions", 1, "volume"], True, False,
     "$.charging_periods[0].dimensions[1].volume: must be a number, got true"),
    (["charging_periods", 0, "dimensions", 0, "type"], "VOLTAGE", False,
     '$.charging_periods[0].dimensions[0].type: must be a valid CdrDimensionType, got "VOLTAGE"'),
    (["charging_periods", 0, "dimensions", 0, "type"], "POWER", False,
     "$.charging_periods[0].dimensions[0].type: POWER is a Session-only dimension and SHALL NOT be used in a CDR"),
    (["charging_periods", 1, "dimensions", 1, "type"], "TIME", False,
     "$.charging_periods[1].dimensions[1].type: duplicate dimension TIME in the same charging period"),
    (["charging_periods"], [], False, "$.charging_periods: must contain at least one element"),
    (["charging_periods", 1, "start_date_time"], "2015-06-29T21:00:00Z", False,
     "$.charging_periods[1].start_date_time: must not be before the start of charging_periods[0] "
     "(periods must be in chronological order)"),
    (["charging_periods", 0, "start_date_time"], "2015-06-29T21:00:00Z", False,
     "$.charging_periods[0].start_date_time: must not be before the CDR start_date_time"),
    (["charging_periods", 1, "start_date_time"], "2015-06-30T00:00:00Z", False,
     "$.charging_periods[1].start_date_time: must not be after the CDR end_date_time"),
    (["charging_periods", 0, "dimensions"], None, True,
     "$.charging_periods[0].dimensions: required field is missing"),
    (["currency"], "EUX", False, '$.currency: must be a known ISO 4217 currency code, got "EUX"'),
    (["currency"], "eur", False, '$.currency: must be a known ISO 4217 currency code, got "eur"'),
    (["country_code"], "BEL", False, "$.country_code: must be at most 2 characters, got 3"),
    (["country_code"], "B1", False,
     '$.country_code: must be an ISO 3166-1 alpha-2 country code (2 letters), got "B1"'),
    (["party_id"], "BE", False, '$.party_id: must be a 3-character party id (letters/digits), got "BE"'),
    (["party_id"], None, True, "$.party_id: required field is missing"),
    (["auth_method"], "PIN", False, '$.auth_method: must be a valid AuthMethod, got "PIN"'),
    (["cdr_token", "type"], "NFC", False, '$.cdr_token.type: must be a valid TokenType, got "NFC"'),
    (["cdr_location", "connector_standard"], "T2", False,
     '$.cdr_location.connector_standard: must be a valid ConnectorType, got "T2"'),
    (["cdr_location", "connector_format"], "PLUG", False,
     '$.cdr_location.connector_format: must be a valid ConnectorFormat, got "PLUG"'),
    (["cdr_location", "connector_power_type"], "AC", False,
     '$.cdr_location.connector_power_type: must be a valid PowerType, got "AC"'),
    (["cdr_location", "address"], "x" * 46, False, "$.cdr_location.address: must be at most 45 characters, got 46"),
    (["cdr_location", "country"], "BE", False,
     '$.cdr_location.country: must be an ISO 3166-1 alpha-3 country code, got "BE"'),
    (["cdr_location", "coordinates", "latitude"], "3.7", False,
     '$.cdr_location.coordinates.latitude: must match -?[0-9]{1,2}\\.[0-9]{5,7}, got "3.7"'),
    (["cdr_location", "evse_uid"], 3256, False, "$.cdr_location.evse_uid: must be a string, got 3256"),
    (["end_date_time"], "2015-06-29T20:00:00Z", False, "$.end_date_time: must not be before start_date_time"),
    (["start_date_time"], "2015-06-29 21:39:09", False,
     '$.start_date_time: must be an OCPI DateTime (RFC 3339, e.g. 2015-06-29T20:39:09Z), got "2015-06-29 21:39:09"'),
    (["start_date_time"], "2015-02-30T21:39:09Z", False,
     '$.start_date_time: is not a valid date-time, got "2015-02-30T21:39:09Z"'),
    (["start_date_time"], "2015-06-29T21:39:09+02:00", False,
     "$.start_date_time: must be in UTC ('Z' or no designator), got offset +02:00"),
    (["last_updated"], 1435611673, False, "$.last_updated: must be a date-time string, got 1435611673"),
    (["id"], "X" * 37, False, "$.id: must be at most 36 characters on a non-credit CDR, got 37"),
    (["id"], "é", False, '$.id: must be printable ASCII (CiString), got "é"'),
    (["remark"], "line1\nline2", False, '$.remark: must contain printable characters only, got "line1\\nline2"'),
    (["total_cost", "excl_vat"], -4, False, "$.total_cost.excl_vat: must be >= 0, got -4"),
    (["total_cost"], None, True, "$.total_cost: required field is missing"),
    (["total_energy"], "15.342", False, '$.total_energy: must be a number, got "15.342"'),
    (["total_time"], -1, False, "$.total_time: must be >= 0, got -1"),
    (["total_parking_cost"], [1], False, "$.total_parking_cost: must be an object, got an array"),
    (["credit"], "yes", False, '$.credit: must be a boolean, got "yes"'),
    (["tariffs", 0, "elements", 0, "price_components", 0, "step_size"], -1, False,
     "$.tariffs[0].elements[0].price_components[0].step_size: must be >= 1, got -1"),
    (["signed_data"], {"encoding_method": "OCMF", "signed_values": []}, False,
     "$.signed_data.signed_values: must contain at least one element"),
]


@pytest.mark.parametrize("path,value,delete,expected", BAD_CDRS, ids=[e[3].split(":")[0] + "|" + str(i) for i, e in enumerate(BAD_CDRS)])
def test_bad_cdr_names_path(path, value, delete, expected):
    err = _error(ocpi.parse_cdr, _mutated(BASE_CDR, path, value, delete))
    assert isinstance(err, ValueError)
    assert str(err) == expected
    assert str(err) == f"{err.path}: {err.message}"


def test_not_an_object():
    assert str(_error(ocpi.parse_cdr, [])) == "$: must be an object, got an array"
    assert str(_error(ocpi.parse_tariff, "x")) == '$: must be an object, got "x"'


def test_null_required_field():
    err = _error(ocpi.parse_cdr, _mutated(BASE_CDR, ["cdr_token", "uid"], None))
    assert str(err) == "$.cdr_token.uid: required field is null"


def test_credit_cdr_rules():
    credit = _mutated(BASE_CDR, ["credit"], True)
    credit["id"] = "12345-C"
    credit["credit_reference_id"] = "12345"
    credit["total_cost"] = {"excl_vat": -4.00, "incl_vat": -4.40}
    cdr = ocpi.parse_cdr(copy.deepcopy(credit))
    assert cdr.credit is True and cdr.total_cost.excl_vat == Decimal("-4.0")
    # the other totals keep their sign: only total_cost is negated on a credit CDR
    bad = _mutated(credit, ["total_time_cost", "excl_vat"], -4)
    assert str(_error(ocpi.parse_cdr, bad)) == "$.total_time_cost.excl_vat: must be >= 0, got -4"
    bad = _mutated(credit, ["total_cost", "incl_vat"], 4.4)
    assert str(_error(ocpi.parse_cdr, bad)) == "$.total_cost.incl_vat: must be <= 0 on a credit CDR, got 4.4"
    bad = _mutated(credit, ["credit_reference_id"], None, delete=True)
    assert str(_error(ocpi.parse_cdr, bad)) == "$.credit_reference_id: required field is missing (credit is true)"
    # a credit CDR id may be up to 39 characters
    assert ocpi.parse_cdr(_mutated(credit, ["id"], "X" * 39)).id == "X" * 39


@pytest.mark.parametrize("text,expected", [
    ("2015-06-29T20:39:09Z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
    ("2015-06-29T20:39:09", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
    ("2016-12-29T17:45:09.2Z", datetime(2016, 12, 29, 17, 45, 9, 200000, tzinfo=UTC)),
    ("2016-12-29T17:45:09.2", datetime(2016, 12, 29, 17, 45, 9, 200000, tzinfo=UTC)),
    ("2018-01-01T01:08:01.123Z", datetime(2018, 1, 1, 1, 8, 1, 123000, tzinfo=UTC)),
    ("2018-01-01T01:08:01.123", datetime(2018, 1, 1, 1, 8, 1, 123000, tzinfo=UTC)),
])
def test_spec_datetime_formats(text, expected):
    dt = ocpi.parse_datetime(text)
    assert dt == expected and dt.tzinfo is UTC


def test_datetime_offset_lenient_is_converted():
    assert ocpi.parse_datetime("2015-06-29T22:39:09+02:00", strict=False) == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)
    with pytest.raises(OcpiValidationError):
        ocpi.parse_datetime("2015-06-29T22:39:09+02:00")
    with pytest.raises(OcpiValidationError):
        ocpi.parse_datetime("2015-06-29T24:00:00Z")
    with pytest.raises(OcpiValidationError):
        ocpi.parse_datetime("2015-06-29t20:39:09z")


def test_lenient_cdr_requires_only_pricing_fields_but_type_checks_the_rest():
    minimal = {"start_date_time": "2022-01-13T14:30:00Z", "end_date_time": "2022-01-13T15:30:00Z",
               "currency": "EUR", "cdr_location": {"country": "NLD"},
               "charging_periods": [{"start_date_time": "2022-01-13T14:30:00Z",
                                     "dimensions": [{"type": "ENERGY", "volume": 20}]}]}
    cdr = ocpi.parse_cdr(copy.deepcopy(minimal), strict=False)
    assert cdr.id is None and cdr.cdr_token is None and cdr.total_cost is None
    assert str(_error(ocpi.parse_cdr, minimal)) == "$.id: required field is missing"
    for key in ("start_date_time", "end_date_time", "currency", "charging_periods"):
        err = _error(ocpi.parse_cdr, _mutated(minimal, [key], None, delete=True), strict=False)
        assert str(err) == f"${'.' + key}: required field is missing"
    err = _error(ocpi.parse_cdr, _mutated(minimal, ["cdr_token"], {"uid": 5}), strict=False)
    assert str(err) == "$.cdr_token.uid: must be a string, got 5"
    err = _error(ocpi.parse_cdr, _mutated(minimal, ["charging_periods", 0, "dimensions", 0, "volume"], "1"), strict=False)
    assert str(err) == '$.charging_periods[0].dimensions[0].volume: must be a number, got "1"'
    # Session-only dimensions are tolerated in lenient mode
    lenient = copy.deepcopy(minimal)
    lenient["charging_periods"][0]["dimensions"].append({"type": "POWER", "volume": -2})
    assert ocpi.parse_cdr(lenient, strict=False).charging_periods[0].dimensions[1].volume == Decimal(-2)


def test_nan_and_infinity_refused():
    for bad in (float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity")):
        err = _error(ocpi.parse_cdr, _mutated(BASE_CDR, ["total_energy"], bad))
        assert err.path == "$.total_energy" and err.message.startswith("must be a number")


def test_signed_dimensions_may_be_negative():
    data = _mutated(BASE_CDR, ["charging_periods", 1, "dimensions", 1], {"type": "MIN_POWER", "volume": -3.5})
    assert ocpi.parse_cdr(data).charging_periods[1].dimensions[1].volume == Decimal("-3.5")


# --------------------------------------------------------------------------------------------
# Bad tariffs
# --------------------------------------------------------------------------------------------
R = ["elements", 1, "restrictions"]
PC = ["elements", 1, "price_components", 0]
BAD_TARIFFS = [
    (R + ["start_time"], "24:00", '$.elements[1].restrictions.start_time: must be a time of day HH:MM (24h, leading zeros), got "24:00"'),
    (R + ["end_time"], "7:00", '$.elements[1].restrictions.end_time: must be a time of day HH:MM (24h, leading zeros), got "7:00"'),
    (R + ["start_date"], "2015-13-01", '$.elements[1].restrictions.start_date: must be a date YYYY-MM-DD, got "2015-13-01"'),
    (R + ["end_date"], "2015-02-30", '$.elements[1].restrictions.end_date: is not a valid calendar date, got "2015-02-30"'),
    (R + ["day_of_week"], ["MONDAY", "MON"], '$.elements[1].restrictions.day_of_week[1]: must be a valid DayOfWeek, got "MON"'),
    (R + ["min_kwh"], -1, "$.elements[1].restrictions.min_kwh: must be >= 0, got -1"),
    (R + ["max_power"], "22", '$.elements[1].restrictions.max_power: must be a number, got "22"'),
    (R + ["min_duration"], 60.5, "$.elements[1].restrictions.min_duration: must be an integer, got 60.5"),
    (R + ["max_duration"], -5, "$.elements[1].restrictions.max_duration: must be >= 0, got -5"),
    (R + ["reservation"], "YES", '$.elements[1].restrictions.reservation: must be a valid ReservationRestrictionType, got "YES"'),
    (R + ["reservation"], "RESERVATION", None),  # filled below: TIME is allowed, so add ENERGY
    (PC + ["type"], "PARKING", '$.elements[1].price_components[0].type: must be a valid TariffDimensionType, got "PARKING"'),
    (PC + ["price"], None, "$.elements[1].price_components[0].price: required field is missing"),
    (PC + ["price"], -0.1, "$.elements[1].price_components[0].price: must be >= 0, got -0.1"),
    (PC + ["vat"], -1, "$.elements[1].price_components[0].vat: must be >= 0, got -1"),
    (PC + ["step_size"], 1.5, "$.elements[1].price_components[0].step_size: must be an integer, got 1.5"),
    (PC + ["step_size"], 0, "$.elements[1].price_components[0].step_size: must be >= 1, got 0"),
    (["elements", 1, "price_components"], [], "$.elements[1].price_components: must contain at least one element"),
    (["elements"], [], "$.elements: must contain at least one element"),
    (["type"], "CHEAP", '$.type: must be a valid TariffType, got "CHEAP"'),
    (["currency"], "XXX", '$.currency: must be a known ISO 4217 currency code, got "XXX"'),
    (["id"], "x" * 37, "$.id: must be at most 36 characters, got 37"),
    (["min_price"], {"excl_vat": 20, "incl_vat": 22}, "$.min_price.excl_vat: must be <= max_price.excl_vat (10), got 20"),
    (["tariff_alt_text"], [{"language": "en"}], "$.tariff_alt_text[0].text: required field is missing"),
    (["end_date_time"], "2014-01-01T00:00:00Z", "$.end_date_time: must not be before start_date_time"),
]


@pytest.mark.parametrize("path,value,expected", [b for b in BAD_TARIFFS if b[2] is not None],
                         ids=lambda v: v if isinstance(v, str) and v.startswith("$") else None)
def test_bad_tariff_names_path(path, value, expected):
    base = copy.deepcopy(BASE_TARIFF)
    base["max_price"] = {"excl_vat": 10, "incl_vat": 11}
    base["start_date_time"] = "2015-01-01T00:00:00Z"
    err = _error(ocpi.parse_tariff, _mutated(base, path, value, delete=value is None))
    assert str(err) == expected


def test_reservation_element_only_flat_and_time():
    t = copy.deepcopy(BASE_TARIFF)
    t["elements"][1]["restrictions"] = {"reservation": "RESERVATION"}
    assert ocpi.parse_tariff(copy.deepcopy(t)).elements[1].restrictions.reservation == "RESERVATION"
    t["elements"][1]["price_components"].append({"type": "ENERGY", "price": 0.2, "step_size": 1})
    err = _error(ocpi.parse_tariff, t)
    assert str(err) == ('$.elements[1].price_components[1].type: a reservation element can only have '
                        'FLAT and TIME components, got "ENERGY"')


def test_lenient_tariff_requires_elements_only():
    t = ocpi.parse_tariff({"elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}]},
                          strict=False)
    assert t.currency is None and t.id is None
    assert str(_error(ocpi.parse_tariff, {"currency": "EUR"}, strict=False)) == "$.elements: required field is missing"
    err = _error(ocpi.parse_tariff, {"currency": 978, "elements": []}, strict=False)
    assert str(err) == "$.currency: must be a string (ISO 4217 code), got 978"


# --------------------------------------------------------------------------------------------
# Currencies
# --------------------------------------------------------------------------------------------
def test_currency_table_and_rounding():
    assert len(currencies.MINOR_UNITS) >= 150
    assert currencies.minor_units("EUR") == 2
    assert currencies.minor_units("JPY") == 0
    assert currencies.minor_units("KWD") == 3
    assert currencies.minor_units("CLF") == 4
    assert not currencies.is_known("XXX") and not currencies.is_known("HRK")
    with pytest.raises(KeyError):
        currencies.minor_units("EUX")
    assert currencies.round_money(Decimal("0.125"), "EUR") == Decimal("0.13")
    assert currencies.round_money(Decimal("-0.125"), "EUR") == Decimal("-0.13")
    assert currencies.round_money(Decimal("0.124999"), "EUR") == Decimal("0.12")
    assert currencies.round_money(2.5, "JPY") == Decimal("3")
    assert currencies.round_money(1.0005, "BHD") == Decimal("1.001")  # float through str(): no binary artefact
    assert str(currencies.round_money(7, "EUR")) == "7.00"


def test_repeated_location_and_tariff_are_revalidated_when_different():
    """Equal embedded tariffs are validated once; anything different is validated again (and a
    boolean where a 0/1 number was is still refused); locations are validated every time."""
    first = ocpi.parse_cdr(copy.deepcopy(BASE_CDR))
    again = ocpi.parse_cdr(copy.deepcopy(BASE_CDR))
    assert again.cdr_location == first.cdr_location and again.tariffs[0] is first.tariffs[0]
    bad = _mutated(BASE_CDR, ["cdr_location", "connector_format"], "PLUG")
    assert str(_error(ocpi.parse_cdr, bad)) == '$.cdr_location.connector_format: must be a valid ConnectorFormat, got "PLUG"'
    one = _mutated(BASE_CDR, ["tariffs", 0, "elements", 0, "price_components", 0, "step_size"], 1)
    ocpi.parse_cdr(copy.deepcopy(one))
    as_bool = _mutated(one, ["tariffs", 0, "elements", 0, "price_components", 0, "step_size"], True)
    assert as_bool == one  # Python's == cannot tell them apart...
    err = _error(ocpi.parse_cdr, as_bool)  # ...the parser still does
    assert str(err) == "$.tariffs[0].elements[0].price_components[0].step_size: must be an integer, got true"
    # lenient and strict results are kept apart
    lenient_loc = {"country": "NLD"}
    data = _mutated(BASE_CDR, ["cdr_location"], lenient_loc)
    assert ocpi.parse_cdr(copy.deepcopy(data), strict=False).cdr_location.country == "NLD"
    assert str(_error(ocpi.parse_cdr, data)) == "$.cdr_location.coordinates: required field is missing"


def test_bool_probe_with_extension_keys():
    # an unknown (extension) field holding 1 with an odd key: still part of the memo key, and
    # a later boolean there is noticed
    t = copy.deepcopy(BASE_TARIFF)
    t["elements"][0]["price_components"][0]["x-ext'); import os; ('"] = 1
    cdr = _mutated(BASE_CDR, ["tariffs"], [t])
    ocpi.parse_cdr(copy.deepcopy(cdr))
    again = ocpi.parse_cdr(copy.deepcopy(cdr))
    assert again.tariffs[0].elements[0].price_components[0].price == Decimal("2.5")
    flipped = copy.deepcopy(cdr)
    flipped["tariffs"][0]["elements"][0]["price_components"][0]["x-ext'); import os; ('"] = True
    # unknown fields are ignored by validation, so the bool is accepted -- after a real re-parse
    assert ocpi.parse_cdr(flipped).tariffs[0] is not again.tariffs[0]


def test_location_memo_is_not_fooled_by_later_mutation_of_the_input():
    data = copy.deepcopy(BASE_CDR)
    data["cdr_location"]["evse_uid"] = "MEMO-1"
    ocpi.parse_cdr(data)
    data["cdr_location"]["coordinates"]["latitude"] = "bad"   # the caller mutates its dict
    err = _error(ocpi.parse_cdr, data)
    assert str(err) == '$.cdr_location.coordinates.latitude: must match -?[0-9]{1,2}\\.[0-9]{5,7}, got "bad"'


def test_datetime_agrees_with_rfc3339_rules():
    """On random valid and invalid values, in both modes, the result (or the error) is what the
    RFC 3339 rules written out below give."""
    import random
    import re

    rng = random.Random(42)

    def reference(text, strict):
        # the general path, written out: regex (RFC 3339 digits are ASCII: DIGIT = %x30-39),
        # strict checks, fromisoformat, UTC
        m = re.match(r"(?a)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?\Z", text)
        if m is None:
            return "format"
        if strict and (len(text) > 25 or (m.group(1) not in (None, "Z"))):
            return "strict"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return "invalid"
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

    def parsed(text, strict):
        try:
            dt = ocpi.parse_datetime(text, "$.x", strict)
        except OcpiValidationError as e:
            msg = e.message
            return ("format" if "must be an OCPI DateTime" in msg else
                    "invalid" if "is not a valid date-time" in msg else "strict")
        assert dt.tzinfo is UTC
        return dt

    values = []
    for _ in range(3000):
        y, mo, d = rng.randint(1999, 2031), rng.randint(0, 13), rng.randint(0, 32)
        h, mi, s = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
        text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
        text += rng.choice(["Z", "Z", "Z", "", "+00:00", "+02:00", ".5Z", "z", " Z"])
        values.append(text)
    values += ["2024-01-01T00:00:00Z", "\u0662024-01-01T00:00:00Z", "2024-W01-1T00:00:00Z"]
    for text in values:
        for strict in (True, False):
            assert parsed(text, strict) == reference(text, strict), (text, strict)


def test_float_conversion_is_exact_for_zeros_ints_and_bools():
    """Floats are converted through their shortest repr: -0.0 and 0.0 give Decimal('-0.0') and
    Decimal('0.0'); 1, 1.0 and True are never confused."""
    ocpi._EMBEDDED_TARIFFS.clear()
    for first, second in ((0.0, -0.0), (-0.0, 0.0)):
        for value in (first, second, first, second):
            data = _mutated(BASE_CDR, ["charging_periods", 1, "dimensions", 1], {"type": "MIN_POWER", "volume": value})
            data["total_energy"] = value
            cdr = ocpi.parse_cdr(data)
            assert str(cdr.charging_periods[1].dimensions[1].volume) == repr(value)
            assert str(cdr.total_energy) == repr(value)
            assert str(ocpi.parse_tariff(_mutated(BASE_TARIFF, PC + ["price"], value)).elements[1]
                       .price_components[0].price) == repr(value)
    for value, text in ((1.0, "1.0"), (1, "1"), (1.0, "1.0"), (1, "1")):
        cdr = ocpi.parse_cdr(_mutated(BASE_CDR, ["charging_periods", 0, "dimensions", 0, "volume"], value))
        assert str(cdr.charging_periods[0].dimensions[0].volume) == text
        assert str(ocpi.parse_cdr(_mutated(BASE_CDR, ["total_time"], value)).total_time) == text
    err = _error(ocpi.parse_cdr, _mutated(BASE_CDR, ["charging_periods", 0, "dimensions", 0, "volume"], True))
    assert str(err) == "$.charging_periods[0].dimensions[0].volume: must be a number, got true"
    err = _error(ocpi.parse_cdr, _mutated(BASE_CDR, ["total_cost", "excl_vat"], True))
    assert str(err) == "$.total_cost.excl_vat: must be a number, got true"


@pytest.mark.parametrize("leaf,values", [
    (["elements", 0, "price_components", 0, "price"], [2.5, 2.50, Decimal("2.5"), Decimal("2.50"), 2.5]),
    (["elements", 0, "price_components", 0, "vat"], [15, 15.0, Decimal("15"), Decimal("15.0"), Decimal("1.5E+1"), 15]),
    (["elements", 0, "price_components", 0, "price"], [0.0, -0.0, 0, Decimal("0"), Decimal("-0"), Decimal("0.00"), 0.0]),
    (["elements", 0, "price_components", 0, "step_size"], [1, 1.0, True, Decimal(1), 1]),
    (["elements", 1, "restrictions", "min_kwh"], [0, 0.0, -0.0, False, Decimal("0.0"), 0]),
    (["min_price", "excl_vat"], [0.5, Decimal("0.5"), Decimal("0.50"), 0.5]),
])
def test_embedded_tariff_memo_tells_equal_numbers_apart(leaf, values):
    """The validated embedded tariff is reused only for the same numbers: 1, 1.0, true and
    Decimal('1.0') are == in Python but validate differently (type, Decimal exponent), and so do
    0.0 / -0.0 and Decimal('0') / Decimal('-0').  Every CDR gets what a fresh validation gives."""
    ocpi._EMBEDDED_TARIFFS.clear()
    for value in values + values[::-1]:
        tariff = copy.deepcopy(BASE_TARIFF)
        node = tariff
        for key in leaf[:-1]:
            node = node[key]
        node[leaf[-1]] = value
        cdr = _mutated(BASE_CDR, ["tariffs"], [tariff])
        try:
            expected = ocpi.parse_tariff(copy.deepcopy(tariff))
        except OcpiValidationError as exc:
            expected = exc
        try:
            got = ocpi.parse_cdr(copy.deepcopy(cdr)).tariffs[0]
        except OcpiValidationError as exc:
            assert isinstance(expected, OcpiValidationError), (value, exc)
            assert exc.message == expected.message and exc.path == "$.tariffs[0]" + expected.path[1:]
            continue
        assert not isinstance(expected, OcpiValidationError), (value, got)
        assert repr(got) == repr(expected), value  # repr shows the Decimal exponents and signs


def test_embedded_tariff_memo_with_extension_keys_tells_numbers_apart():
    t = copy.deepcopy(BASE_TARIFF)
    t["elements"][0]["price_components"][0]["x-ext'); import os; ('"] = 1
    ocpi._EMBEDDED_TARIFFS.clear()
    first = ocpi.parse_cdr(_mutated(BASE_CDR, ["tariffs"], [t])).tariffs[0]
    assert ocpi.parse_cdr(_mutated(BASE_CDR, ["tariffs"], [t])).tariffs[0] is first
    t["elements"][0]["price_components"][0]["x-ext'); import os; ('"] = 1.0
    assert ocpi.parse_cdr(_mutated(BASE_CDR, ["tariffs"], [t])).tariffs[0] is not first


_ODD_VALUES = [None, True, False, 0, 1, 1.0, -0.0, -1, -2.5, 1e300, float("nan"), "", "x", "é", "a\nb", "x" * 300,
               [], [1], {}, {"a": 1}, Decimal("-0"), Decimal("1.50"), Decimal("Infinity"), "2024-01-01T00:00:00Z",
               "2024-01-01T00:00:00+01:00", "2024-01-01T00:00:0aZ", "2024-13-01T00:00:00Z", "ENERGY", "TIME", "EUR",
               "RFID", 16, 10**30]


def _json_paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, path + (i,))


def _outcome(fn, data, strict):
    try:
        return "ok", repr(fn(data, strict=strict))  # repr: every field, Decimal exponents included
    except OcpiValidationError as exc:
        return "error", exc.path, exc.message


@pytest.mark.parametrize("seed", range(4))
def test_embedded_tariff_memo_does_not_change_outcomes(seed):
    """On valid CDRs and on CDRs with one to three random fields replaced or removed, in both
    modes, parse_cdr returns the same Cdr or raises the same first error (path and message)
    whether the embedded-tariff memo is empty or holds the tariff."""
    import random

    rng = random.Random(seed)
    bases = [BASE_CDR, _mutated(BASE_CDR, ["credit"], True), _mutated(BASE_CDR, ["total_parking_cost"], {"excl_vat": 1}),
             _mutated(BASE_CDR, ["signed_data"], {"encoding_method": "OCMF", "signed_values": [
                 {"nature": "START", "plain_data": "x", "signed_data": "y"}]})]
    bases[1]["credit_reference_id"] = "C1"
    checked = 0
    for n in range(400):
        data = copy.deepcopy(bases[n % len(bases)])
        paths = [p for p in _json_paths(data) if p]
        for _ in range(rng.randint(0 if n < 8 else 1, 3)):
            path = rng.choice(paths)
            node = data
            try:
                for key in path[:-1]:
                    node = node[key]
                if rng.random() < 0.2 and isinstance(node, dict):
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = copy.deepcopy(rng.choice(_ODD_VALUES))
            except (KeyError, IndexError, TypeError):
                pass
        for strict in (True, False):
            ocpi._EMBEDDED_TARIFFS.clear()
            want = _outcome(ocpi.parse_cdr, copy.deepcopy(data), strict)
            assert _outcome(ocpi.parse_cdr, copy.deepcopy(data), strict) == want, (data, strict, "warm")
            checked += want[0] == "ok"
    ocpi._EMBEDDED_TARIFFS.clear()
    assert checked > 25


def test_valid_codes_and_tariff_ids_do_not_let_invalid_ones_through():
    """Country codes, party ids and period tariff_ids: after many valid values, invalid values
    are still refused with their usual error."""
    for _ in range(2):
        assert ocpi.parse_cdr(copy.deepcopy(BASE_CDR)).cdr_token.party_id == "TNM"
        for path, value, expected in (
                (["country_code"], "B1", '$.country_code: must be an ISO 3166-1 alpha-2 country code (2 letters), got "B1"'),
                (["party_id"], "BE", '$.party_id: must be a 3-character party id (letters/digits), got "BE"'),
                (["cdr_token", "party_id"], "TN\u00c9", '$.cdr_token.party_id: must be printable ASCII (CiString), got "TN\u00c9"'),
                (["cdr_token", "country_code"], 49, "$.cdr_token.country_code: must be a string, got 49"),
                (["charging_periods", 0, "tariff_id"], "x" * 37,
                 "$.charging_periods[0].tariff_id: must be at most 36 characters, got 37"),
                (["charging_periods", 1, "tariff_id"], ["12"], "$.charging_periods[1].tariff_id: must be a string, got an array")):
            assert str(_error(ocpi.parse_cdr, _mutated(BASE_CDR, path, value))) == expected
    for i in range(1500):
        cdr = _mutated(BASE_CDR, ["charging_periods", 0, "tariff_id"], f"T{i}")
        cdr["party_id"] = f"{i % 1000:03d}"
        assert ocpi.parse_cdr(cdr).charging_periods[0].tariff_id == f"T{i}"
    assert str(_error(ocpi.parse_cdr, _mutated(BASE_CDR, ["party_id"], "B-C"))).startswith("$.party_id: must be a 3-character")
