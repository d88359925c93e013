import json

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from ..clearing_core import ocpi
from .common import ClearingCase

LINE_FIELDS = (
    "sequence", "dimension", "price", "time_unit", "step_size", "start_time", "end_time",
    "day_mon", "day_tue", "day_wed", "day_thu", "day_fri", "day_sat", "day_sun",
    "date_start", "date_end", "min_kwh", "max_kwh", "min_duration", "max_duration",
    "min_power", "max_power",
)


@tagged("post_install", "-at_install")
class TestTariffRoundTrip(ClearingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._contract(
            activate=False,
            min_price=1.5,
            max_price=40,
            lines=[
                {"sequence": 10, "dimension": "FLAT", "price": 0.5},
                {"sequence": 20, "dimension": "ENERGY", "price": 0.39, "step_size": 100,
                 "start_time": 7.0, "end_time": 22.0, "day_mon": True, "day_tue": True,
                 "day_wed": True, "day_thu": True, "day_fri": True},
                {"sequence": 30, "dimension": "ENERGY", "price": 0.29,
                 "start_time": 22.0, "end_time": 7.0},
                {"sequence": 40, "dimension": "TIME", "price": 0.123457,
                 "time_unit": "minute", "step_size": 60, "min_power": 22, "max_power": 150},
                {"sequence": 50, "dimension": "PARKING_TIME", "price": 6.0,
                 "time_unit": "hour", "step_size": 300, "min_duration": 120,
                 "max_duration": 1440.5, "date_start": "2026-01-01",
                 "date_end": "2026-12-31", "min_kwh": 0.5, "max_kwh": 80,
                 "day_sat": True, "day_sun": True},
            ],
        )

    def test_to_ocpi_tariff(self):
        tariff = self.contract.to_ocpi_tariff()
        self.assertEqual(
            {k: tariff[k] for k in ("country_code", "party_id", "id", "currency", "type")},
            {"country_code": "FR", "party_id": "TST", "id": self.contract.name,
             "currency": "EUR", "type": "REGULAR"},
        )
        self.assertEqual(tariff["min_price"], {"excl_vat": 1.5})
        self.assertEqual(tariff["max_price"], {"excl_vat": 40})
        elements = tariff["elements"]
        self.assertEqual(len(elements), 5)
        self.assertEqual(
            elements[0], {"price_components": [{"type": "FLAT", "price": 0.5, "step_size": 1,
                                                "vat": 20}]},
        )
        self.assertEqual(
            elements[1]["restrictions"],
            {"start_time": "07:00", "end_time": "22:00",
             "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]},
        )
        self.assertEqual(elements[2]["restrictions"], {"start_time": "22:00", "end_time": "07:00"})
        # 0.123457 per minute is exactly 7.40742 per hour
        self.assertEqual(elements[3]["price_components"][0]["price"], 7.40742)
        self.assertEqual(elements[3]["price_components"][0]["step_size"], 60)
        self.assertEqual(
            elements[4]["restrictions"],
            {"start_date": "2026-01-01", "end_date": "2027-01-01", "min_kwh": 0.5,
             "max_kwh": 80, "min_duration": 7200, "max_duration": 86430,
             "day_of_week": ["SATURDAY", "SUNDAY"]},
        )
        # the core accepts it as a valid OCPI 2.2.1 tariff
        parsed = ocpi.parse_tariff(tariff, strict=True)
        self.assertEqual(len(parsed.elements), 5)

    def test_round_trip_is_lossless(self):
        tariff = self.contract.to_ocpi_tariff()
        copy = self._contract(activate=False, lines=[{"dimension": "FLAT", "price": 9}])
        copy._lines_from_ocpi_tariff(tariff)
        self.assertEqual(len(copy.price_line_ids), 5)
        self.assertEqual((copy.min_price, copy.max_price), (1.5, 40.0))
        for original, imported in zip(self.contract.price_line_ids, copy.price_line_ids):
            for fname in LINE_FIELDS:
                expected, got = original[fname], imported[fname]
                if fname == "price" and original.time_unit == "minute":
                    expected = round(original.price * 60, 6)
                if fname == "time_unit":
                    expected = "hour"
                self.assertEqual(got, expected, "%s of line %s" % (fname, original.sequence))
        again = copy.to_ocpi_tariff()
        for key in ("id", "last_updated"):
            again.pop(key), tariff.pop(key)
        self.assertEqual(again, tariff)

    def test_to_ocpi_230_tariff(self):
        old = self.contract.to_ocpi_tariff()
        new = self.contract.to_ocpi_tariff(version="2.3.0")
        self.assertEqual(new["tax_included"], "NO")
        self.assertEqual(new["min_price"], {"before_taxes": 1.5})
        self.assertEqual(new["max_price"], {"before_taxes": 40})
        self.assertEqual(new["elements"], old["elements"])
        parsed = ocpi.parse_tariff(new, strict=True, version="2.3.0")
        self.assertEqual(parsed.tax_included, "NO")
        # the same tariff for the engine, whatever the version
        self.assertEqual(parsed._replace(tax_included=None, raw=None),
                         ocpi.parse_tariff(old, strict=True)._replace(raw=None))

    def test_round_trip_230_is_lossless(self):
        tariff = self.contract.to_ocpi_tariff(version="2.3.0")
        copy = self._contract(activate=False, lines=[{"dimension": "FLAT", "price": 9}])
        copy._lines_from_ocpi_tariff(tariff)
        self.assertEqual((copy.min_price, copy.max_price), (1.5, 40.0))
        for original, imported in zip(self.contract.price_line_ids, copy.price_line_ids):
            for fname in LINE_FIELDS:
                expected, got = original[fname], imported[fname]
                if fname == "price" and original.time_unit == "minute":
                    expected = round(original.price * 60, 6)
                if fname == "time_unit":
                    expected = "hour"
                self.assertEqual(got, expected, "%s of line %s" % (fname, original.sequence))
        again = copy.to_ocpi_tariff(version="2.3.0")
        for key in ("id", "last_updated"):
            again.pop(key), tariff.pop(key)
        self.assertEqual(again, tariff)
        # a tariff whose prices include the taxes has no grid form
        with self.assertRaisesRegex(ValidationError, r"\$\.tax_included"):
            copy._lines_from_ocpi_tariff(dict(tariff, tax_included="YES"))

    def test_import_splits_components(self):
        contract = self._contract(activate=False)
        contract._lines_from_ocpi_tariff(
            {
                "currency": "EUR",
                "elements": [
                    {
                        "price_components": [
                            {"type": "ENERGY", "price": 0.25, "step_size": 1},
                            {"type": "TIME", "price": 2, "step_size": 300},
                        ],
                        "restrictions": {"start_time": "18:00", "day_of_week": ["FRIDAY"]},
                    }
                ],
            }
        )
        lines = contract.price_line_ids
        self.assertEqual(lines.mapped("dimension"), ["ENERGY", "TIME"])
        self.assertEqual(lines.mapped("start_time"), [18.0, 18.0])
        self.assertEqual(lines.mapped("end_time"), [0.0, 0.0])
        self.assertEqual(lines.mapped("day_fri"), [True, True])
        self.assertEqual(lines[1].step_size, 300)

    def test_import_refuses_unsupported(self):
        contract = self._contract(activate=False)
        with self.assertRaisesRegex(ValidationError, r"\$\.elements\[0\]\.restrictions: max_current"):
            contract._lines_from_ocpi_tariff(
                {"currency": "EUR", "elements": [
                    {"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}],
                     "restrictions": {"max_current": 32}}]}
            )
        with self.assertRaisesRegex(ValidationError, "the tariff is in USD"):
            contract._lines_from_ocpi_tariff({"currency": "USD", "elements": []})
        self.assertEqual(fields.Date.to_string(contract.date_start), "2026-01-01")

    def test_import_wizard(self):
        contract = self._contract(activate=False)
        wizard = self.env["clearing.tariff.import"].create(
            {"contract_id": contract.id, "tariff_json": "{not json"}
        )
        with self.assertRaisesRegex(UserError, "not valid JSON"):
            wizard.action_import()
        wizard.tariff_json = json.dumps(
            {"currency": "EUR", "elements": [
                {"price_components": [{"type": "ENERGY", "price": -1, "step_size": 1}]}]}
        )
        with self.assertRaisesRegex(
            ValidationError, r"\$\.elements\[0\]\.price_components\[0\]\.price"
        ):
            wizard.action_import()
        wizard.tariff_json = json.dumps(self.contract.to_ocpi_tariff())
        wizard.action_import()
        self.assertEqual(len(contract.price_line_ids), 5)
        self.assertEqual(json.loads(contract.ocpi_tariff_json)["elements"],
                         self.contract.to_ocpi_tariff()["elements"])
