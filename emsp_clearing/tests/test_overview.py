"""The Clearing overview: one card per active contract, its figures from one query, each
figure opening the matching list."""

import json
from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from .period_common import PeriodCase


@tagged("post_install", "-at_install")
class TestOverview(PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.write({"clearing_energy_cost": 0.10, "clearing_session_cost": 0.0,
                           "clearing_monthly_cost": 31.0})
        with freeze_time("2026-02-20 10:00:00"):
            cls.feb = cls._session("2026-02-10T10:00:00", kwh=10.0)   # 10 x 0.30 + 1.00
        with freeze_time("2026-03-09 10:00:00"):  # February locks on 8 March
            cls.Period._cron_lock_periods()
        with freeze_time("2026-03-20 10:00:00"):
            cls.march = cls._session("2026-03-10T10:00:00", kwh=20.0)  # 20 x 0.30 + 1.00
        cls.period = cls.march.period_id
        assert cls.feb.period_id.state == "locked" and cls.period != cls.feb.period_id
        with freeze_time("2026-04-02 10:00:00"):  # March locks on 8 April
            cls.period._open_window()
            cls.dispute = cls.Dispute._raise(cls.march, "wrong_energy", "Too much energy")
            cls.april = cls._session("2026-04-01T10:00:00", kwh=30.0)  # 30 x 0.30 + 1.00
        sale = cls.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", cls.company.id)], limit=1)
        cls.invoice = cls.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": cls.emsp.id, "journal_id": sale.id,
            "invoice_date": "2026-03-05", "invoice_date_due": "2026-03-20",
            "clearing_period_id": cls.feb.period_id.id,
            "invoice_line_ids": [Command.create({
                "name": "Sessions", "price_unit": 40.0, "tax_ids": []})]})
        cls.invoice.action_post()
        cls.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=cls.invoice.ids).create({
                "amount": 15.0, "payment_date": "2026-03-25"})._create_payments()
        cls.other = cls._contract(partner=cls.cpo, role="emsp")

    def test_cards(self):
        with freeze_time("2026-04-03 10:00:00"):
            contracts = self.env["clearing.contract"].search([("state", "=", "active")])
            self.assertIn(self.other, contracts)
            spec = {
                "overview_period_id": {}, "overview_period_state": {},
                "overview_window_days": {}, "overview_open_disputes": {},
                "overview_billed": {}, "overview_paid": {}, "overview_overdue": {},
                "overview_margin_month": {}, "overview_graph": {}}
            # as many queries for several cards as for one (after a first read that warms
            # the caches of the registry)
            self.contract.web_read(spec)
            self.env.invalidate_all()
            queries = self.cr.sql_log_count
            self.contract.web_read(spec)
            one = self.cr.sql_log_count - queries
            self.env.invalidate_all()
            queries = self.cr.sql_log_count
            (self.contract | self.other).web_read(spec)
            self.assertEqual(self.cr.sql_log_count - queries, one)
            records = contracts.web_read(spec)
            card = next(r for r in records if r["id"] == self.contract.id)
            # the period in control, locking on 8 April
            self.assertEqual(card["overview_period_id"], self.period.id)
            self.assertEqual(card["overview_period_state"], "control")
            self.assertEqual(card["overview_window_days"],
                             (self.period.lock_date - date(2026, 4, 3)).days)
            self.assertEqual(card["overview_open_disputes"], 1)
            self.assertEqual((card["overview_billed"], card["overview_paid"],
                              card["overview_overdue"]), (40.0, 15.0, 25.0))
            # April: 10.00 billable - 30 kWh of cost (x 0.10) - 31.00 fixed for the month
            self.assertAlmostEqual(card["overview_margin_month"], 10.0 - 3.0 - 31.0)
            graph = json.loads(card["overview_graph"])[0]["values"]
            self.assertEqual(len(graph), 12)
            self.assertEqual([point["value"] for point in graph[-3:]], [4.0, 7.0, 10.0])
            self.assertEqual(sum(point["value"] for point in graph), 21.0)
            empty = next(r for r in records if r["id"] == self.other.id)
            self.assertEqual((empty["overview_billed"], empty["overview_open_disputes"],
                              empty["overview_margin_month"]), (0, 0, 0))
            # each figure opens its list
            contract = self.contract
            Move = self.env["account.move"]
            for method, expected in (("action_overview_billed", self.invoice),
                                     ("action_overview_paid", self.invoice),
                                     ("action_overview_overdue", self.invoice)):
                action = getattr(contract, method)()
                self.assertEqual(Move.search(action["domain"]), expected, method)
            action = contract.action_overview_disputes()
            self.assertEqual(self.Dispute.search(action["domain"]), self.dispute)
            self.assertEqual(contract.action_overview_period()["res_id"], self.period.id)
            self.assertIn("pivot", contract.action_overview_margin()["view_mode"])
            # paid in full: nothing overdue any more, the list is empty
            self.env["account.payment.register"].with_context(
                active_model="account.move", active_ids=self.invoice.ids).create({
                    "amount": 25.0, "payment_date": "2026-03-27"})._create_payments()
            self.assertFalse(Move.search(contract.action_overview_overdue()["domain"]))
            contract.invalidate_recordset()
            self.assertEqual((contract.overview_paid, contract.overview_overdue), (40.0, 0.0))

    def test_overview_is_the_first_screen(self):
        root = self.env.ref("emsp_clearing.menu_clearing_root")
        first = root.child_id.sorted("sequence")[0]
        self.assertEqual(first.action, self.env.ref("emsp_clearing.action_clearing_overview"))
        self.assertEqual(self.env["clearing.contract"].get_views(
            [(False, "kanban")], {"action_id": first.action.id})["views"]["kanban"]["id"],
            self.env.ref("emsp_clearing.view_clearing_contract_overview_kanban").id)
