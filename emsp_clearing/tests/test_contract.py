from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import ClearingCase


@tagged("post_install", "-at_install")
class TestContract(ClearingCase):
    def test_reference_from_sequence(self):
        contract = self._contract(activate=False)
        self.assertTrue(contract.name.startswith("CTR-"), contract.name)
        self.assertEqual(contract.state, "draft")
        self.assertEqual(contract.price_tolerance, 0.01)
        self.assertEqual(contract.control_window_days, 7)

    def test_default_tz(self):
        self.company.partner_id.tz = "Europe/Berlin"
        contract = self.env["clearing.contract"].create(
            {"partner_id": self.emsp.id, "currency_id": self.eur.id}
        )
        self.assertEqual(contract.tz, "Europe/Berlin")
        self.company.partner_id.tz = False
        contract = self.env["clearing.contract"].create(
            {"partner_id": self.emsp.id, "currency_id": self.eur.id}
        )
        self.assertEqual(contract.tz, "Europe/Paris")

    def test_workflow(self):
        contract = self._contract(activate=False)
        contract.action_activate()
        self.assertEqual(contract.state, "active")
        contract.action_close()
        self.assertEqual(contract.state, "closed")
        with self.assertRaises(UserError):
            contract.action_activate()

    def test_activate_needs_grid(self):
        contract = self._contract(activate=False, price_line_ids=[])
        with self.assertRaisesRegex(UserError, "no price grid line"):
            contract.action_activate()

    def test_billing_day(self):
        contract = self._contract(activate=False)
        with self.assertRaisesRegex(ValidationError, "between 1 and 28"), self.cr.savepoint():
            contract.billing_day = 29
        contract.write({"billing_frequency": "weekly", "billing_day": 7})
        with self.assertRaisesRegex(ValidationError, "1 \\(Monday\\) to 7"), self.cr.savepoint():
            contract.billing_day = 8

    def test_dates_and_amounts(self):
        contract = self._contract(activate=False)
        with self.assertRaisesRegex(ValidationError, "end date is before"), self.cr.savepoint():
            contract.date_end = "2025-12-31"
        with self.assertRaisesRegex(ValidationError, "at least one day"), self.cr.savepoint():
            contract.control_window_days = 0
        with self.assertRaisesRegex(ValidationError, "minimum price is above"), self.cr.savepoint():
            contract.write({"min_price": 5, "max_price": 2})

    def test_counterparty_needs_identity(self):
        anonymous = self.env["res.partner"].create({"name": "No id", "is_company": True})
        with self.assertRaisesRegex(ValidationError, "has no OCPI identity"):
            self._contract(partner=anonymous, activate=False)

    def test_tax_type_follows_role(self):
        with self.assertRaisesRegex(ValidationError, "must be a purchase tax"):
            self._contract(
                role="emsp", partner=self.cpo, activate=False,
                tax_ids=[Command.set(self.sale_tax.ids)],
            )
        contract = self._contract(role="emsp", partner=self.cpo, activate=False)
        self.assertEqual(contract.vat_rate, 19.0)

    def test_price_line_validation(self):
        contract = self._contract(activate=False)
        line = contract.price_line_ids
        with self.assertRaisesRegex(ValidationError, "between 00:00 and 23:59"), self.cr.savepoint():
            line.end_time = 24.0
        with self.assertRaisesRegex(ValidationError, r"minimum \(energy\) is above"), self.cr.savepoint():
            line.write({"min_kwh": 10, "max_kwh": 5})
        with self.assertRaisesRegex(ValidationError, "step size must be strictly positive"), self.cr.savepoint():
            line.step_size = 0
        with self.assertRaisesRegex(ValidationError, "start date is after"), self.cr.savepoint():
            line.write({"date_start": "2026-05-01", "date_end": "2026-04-01"})
        with self.assertRaisesRegex(ValidationError, "starts and ends at the same time"), self.cr.savepoint():
            line.write({"start_time": 8.0, "end_time": 8.0})
        line.write({"start_time": 22.0, "end_time": 7.0})
        self.assertEqual(line.restriction_summary, "22:00-07:00")

    def test_name_search_by_counterparty(self):
        contract = self._contract(activate=False, description="Highway agreement")
        found = self.env["clearing.contract"].name_search("Test eMSP")
        self.assertIn(contract.id, [rid for rid, _name in found])
        found = self.env["clearing.contract"].name_search("Highway")
        self.assertEqual([rid for rid, _name in found], [contract.id])
