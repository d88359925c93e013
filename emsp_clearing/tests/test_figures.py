"""Figures per contract and month, from one SQL aggregation."""

from datetime import datetime, timedelta

from odoo.tests import tagged
from odoo.tools import SQL

from .common import ClearingCase, make_ocpi_cdr


@tagged("post_install", "-at_install")
class TestFigures(ClearingCase):
    def test_figures_by_month(self):
        contract = self._contract()
        ingest = self.env["clearing.cdr"].ingest_ocpi
        a = ingest(make_ocpi_cdr("G1", datetime(2026, 1, 5, 10), [(0, {"ENERGY": 10})],
                                 total_cost={"excl_vat": 3.0, "incl_vat": 3.6}))
        b = ingest(make_ocpi_cdr("G2", datetime(2026, 1, 6, 10), [(0, {"ENERGY": 20})],
                                 total_cost={"excl_vat": 7.0, "incl_vat": 8.4}))
        c = ingest(make_ocpi_cdr("G3", datetime(2026, 2, 6, 10), [(0, {"ENERGY": 5})],
                                 total_cost={"excl_vat": 1.5, "incl_vat": 1.8}))
        self.env.flush_all()
        self.env.cr.execute("UPDATE clearing_cdr SET state = 'excluded' WHERE id = %s",
                            (c.id,))
        self.env.cr.execute("UPDATE clearing_cdr SET is_late = (id = %s)", (a.id,))
        self.env.invalidate_all()
        contract.currency_id.rounding  # the amounts are rounded to it
        with self.assertQueryCount(1):
            figures = contract._figures_by_month()
        jan = figures[(contract.id, datetime(2026, 1, 1).date())]
        self.assertEqual((jan["sessions"], jan["priced"], jan["mismatched"], jan["late"]),
                         (2, 2, 1, 1))
        self.assertAlmostEqual(float(jan["kwh"]), 30.0)
        self.assertAlmostEqual(float(jan["mismatch_amount"]), 1.0)
        self.assertAlmostEqual(float(jan["revenue"]), 9.0)
        feb = figures[(contract.id, datetime(2026, 2, 1).date())]
        self.assertEqual((feb["sessions"], feb["excluded"], feb["priced"]), (1, 1, 0))
        self.assertAlmostEqual(float(feb["revenue"]), 0.0)
        contract.invalidate_recordset()
        self.assertEqual((contract.cdr_excluded_count, contract.cdr_late_count,
                          contract.cdr_disputed_count), (1, 1, 0))
        self.assertIn("2026-01", contract.figures_html)
        for method, expected in (("action_view_excluded", c), ("action_view_late", a),
                                 ("action_view_mismatches", b)):
            action = getattr(contract, method)()
            self.assertEqual(self.env["clearing.cdr"].search(action["domain"]), expected)
        self.assertIn("pivot", contract.action_view_figures()["view_mode"])

    def test_margin_cpo(self):
        """Costs per contract with validity dates, else the company defaults; margin per
        session, per period, per month."""
        self.company.write({"clearing_energy_cost": 0.10, "clearing_session_cost": 0.50,
                            "clearing_monthly_cost": 31.0})
        contract = self._contract(cost_ids=[(0, 0, {
            "date_start": "2026-02-01", "date_end": "2026-02-28", "energy_cost": 0.20,
            "session_cost": 0.0, "monthly_cost": 28.0})])
        ingest = self.env["clearing.cdr"].ingest_ocpi
        jan = ingest(make_ocpi_cdr("M1", datetime(2026, 1, 5, 10), [(0, {"ENERGY": 10})]))
        feb = ingest(make_ocpi_cdr("M2", datetime(2026, 2, 5, 10), [(0, {"ENERGY": 10})]))
        self.assertEqual(jan.amount_untaxed, 3.0)
        # January: company defaults, 10 kWh x 0.10 + 0.50
        self.assertAlmostEqual(jan.cost_amount, 1.5)
        self.assertAlmostEqual(jan.margin, 1.5)
        # February: the contract's cost line
        self.assertAlmostEqual(feb.cost_amount, 2.0)
        self.assertAlmostEqual(feb.margin, 1.0)
        figures = contract._figures_by_month()
        january = figures[(contract.id, datetime(2026, 1, 1).date())]
        self.assertEqual(float(january["fixed_cost"]), 31.0)
        self.assertAlmostEqual(float(january["margin"]), 3.0 - 1.5 - 31.0)
        february = figures[(contract.id, datetime(2026, 2, 1).date())]
        self.assertEqual(float(february["fixed_cost"]), 28.0)
        self.assertAlmostEqual(float(february["margin"]), 3.0 - 2.0 - 28.0)
        # both sessions arrived late, in the open (monthly) period: a whole month of fixed
        # costs at the company default
        period = jan.period_id
        self.assertEqual(feb.period_id, period)
        self.assertEqual((period.date_start.day, (period.date_end + timedelta(days=1)).day),
                         (1, 1))
        self.assertAlmostEqual(period.cost_amount, 1.5 + 2.0 + 31.0)
        self.assertAlmostEqual(period.margin, 6.0 - 34.5)
        self.assertIn("Margin", contract.figures_html)
        # excluded sessions are out of revenue and costs
        self.env.flush_all()
        self.env.cr.execute("UPDATE clearing_cdr SET state = 'excluded' WHERE id = %s",
                            (jan.id,))
        self.env.invalidate_all()
        self.assertEqual((jan.cost_amount, jan.margin), (0.0, 0.0))

    def test_fixed_cost_sql_in_a_query_on_contracts(self):
        """The fixed cost expression can be used in a query whose own alias is ``contract``:
        its inner aliases don't shadow the caller's (two contracts, two answers)."""
        self.company.clearing_monthly_cost = 31.0
        first = self._contract(cost_ids=[(0, 0, {
            "date_start": "2026-02-01", "date_end": "2026-02-28", "monthly_cost": 28.0})])
        second = self._contract(activate=False)
        Contract = self.env["clearing.contract"]
        Contract._flush_for_costs()
        self.env.cr.execute(SQL(
            "SELECT contract.id, %s FROM clearing_contract contract WHERE contract.id IN %s"
            " ORDER BY contract.id",
            Contract._fixed_cost_sql(SQL("contract.id"), "2026-02-01", "2026-02-28"),
            (first.id, second.id)))
        self.assertEqual([(cid, float(cost)) for cid, cost in self.env.cr.fetchall()],
                         [(first.id, 28.0), (second.id, 31.0)])

    def test_overlapping_costs_refused(self):
        contract = self._contract()
        self.env["clearing.contract.cost"].create({
            "contract_id": contract.id, "date_start": "2026-01-01", "energy_cost": 0.1})
        with self.assertRaisesRegex(Exception, "same days"):
            self.env["clearing.contract.cost"].create({
                "contract_id": contract.id, "date_start": "2026-06-01", "energy_cost": 0.2})

    def test_resale_margin_emsp(self):
        """eMSP hat: the resale grid priced with the engine over the CPO's CDRs (revenue)
        next to what the CPO bills us (cost)."""
        contract = self._contract(
            partner=self.cpo, role="emsp", lines=[{"dimension": "ENERGY", "price": 0.30}],
            resale_line_ids=[(0, 0, {"dimension": "ENERGY", "price": 0.45, "resale": True})])
        self.assertEqual(contract.price_line_ids.mapped("price"), [0.30])
        self.assertEqual(contract.resale_line_ids.mapped("price"), [0.45])
        cdr = self.env["clearing.cdr"].ingest_ocpi(make_ocpi_cdr(
            "R1", datetime(2026, 1, 5, 10), [(0, {"ENERGY": 10})], sender=("DE", "CPX"),
            issuer=("FR", "TST")))
        self.assertEqual(cdr.contract_id, contract)
        self.assertEqual(cdr.amount_untaxed, 3.0)
        action = contract.action_resale_margin()
        wizard = self.env["clearing.whatif"].with_context(action["context"]).create(
            {"date_from": "2026-01-01", "date_to": "2026-01-31"})
        self.assertTrue(wizard.resale)
        self.assertEqual(wizard.line_ids.mapped("price"), [0.45])
        wizard.action_simulate()
        self.assertAlmostEqual(wizard.current_untaxed, 3.0)
        self.assertAlmostEqual(wizard.simulated_untaxed, 4.5)
        self.assertAlmostEqual(wizard.difference_untaxed, 1.5)
