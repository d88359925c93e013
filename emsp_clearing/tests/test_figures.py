"""Figures per contract and month, from one SQL aggregation."""

from datetime import datetime

from odoo.tests import tagged

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
