from datetime import datetime

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import ClearingCase, make_ocpi_cdr


@tagged("post_install", "-at_install")
class TestSecurity(ClearingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._contract()
        cls.company_b = cls.env["res.company"].create({"name": "Clearing Company B"})
        cls.user = new_test_user(
            cls.env, login="clearing_user", groups="emsp_clearing.group_clearing_user"
        )
        cls.manager = new_test_user(
            cls.env, login="clearing_manager",
            groups="emsp_clearing.group_clearing_manager",
        )
        cls.user_b = new_test_user(
            cls.env, login="clearing_user_b", groups="emsp_clearing.group_clearing_user",
            company_id=cls.company_b.id, company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.cdr = cls._raw_cdr("SEC-1", "2026-04-10 12:00:00")

    def test_user_reads_but_cannot_write_contracts(self):
        contract = self.contract.with_user(self.user)
        self.assertEqual(contract.name, self.contract.name)
        self.assertEqual(contract.price_line_ids.price, 0.30)
        with self.assertRaises(AccessError):
            contract.write({"control_window_days": 10})
        with self.assertRaises(AccessError):
            contract.price_line_ids.write({"price": 1.0})
        with self.assertRaises(AccessError):
            self.env["clearing.contract"].with_user(self.user).create(
                {"partner_id": self.emsp.id}
            )

    def test_manager_writes_contracts(self):
        contract = self.contract.with_user(self.manager)
        contract.write({"control_window_days": 10})
        contract.price_line_ids.write({"price": 0.35})
        self.assertEqual(self.contract.control_window_days, 10)
        self.assertEqual(self.contract.price_line_ids.price, 0.35)

    def test_only_manager_reprices(self):
        with self.assertRaisesRegex(UserError, "Only clearing managers"):
            self.cdr.with_user(self.user).action_reprice()

    def test_other_company_does_not_see_cdrs(self):
        self.assertEqual(
            self.env["clearing.cdr"].with_user(self.user).search([("id", "=", self.cdr.id)]),
            self.cdr,
        )
        self.assertFalse(
            self.env["clearing.cdr"].with_user(self.user_b).search([("id", "=", self.cdr.id)])
        )
        self.assertFalse(
            self.env["clearing.contract"].with_user(self.user_b).search(
                [("id", "=", self.contract.id)]
            )
        )
        with self.assertRaises(AccessError):
            self.cdr.with_user(self.user_b).read(["ocpi_id"])

    def test_other_company_does_not_see_figures(self):
        """The day figures and the figures report follow the contract's company."""
        cdr = self.env["clearing.cdr"].ingest_ocpi(
            make_ocpi_cdr("SEC-FIG", datetime(2026, 4, 11, 10), [(0, {"ENERGY": 10})]))
        self.assertEqual(cdr.contract_id, self.contract)
        self.env.flush_all()
        for model in ("clearing.contract.day", "clearing.contract.report"):
            domain = [("contract_id", "=", self.contract.id)]
            self.assertTrue(self.env[model].with_user(self.user).search(domain), model)
            self.assertFalse(self.env[model].with_user(self.user_b).search(domain), model)
