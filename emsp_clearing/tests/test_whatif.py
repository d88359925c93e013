"""What-if before signing: the sessions of a past range priced again under a draft grid,
compared per month and component, as a screen and an XLSX; nothing on the sessions changes."""

import base64
import io
from datetime import datetime

import openpyxl

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import ClearingCase, make_ocpi_cdr


@tagged("post_install", "-at_install")
class TestWhatif(ClearingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._contract(lines=[{"dimension": "FLAT", "price": 1.0},
                                            {"dimension": "ENERGY", "price": 0.30}])
        ingest = cls.env["clearing.cdr"].ingest_ocpi
        cls.cdrs = cls.env["clearing.cdr"]
        for index, (month, day, kwh) in enumerate(
                [(1, 5, 10), (1, 20, 20), (2, 3, 5), (3, 31, 8)]):
            # 31 March 23:30 UTC is 1 April in Paris: outside a range ending on 31 March
            hour = 22 if (month, day) == (3, 31) else 10
            cls.cdrs |= ingest(make_ocpi_cdr(
                "W%d" % index, datetime(2026, month, day, hour, 30), [(0, {"ENERGY": kwh})],
                end=datetime(2026, month, day, hour + 1, 30)))

    def _wizard(self, contract=None, **vals):
        contract = contract or self.contract
        wizard = self.env["clearing.whatif"].with_context(default_contract_id=contract.id)
        values = {"date_from": "2026-01-01", "date_to": "2026-03-31"}
        values.update(vals)
        return wizard.create(values)

    def _snapshot(self):
        self.env.flush_all()
        self.env.cr.execute("SELECT * FROM clearing_cdr WHERE id = ANY(%s) ORDER BY id",
                            (self.cdrs.ids,))
        return self.env.cr.fetchall()

    def test_same_grid_same_amounts(self):
        wizard = self._wizard()
        self.assertEqual(wizard.line_ids.mapped("price"), [1.0, 0.30])
        wizard.action_simulate()
        self.assertEqual(wizard.session_count, 3)
        self.assertAlmostEqual(wizard.current_untaxed, 3 + 0.3 * 35)
        self.assertAlmostEqual(wizard.difference_untaxed, 0.0)
        self.assertFalse(any(wizard.result_ids.mapped("difference")))

    def test_draft_grid_nothing_changes(self):
        before = self._snapshot()
        wizard = self._wizard()
        wizard.line_ids.filtered(lambda l: l.dimension == "ENERGY").price = 0.40
        wizard.action_simulate()
        self.assertEqual(self._snapshot(), before)
        self.assertAlmostEqual(wizard.simulated_untaxed, 3 + 0.4 * 35)
        self.assertAlmostEqual(wizard.difference_untaxed, 3.5)
        january = wizard.result_ids.filtered(lambda r: r.month_label == "2026-01")
        energy = january.filtered(lambda r: r.component == "Energy Cost")
        self.assertEqual(energy.sessions, 2)
        self.assertAlmostEqual(energy.current_amount, 9.0)
        self.assertAlmostEqual(energy.simulated_amount, 12.0)
        self.assertAlmostEqual(energy.difference, 3.0)
        fixed = january.filtered(lambda r: r.component == "Fixed")
        self.assertAlmostEqual(fixed.difference, 0.0)
        # the session ending on 31 March 23:30 UTC ended in April in Paris: out of the range
        self.assertEqual(sorted(set(wizard.result_ids.mapped("month_label"))),
                         ["2026-01", "2026-02"])
        # the XLSX says the same
        wizard.action_download_xlsx()
        book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(wizard.xlsx_file)))
        rows = list(book.active.iter_rows(values_only=True))
        header = rows.index(("Month", "Component", "Sessions", "Current amount",
                             "Simulated amount", "Difference"))
        body = [row for row in rows[header + 1:] if row[0] != "Total"]
        self.assertEqual(len(body), len(wizard.result_ids))
        self.assertIn(("2026-01", "Energy Cost", 2, 9.0, 12.0, 3.0), body)
        totals = {row[1]: row for row in rows if row[0] == "Total"}
        self.assertEqual(totals["Untaxed Amount"][2:], (3, 13.5, 17.0, 3.5))
        self.assertEqual(self._snapshot(), before)

    def test_draft_contract(self):
        """A draft contract (no session attached yet) simulates the sessions that fit it."""
        draft = self._contract(activate=False, lines=[{"dimension": "ENERGY", "price": 0.25}])
        wizard = self._wizard(contract=draft, date_from="2026-01-01", date_to="2026-01-31")
        wizard.action_simulate()
        self.assertEqual(wizard.session_count, 2)
        self.assertAlmostEqual(wizard.current_untaxed, 2 + 0.3 * 30)
        self.assertAlmostEqual(wizard.simulated_untaxed, 0.25 * 30)

    def test_past_range_only(self):
        wizard = self._wizard(date_to="2999-01-01")
        with self.assertRaisesRegex(UserError, "past"):
            wizard.action_simulate()
