"""OCPI 2.3.0 beside 2.2.1 in the pure core: every 2.3.0 example parses, each required field
removed is refused naming its JSON path, the engine reproduces the 2.3.0 examples (tax_included,
PriceLimit, North-American tariffs), and the version conversions are lossless."""

import copy
import glob
import json
import os
from decimal import Decimal as D

import pytest

from clearing_core import ocpi, pricing
from clearing_core.errors import OcpiValidationError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCPI_DIR = os.environ.get("OCPI_REFERENCE_DIR") or os.path.join(REPO_ROOT, os.pardir, "shared", "ocpi")
EXAMPLES_DIR = os.path.normpath(os.path.join(OCPI_DIR, "examples-2.3.0"))
V230 = ocpi.V230


def _load(name):
    with open(os.path.join(EXAMPLES_DIR, name)) as f:
        return json.load(f, parse_float=D)


def _tariff_files():
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES_DIR, "tariff_*.json")))


# Required members (card. 1) per object of the 2.3.0 text: mod_tariffs.asciidoc, mod_cdrs.asciidoc,
# types.asciidoc.
_TARIFF = ("country_code", "party_id", "id", "currency", "elements", "tax_included", "last_updated")
_REQUIRED = {
    "tariff": _TARIFF,
    "embedded_tariff": tuple(k for k in _TARIFF if k != "tax_included"),  # see README
    "element": ("price_components",),
    "component": ("type", "price", "step_size"),
    "limit": ("before_taxes",),
    "display_text": ("language", "text"),
    "cdr": ("country_code", "party_id", "id", "start_date_time", "end_date_time", "cdr_token",
            "auth_method", "cdr_location", "currency", "charging_periods", "total_cost",
            "total_energy", "total_time", "last_updated"),
    "token": ("uid", "type", "contract_id", "country_code", "party_id"),
    "location": ("id", "address", "city", "country", "coordinates", "evse_uid", "evse_id",
                 "connector_id", "connector_standard", "connector_format", "connector_power_type"),
    "coordinates": ("latitude", "longitude"),
    "period": ("start_date_time", "dimensions"),
    "dimension": ("type", "volume"),
    "price": ("before_taxes",),
    "tax": ("name", "amount"),
}
_CHILDREN = {
    "tariff": {"elements": "element", "min_price": "limit", "max_price": "limit",
               "tariff_alt_text": "display_text"},
    "embedded_tariff": {"elements": "element", "min_price": "limit", "max_price": "limit",
                        "tariff_alt_text": "display_text"},
    "element": {"price_components": "component"},
    "cdr": {"cdr_token": "token", "cdr_location": "location", "tariffs": "embedded_tariff",
            "charging_periods": "period", "total_cost": "price", "total_fixed_cost": "price",
            "total_energy_cost": "price", "total_time_cost": "price",
            "total_parking_cost": "price", "total_reservation_cost": "price"},
    "location": {"coordinates": "coordinates"},
    "period": {"dimensions": "dimension"},
    "price": {"taxes": "tax"},
}


def _required_paths(kind, obj, path="$", keys=()):
    """(JSON path, key path) of every required member present in ``obj``."""
    for key in _REQUIRED.get(kind, ()):
        if key in obj:
            yield f"{path}.{key}", keys + (key,)
    for key, child in _CHILDREN.get(kind, {}).items():
        value = obj.get(key)
        if isinstance(value, dict):
            yield from _required_paths(child, value, f"{path}.{key}", keys + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _required_paths(child, item, f"{path}.{key}[{i}]", keys + (key, i))


def _without(obj, keys):
    out = copy.deepcopy(obj)
    target = out
    for k in keys[:-1]:
        target = target[k]
    del target[keys[-1]]
    return out


@pytest.mark.parametrize("name", _tariff_files())
def test_every_tariff_example_parses(name):
    data = _load(name)
    if name == "tariff_put_example.json":  # the PUT body omits last_updated, as in 2.2.1
        with pytest.raises(OcpiValidationError) as e:
            ocpi.parse_tariff(data, version=V230)
        assert e.value.path == "$.last_updated"
        tariff = ocpi.parse_tariff(data, strict=False, version=V230)
    else:
        tariff = ocpi.parse_tariff(data, version=V230)
    assert tariff.tax_included == data["tax_included"]
    assert len(tariff.elements) == len(data["elements"])


@pytest.mark.parametrize("name", [n for n in _tariff_files() if n != "tariff_put_example.json"])
def test_tariff_example_refuses_each_required_field_removed(name):
    data = _load(name)
    paths = list(_required_paths("tariff", data))
    assert "$.tax_included" in [p for p, _ in paths]
    for path, keys in paths:
        with pytest.raises(OcpiValidationError) as e:
            ocpi.parse_tariff(_without(data, keys), version=V230)
        assert e.value.path == path, (path, str(e.value))
        assert "required field is missing" in e.value.message


def test_cdr_example_parses_into_the_same_objects():
    data = _load("cdr_example.json")
    cdr = ocpi.parse_cdr(data, version=V230)
    tax = ocpi.TaxAmount("VAT", None, None, D("0.40"))
    assert cdr.total_cost == ocpi.Price(D("4.00"), D("4.40"), (tax,))
    assert cdr.total_time_cost == ocpi.Price(D("4.00"), D("4.40"), (tax,))
    # the embedded tariff of the spec's own example has no tax_included (see README)
    assert cdr.tariffs[0].tax_included is None
    assert ocpi.detect_cdr_version(data) == V230
    # the 2.2.1 parser refuses the 2.3.0 Price, naming the member
    with pytest.raises(OcpiValidationError) as e:
        ocpi.parse_cdr(data)
    assert e.value.path == "$.total_time_cost.excl_vat"


def test_cdr_example_refuses_each_required_field_removed():
    data = _load("cdr_example.json")
    paths = list(_required_paths("cdr", data))
    assert "$.total_cost.taxes[0].amount" in [p for p, _ in paths]
    assert len(paths) > 40
    for path, keys in paths:
        with pytest.raises(OcpiValidationError) as e:
            ocpi.parse_cdr(_without(data, keys), version=V230)
        assert e.value.path == path, (path, str(e.value))


def test_bad_tax_values_name_the_field():
    data = _load("cdr_example.json")
    bad = copy.deepcopy(data)
    bad["total_cost"]["taxes"][0]["amount"] = -1
    with pytest.raises(OcpiValidationError, match=r"^\$\.total_cost\.taxes\[0\]\.amount: must be >= 0"):
        ocpi.parse_cdr(bad, version=V230)
    bad = copy.deepcopy(data)
    bad["total_cost"]["taxes"] = {"name": "VAT"}
    with pytest.raises(OcpiValidationError, match=r"^\$\.total_cost\.taxes: must be an array"):
        ocpi.parse_cdr(bad, version=V230)
    tariff = _load("tariff_1_simple_2hour.json")
    tariff["tax_included"] = "MAYBE"
    with pytest.raises(OcpiValidationError, match=r"^\$\.tax_included: must be a valid TaxIncluded"):
        ocpi.parse_tariff(tariff, version=V230)
    tariff = _load("tariff_6_025kwh_start_max_price.json")
    tariff["min_price"] = {"before_taxes": 20}
    with pytest.raises(OcpiValidationError, match=r"^\$\.min_price\.before_taxes: must be <= max_price"):
        ocpi.parse_tariff(tariff, version=V230)


def test_credit_cdr_taxes_are_negative():
    data = _load("cdr_example.json")
    data.update(credit=True, credit_reference_id="12344", id="12345-C")
    data["total_cost"] = {"before_taxes": D("-4.00"), "taxes": [{"name": "VAT", "amount": D("-0.40")}]}
    assert ocpi.parse_cdr(data, version=V230).total_cost.incl_vat == D("-4.40")
    data["total_cost"]["taxes"][0]["amount"] = D("0.40")
    with pytest.raises(OcpiValidationError, match=r"^\$\.total_cost\.taxes\[0\]\.amount: must be <= 0"):
        ocpi.parse_cdr(data, version=V230)


# ---------------------------------------------------------------------------- pricing
def _session(tariff, hours=None, kwh=None, start="2024-12-05T10:00:00Z"):
    """A 2.3.0 CDR of one period (TIME ``hours`` and/or ENERGY ``kwh``) priced with ``tariff``."""
    from datetime import timedelta
    start_dt = ocpi.parse_datetime(start)
    end = start_dt + timedelta(hours=float(hours or 1))
    dims = []
    if hours is not None:
        dims.append({"type": "TIME", "volume": D(str(hours))})
    if kwh is not None:
        dims.append({"type": "ENERGY", "volume": D(str(kwh))})
    data = _load("cdr_example.json")
    data.update(currency=tariff["currency"], start_date_time=start,
                end_date_time=end.strftime("%Y-%m-%dT%H:%M:%SZ"), tariffs=[],
                charging_periods=[{"start_date_time": start, "dimensions": dims}])
    cdr = ocpi.parse_cdr(data, version=V230)
    return pricing.price_cdr(cdr, ocpi.parse_tariff(tariff, version=V230))


def test_north_american_exclusive_tariff_19():
    # "For a charging session of 2.5 hours, this tariff will result in costs of C$ 5.00, plus
    # taxes according to locally applicable legislation."
    r = _session(_load("tariff_19_simple_north_american_exclusive.json"), hours=2.5)
    assert r.total_cost.excl_vat == D("5.00")
    assert r.tax_amounts() == ()  # no tax known to the tariff: none computed
    assert r.to_ocpi_totals(version=V230)["total_cost"] == {"before_taxes": D("5")}


def test_north_american_inclusive_tariff_20():
    # "this tariff will result in costs of C$ 5.25. All taxes that are due are included"
    r = _session(_load("tariff_20_simple_north_american_inclusive.json"), hours=2.5)
    assert r.total_cost.incl_vat == D("5.25")
    assert r.total_cost.excl_vat == D("5.25")  # the split is unknown without a vat rate


def test_tax_included_yes_with_vat_derives_the_amount_before_taxes():
    tariff = _load("tariff_1_simple_2hour.json")
    tariff["tax_included"] = "YES"
    tariff["elements"][0]["price_components"][0].update(price=D("2.40"), vat=D("20"))
    r = _session(tariff, hours=1)
    assert (r.total_cost.excl_vat, r.total_cost.incl_vat) == (D("2"), D("2.40"))
    assert r.tax_amounts() == (ocpi.TaxAmount("VAT", None, D("20"), D("0.40")),)


def test_tax_included_not_applicable_ignores_vat():
    tariff = _load("tariff_1_simple_2hour.json")
    tariff["tax_included"] = "N/A"
    tariff["elements"][0]["price_components"][0].update(price=D("2"), vat=D("20"))
    r = _session(tariff, hours=1)
    assert r.total_cost.excl_vat == r.total_cost.incl_vat == D("2")
    assert r.lines[0].vat is None


def test_price_limits_before_and_after_taxes_tariff_6_and_12():
    # tariff_6: 50 kWh -> 10.00 / 11.00 (the limit); 30 kWh -> 8.00 / 8.85
    t6 = _load("tariff_6_025kwh_start_max_price.json")
    r = _session(t6, kwh=50, start="2019-01-05T10:00:00Z")
    assert (r.total_cost.excl_vat, r.total_cost.incl_vat) == (D("10.00"), D("11.00"))
    r = _session(t6, kwh=30, start="2019-01-05T10:00:00Z")
    assert (r.total_cost.excl_vat, r.total_cost.incl_vat) == (D("8.00"), D("8.85"))
    # tariff_12: 20 kWh -> 5.00 / 5.50; under 2 kWh -> 0.50 / 0.55
    t12 = _load("tariff_12_025kwh_min_price.json")
    r = _session(t12, kwh=20)
    assert (r.total_cost.excl_vat, r.total_cost.incl_vat) == (D("5.00"), D("5.50"))
    r = _session(t12, kwh=1)
    assert (r.total_cost.excl_vat, r.total_cost.incl_vat) == (D("0.50"), D("0.55"))
    assert sum(t.amount for t in r.tax_amounts()) == D("0.05")


def test_same_figures_in_both_versions():
    """A 2.3.0 tariff and its 2.2.1 form price every example CDR alike."""
    for name in _tariff_files():
        data = _load(name)
        if name == "tariff_put_example.json" or data["tax_included"] == "YES":
            continue
        old = ocpi.tariff_dict_to_version(data, ocpi.V221)
        assert "tax_included" not in old
        assert ocpi.tariff_dict_to_version(old, V230) == data
        t_new = ocpi.parse_tariff(data, version=V230)
        t_old = ocpi.parse_tariff(old)
        cdr = ocpi.parse_cdr(_load("cdr_example.json"), version=V230)._replace(currency=data["currency"])
        a, b = pricing.price_cdr(cdr, t_new), pricing.price_cdr(cdr, t_old)
        if data["tax_included"] == "NO":
            assert a == b, name
    with pytest.raises(OcpiValidationError, match=r"^\$\.tax_included"):
        ocpi.tariff_dict_to_version(_load("tariff_20_simple_north_american_inclusive.json"), ocpi.V221)


def test_price_serialisation_round_trip():
    data = _load("cdr_example.json")
    cdr = ocpi.parse_cdr(data, version=V230)
    assert ocpi.price_to_ocpi(cdr.total_cost, V230) == data["total_cost"]
    assert ocpi.price_to_ocpi(cdr.total_cost, ocpi.V221) == {"excl_vat": D("4.00"), "incl_vat": D("4.40")}
    assert ocpi.read_price(data["total_cost"]) == cdr.total_cost
    assert ocpi.read_price({"excl_vat": 1, "incl_vat": 1.2}) == ocpi.Price(D(1), D("1.2"))
    assert ocpi.read_price({"nothing": 1}) is None


def test_negotiation():
    assert ocpi.VERSIONS == ("2.3.0", "2.2.1")
    assert ocpi.negotiate(["2.1.1", "2.2.1", "2.3.0"]) == "2.3.0"
    assert ocpi.negotiate(["2.2.1"]) == "2.2.1"
    assert ocpi.negotiate(["2.1.1"]) is None
    with pytest.raises(ValueError, match="unsupported OCPI version"):
        ocpi.parse_cdr({}, version="2.1.1")


def test_cdr_dict_conversion_both_ways():
    data = _load("cdr_example.json")
    old = ocpi.cdr_dict_to_version(data, ocpi.V221)
    assert old["total_cost"] == {"excl_vat": D("4.00"), "incl_vat": D("4.40")}
    assert old["tariffs"][0]["elements"] == data["tariffs"][0]["elements"]
    a = ocpi.parse_cdr(old)
    b = ocpi.parse_cdr(data, version=V230)
    assert (a.total_cost.excl_vat, a.total_cost.incl_vat) == (b.total_cost.excl_vat, b.total_cost.incl_vat)
    floats = ocpi.cdr_dict_to_version({"total_cost": {"excl_vat": 4.13, "incl_vat": 4.96}}, V230)
    assert floats["total_cost"] == {"before_taxes": 4.13, "taxes": [{"name": "VAT", "amount": 0.83}]}


# ---------------------------------------------------------------------------- invoice reconciliation
_RECORD = {"country_code": "NL", "party_id": "CPO", "id": "IRR-1", "invoice_id": "INV/2026/0042",
           "cdrs": ["CDR000001", "CDR000002"], "last_updated": "2026-04-08T06:00:00Z"}


def test_invoice_reconciliation_record_parses_and_refuses_each_field():
    rec = ocpi.parse_invoice_reconciliation_record(_RECORD)
    assert (rec.invoice_id, rec.cdrs) == ("INV/2026/0042", ("CDR000001", "CDR000002"))
    for key in _RECORD:
        bad = {k: v for k, v in _RECORD.items() if k != key}
        with pytest.raises(OcpiValidationError) as e:
            ocpi.parse_invoice_reconciliation_record(bad)
        assert e.value.path == f"$.{key}"
    with pytest.raises(OcpiValidationError, match=r"^\$\.cdrs: must contain at least one"):
        ocpi.parse_invoice_reconciliation_record(dict(_RECORD, cdrs=[]))
    with pytest.raises(OcpiValidationError, match=r"^\$\.cdrs\[1\]: must be a string"):
        ocpi.parse_invoice_reconciliation_record(dict(_RECORD, cdrs=["A", 7]))
