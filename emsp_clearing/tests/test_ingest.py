from datetime import datetime

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import ClearingCase, make_ocpi_cdr

PEAK_GRID = [
    {"sequence": 5, "dimension": "FLAT", "price": 1.0},
    {"sequence": 10, "dimension": "ENERGY", "price": 0.40, "start_time": 7.0,
     "end_time": 22.0, "day_mon": True, "day_tue": True, "day_wed": True,
     "day_thu": True, "day_fri": True},
    {"sequence": 20, "dimension": "ENERGY", "price": 0.25, "start_time": 22.0,
     "end_time": 7.0, "day_mon": True, "day_tue": True, "day_wed": True,
     "day_thu": True, "day_fri": True},
    {"sequence": 30, "dimension": "ENERGY", "price": 0.30, "day_sat": True, "day_sun": True},
]
PARKING_GRID = [
    {"sequence": 10, "dimension": "FLAT", "price": 0.5},
    {"sequence": 20, "dimension": "ENERGY", "price": 0.30},
    {"sequence": 30, "dimension": "PARKING_TIME", "price": 6.0, "time_unit": "hour",
     "step_size": 300, "min_duration": 120},
]
MINUTE_GRID = [
    {"sequence": 10, "dimension": "TIME", "price": 0.05, "time_unit": "minute",
     "step_size": 900},
    {"sequence": 20, "dimension": "ENERGY", "price": 0.10, "step_size": 1000},
]


@tagged("post_install", "-at_install")
class TestIngest(ClearingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.peak = cls._contract(lines=PEAK_GRID)
        cls.parking_emsp = cls.env["res.partner"].create(
            {"name": "Parking eMSP", "is_company": True, "ocpi_country_code": "DE",
             "ocpi_party_id": "PRK", "ocpi_is_emsp": True}
        )
        cls.parking = cls._contract(partner=cls.parking_emsp, lines=PARKING_GRID)
        cls.minute_emsp = cls.env["res.partner"].create(
            {"name": "Minute eMSP", "is_company": True, "ocpi_country_code": "BE",
             "ocpi_party_id": "MIN", "ocpi_is_emsp": True}
        )
        cls.minute = cls._contract(partner=cls.minute_emsp, lines=MINUTE_GRID, min_price=5.0)
        cls.Cdr = cls.env["clearing.cdr"]

    def assertAmounts(self, cdr, **expected):
        for fname, value in expected.items():
            self.assertAlmostEqual(cdr[fname], value, places=6, msg=fname)
        self.assertAlmostEqual(
            cdr.amount_untaxed,
            cdr.amount_fixed + cdr.amount_energy + cdr.amount_time + cdr.amount_parking
            + cdr.amount_reservation + cdr.amount_adjustment,
            places=6,
        )
        self.assertAlmostEqual(cdr.amount_total, cdr.amount_untaxed + cdr.amount_tax, places=6)

    def test_peak_to_off_peak(self):
        # Wednesday 2026-04-15, Paris is UTC+2: 21:00 local (peak) then 22:00 (off-peak)
        data = make_ocpi_cdr(
            "P-1", datetime(2026, 4, 15, 19, 0),
            [(0, {"ENERGY": 5.0, "TIME": 1.0}), (60, {"ENERGY": 4.5, "TIME": 0.75})],
            end=datetime(2026, 4, 15, 20, 45),
            total_cost={"excl_vat": 4.13, "incl_vat": 4.96},
        )
        cdr = self.Cdr.ingest_ocpi(data)
        self.assertEqual(cdr.contract_id, self.peak)
        self.assertEqual(cdr.state, "priced")
        # 1.00 flat + 5 x 0.40 + 4.5 x 0.25 = 4.125 -> energy 3.125 rounds to 3.13
        self.assertAmounts(cdr, amount_fixed=1.0, amount_energy=3.13, amount_untaxed=4.13,
                           amount_tax=0.83, amount_total=4.96, energy_kwh=9.5,
                           duration_hours=1.75)
        self.assertFalse(cdr.price_mismatch)
        self.assertEqual(cdr.price_difference, 0.0)
        self.assertEqual(
            [(line["dimension"], line["unit_price"]) for line in cdr.price_breakdown],
            [("FLAT", "1"), ("ENERGY", "0.4"), ("ENERGY", "0.25")],
        )
        self.assertIn("<table", cdr.price_breakdown_html)
        self.assertEqual(cdr.applied_tariff["id"], self.peak.name)

    def test_off_peak_wraps_past_midnight(self):
        # Thursday 23:30 local -> Friday 06:30 (both off-peak) -> Friday 07:00 (peak)
        data = make_ocpi_cdr(
            "P-2", datetime(2026, 4, 16, 21, 30),
            [(0, {"ENERGY": 3.0}), (420, {"ENERGY": 2.0}), (450, {"ENERGY": 4.0})],
            end=datetime(2026, 4, 17, 6, 0),
        )
        cdr = self.Cdr.ingest_ocpi(data)
        # 1.00 + 3 x 0.25 + 2 x 0.25 + 4 x 0.40 = 3.85, VAT 0.77
        self.assertAmounts(cdr, amount_fixed=1.0, amount_energy=2.85, amount_untaxed=3.85,
                           amount_tax=0.77, amount_total=4.62)

    def test_weekend_price(self):
        # Saturday 2026-04-18 10:00 local
        data = make_ocpi_cdr("P-3", datetime(2026, 4, 18, 8, 0), [(0, {"ENERGY": 10.0})])
        cdr = self.Cdr.ingest_ocpi(data)
        self.assertAmounts(cdr, amount_energy=3.0, amount_untaxed=4.0, amount_tax=0.8,
                           amount_total=4.8)

    def test_parking_after_two_hours_with_step(self):
        data = make_ocpi_cdr(
            "K-1", datetime(2026, 4, 14, 8, 0),
            [(0, {"ENERGY": 20.0, "TIME": 1.5}), (90, {"PARKING_TIME": 0.5}),
             (120, {"PARKING_TIME": 0.6})],
            end=datetime(2026, 4, 14, 10, 36),
            issuer=("DE", "PRK"),
            total_cost={"excl_vat": 10.5, "incl_vat": 12.6},
        )
        cdr = self.Cdr.ingest_ocpi(data)
        self.assertEqual(cdr.contract_id, self.parking)
        # parking before 2h is free; 0.6 h = 2160 s rounds up to 2400 s (step 300) -> 4.00
        self.assertAmounts(cdr, amount_fixed=0.5, amount_energy=6.0, amount_parking=4.0,
                           amount_untaxed=10.5, amount_tax=2.1, amount_total=12.6,
                           parking_hours=1.1)
        self.assertFalse(cdr.price_mismatch)

    def test_per_minute_steps_and_min_price(self):
        data = make_ocpi_cdr(
            "M-1", datetime(2026, 4, 14, 8, 0),
            [(0, {"ENERGY": 3.2, "TIME": 0.55})],
            end=datetime(2026, 4, 14, 8, 33),
            issuer=("BE", "MIN"),
            total_cost={"excl_vat": 5.01, "incl_vat": 6.0},
        )
        cdr = self.Cdr.ingest_ocpi(data)
        self.assertEqual(cdr.applied_tariff["elements"][0]["price_components"][0]["price"], 3)
        # time 33 min -> 45 min (step 900 s) x 3.00/h = 2.25; energy 3.2 -> 4 kWh x 0.10 = 0.40
        # 2.65 < min price 5.00 -> +2.35; incl. VAT 6.00
        self.assertAmounts(cdr, amount_time=2.25, amount_energy=0.4, amount_adjustment=2.35,
                           amount_untaxed=5.0, amount_tax=1.0, amount_total=6.0)
        # 0.01 difference is within the 0.01 tolerance
        self.assertAlmostEqual(cdr.price_difference, 0.01)
        self.assertFalse(cdr.price_mismatch)

    def test_mismatch_beyond_tolerance_only(self):
        data = make_ocpi_cdr(
            "M-2", datetime(2026, 4, 14, 8, 0), [(0, {"ENERGY": 3.2, "TIME": 0.55})],
            end=datetime(2026, 4, 14, 8, 33), issuer=("BE", "MIN"),
            total_cost={"excl_vat": 5.02, "incl_vat": 6.02},
        )
        cdr = self.Cdr.ingest_ocpi(data)
        self.assertTrue(cdr.price_mismatch)
        self.assertAlmostEqual(cdr.price_difference, 0.02)
        self.assertAlmostEqual(cdr.price_difference_incl, 0.02)
        self.minute.price_tolerance = 0.05
        cdr.action_reprice()
        self.assertFalse(cdr.price_mismatch)

    def test_invalid_cdr_names_path_and_stores_nothing(self):
        data = make_ocpi_cdr(
            "BAD-1", datetime(2026, 4, 14, 8, 0),
            [(0, {"ENERGY": 3.0}), (30, {"ENERGY": -1.0})],
        )
        before = self.Cdr.search_count([])
        with self.assertRaisesRegex(
            ValidationError, r"\$\.charging_periods\[1\]\.dimensions\[0\]\.volume"
        ):
            self.Cdr.ingest_ocpi(data)
        self.assertEqual(self.Cdr.search_count([]), before)
        del data["cdr_token"]
        with self.assertRaisesRegex(ValidationError, r"\$\.cdr_token"):
            self.Cdr.ingest_ocpi(data)

    def test_duplicate_refused(self):
        data = make_ocpi_cdr("D-1", datetime(2026, 4, 14, 8, 0), [(0, {"ENERGY": 1.0})])
        self.Cdr.ingest_ocpi(data)
        with self.assertRaisesRegex(ValidationError, "D-1 from FR\\*TST was already received"):
            self.Cdr.ingest_ocpi(data)
        # the same id from another party is another CDR
        other = dict(data, party_id="OTH")
        self.assertTrue(self.Cdr.ingest_ocpi(other))

    def test_batch_keeps_good_items(self):
        good1 = make_ocpi_cdr("B-1", datetime(2026, 4, 14, 8, 0), [(0, {"ENERGY": 1.0})])
        bad = make_ocpi_cdr("B-2", datetime(2026, 4, 14, 8, 0), [(0, {"ENERGY": 1.0})],
                            currency="EURO")
        good2 = make_ocpi_cdr("B-3", datetime(2026, 4, 14, 9, 0), [(0, {"ENERGY": 2.0})])
        results = self.Cdr.ingest_ocpi_batch([good1, bad, good2, good1])
        self.assertEqual([bool(r["record"]) for r in results], [True, False, True, False])
        self.assertIn("$.currency", results[1]["error"])
        self.assertIn("already received", results[3]["error"])
        self.assertEqual(
            self.Cdr.search([("ocpi_id", "in", ["B-1", "B-2", "B-3"])]).mapped("ocpi_id"),
            ["B-3", "B-1"],
        )
        self.assertEqual(results[2]["record"].amount_untaxed, 1.8)

    def test_credit_cdr(self):
        original = self.Cdr.ingest_ocpi(
            make_ocpi_cdr("CR-1", datetime(2026, 4, 18, 8, 0), [(0, {"ENERGY": 10.0})],
                          total_cost={"excl_vat": 4.0, "incl_vat": 4.8})
        )
        credit = self.Cdr.ingest_ocpi(
            make_ocpi_cdr("CR-1-C", datetime(2026, 4, 18, 8, 0), [(0, {"ENERGY": 10.0})],
                          total_cost={"excl_vat": -4.0, "incl_vat": -4.8},
                          credit=True, credit_reference_id="CR-1")
        )
        self.assertEqual(credit.credited_cdr_id, original)
        self.assertEqual(original.credit_cdr_ids, credit)
        self.assertAmounts(credit, amount_fixed=-1.0, amount_energy=-3.0, amount_untaxed=-4.0,
                           amount_tax=-0.8, amount_total=-4.8, energy_kwh=-10.0)
        self.assertEqual(credit.stated_total_cost_excl, -4.0)
        self.assertFalse(credit.price_mismatch)
        self.assertEqual(self.peak.cdr_amount_untaxed, 0.0)
        self.assertEqual(self.peak.cdr_energy_kwh, 0.0)

    def test_rematch_on_activation_and_date_change(self):
        newcomer = self.env["res.partner"].create(
            {"name": "Newcomer", "is_company": True, "ocpi_country_code": "NL",
             "ocpi_party_id": "NEW"}
        )
        cdr = self.Cdr.ingest_ocpi(
            make_ocpi_cdr("N-1", datetime(2026, 3, 10, 8, 0), [(0, {"ENERGY": 10.0})],
                          issuer=("NL", "NEW"))
        )
        self.assertEqual(cdr.state, "unmatched")
        self.assertEqual(cdr.unmatched_reason, "no active contract with eMSP NL*NEW")
        self.assertEqual(cdr.partner_id, newcomer)
        # volumes are known without a contract, amounts are not
        self.assertEqual((cdr.energy_kwh, cdr.duration_hours, cdr.amount_total), (10.0, 1.0, 0.0))
        contract = self._contract(partner=newcomer, activate=False, date_start="2026-04-01",
                                  lines=[{"dimension": "ENERGY", "price": 0.2}])
        self.assertEqual(cdr.state, "unmatched")
        contract.action_activate()
        self.assertIn("outside contract", cdr.unmatched_reason)
        contract.date_start = "2026-03-01"
        self.assertEqual(cdr.contract_id, contract)
        self.assertEqual(cdr.state, "priced")
        self.assertAlmostEqual(cdr.amount_untaxed, 2.0)

    def test_rematch_compares_identities_case_insensitively(self):
        """OCPI identities are CiStrings: a CDR sent with a lower-case issuer is matched when
        its contract appears, like one sent in capitals."""
        newcomer = self.env["res.partner"].create(
            {"name": "Newcomer", "is_company": True, "ocpi_country_code": "NL",
             "ocpi_party_id": "NEW"}
        )
        cdr = self.Cdr.ingest_ocpi(
            make_ocpi_cdr("N-2", datetime(2026, 4, 10, 8, 0), [(0, {"ENERGY": 10.0})],
                          issuer=("nl", "new"))
        )
        self.assertEqual(cdr.state, "unmatched")
        contract = self._contract(partner=newcomer, date_start="2026-04-01",
                                  lines=[{"dimension": "ENERGY", "price": 0.2}])
        self.assertEqual(cdr.contract_id, contract)
        self.assertEqual(cdr.state, "priced")
        self.assertAlmostEqual(cdr.amount_untaxed, 2.0)

    def test_applied_tariff_snapshot_and_reprice(self):
        cdr = self.Cdr.ingest_ocpi(
            make_ocpi_cdr("S-1", datetime(2026, 4, 18, 8, 0), [(0, {"ENERGY": 10.0})])
        )
        self.assertAlmostEqual(cdr.amount_untaxed, 4.0)
        self.peak.price_line_ids.filtered(lambda l: l.sequence == 30).price = 0.5
        self.assertAlmostEqual(cdr.amount_untaxed, 4.0)
        self.assertEqual(
            cdr.applied_tariff["elements"][3]["price_components"][0]["price"], 0.3
        )
        cdr.action_reprice()
        self.assertAlmostEqual(cdr.amount_untaxed, 6.0)
        self.assertEqual(
            cdr.applied_tariff["elements"][3]["price_components"][0]["price"], 0.5
        )

    def test_emsp_role_priced_with_purchase_vat(self):
        contract = self._contract(partner=self.cpo, role="emsp",
                                  lines=[{"dimension": "ENERGY", "price": 0.5}])
        cdr = self.Cdr.ingest_ocpi(
            make_ocpi_cdr("E-1", datetime(2026, 4, 14, 8, 0), [(0, {"ENERGY": 7.0})],
                          sender=("DE", "CPX"), issuer=("FR", "TST"))
        )
        self.assertEqual(cdr.contract_id, contract)
        self.assertEqual(cdr.applied_tariff["country_code"], "DE")
        self.assertEqual(cdr.applied_tariff["party_id"], "CPX")
        # 3.50 + 19 % = 4.165 -> 0.67 VAT
        self.assertAmounts(cdr, amount_untaxed=3.5, amount_tax=0.67, amount_total=4.17)

    def test_tracking_equals_sums(self):
        items = [
            make_ocpi_cdr("T-%d" % i, datetime(2026, 4, 13 + i, 8, 0),
                          [(0, {"ENERGY": 5.0 + i})],
                          total_cost={"excl_vat": 99 if i == 2 else 0, "incl_vat": 0})
            for i in range(5)
        ]
        records = self.Cdr.browse(
            [r["record"].id for r in self.Cdr.ingest_ocpi_batch(items)]
        )
        self.assertEqual(records.contract_id, self.peak)
        self.peak.invalidate_recordset()
        self.assertEqual(self.peak.cdr_count, 5)
        self.assertAlmostEqual(self.peak.cdr_energy_kwh, 35.0)
        self.assertAlmostEqual(self.peak.cdr_energy_kwh, sum(records.mapped("energy_kwh")))
        self.assertAlmostEqual(self.peak.cdr_amount_untaxed,
                               sum(records.mapped("amount_untaxed")))
        self.assertAlmostEqual(self.peak.cdr_amount_total, sum(records.mapped("amount_total")))
        self.assertEqual(self.peak.cdr_mismatch_count, len(records.filtered("price_mismatch")))
        self.assertGreaterEqual(self.peak.cdr_mismatch_count, 1)
