"""The live figures per contract and day (clearing.contract.day, kept by a trigger on
clearing_cdr) always equal a direct aggregation of the sessions, whatever wrote them."""

from datetime import datetime

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from .common import make_ocpi_cdr
from .period_common import PeriodCase

# computed here independently of the model: straight from clearing_cdr
DIRECT = """
    SELECT cdr.contract_id, coalesce(cdr.fleet_id, 0),
           ((cdr.end_datetime AT TIME ZONE 'UTC') AT TIME ZONE contract.tz)::date,
           count(*),
           sum(cdr.energy_kwh),
           sum(CASE WHEN cdr.state IN ('priced', 'locked') THEN 1 ELSE 0 END),
           sum(CASE WHEN cdr.price_mismatch THEN 1 ELSE 0 END),
           sum(CASE WHEN cdr.price_mismatch THEN cdr.price_difference ELSE 0 END),
           sum(CASE WHEN cdr.dispute_state IS NOT NULL AND cdr.dispute_state <> 'none'
                    THEN 1 ELSE 0 END),
           sum(CASE WHEN cdr.state = 'excluded' THEN 1 ELSE 0 END),
           sum(CASE WHEN cdr.is_late THEN 1 ELSE 0 END),
           sum(CASE WHEN cdr.state = 'excluded' THEN 0 ELSE cdr.amount_untaxed END),
           sum(CASE WHEN cdr.state = 'excluded' THEN 0 ELSE cdr.amount_total END),
           sum(CASE WHEN cdr.state = 'excluded' OR cdr.credit THEN 0 ELSE 1 END),
           sum(CASE WHEN cdr.state = 'excluded' OR cdr.credit THEN 0
                    ELSE abs(cdr.energy_kwh) END)
      FROM clearing_cdr cdr JOIN clearing_contract contract ON contract.id = cdr.contract_id
  GROUP BY 1, 2, 3
"""
STORED = """
    SELECT contract_id, fleet_id, day, sum(sessions), sum(kwh), sum(priced), sum(mismatched),
           sum(mismatch_amount), sum(disputed), sum(excluded), sum(late), sum(revenue),
           sum(amount_total), sum(cost_sessions), sum(cost_kwh)
      FROM clearing_contract_day
  GROUP BY 1, 2, 3
    HAVING sum(sessions) <> 0
"""


@tagged("post_install", "-at_install")
class TestContractDay(PeriodCase):

    def _rows(self, query):
        self.env.flush_all()
        self.env.cr.execute(query)
        return {row[:3]: tuple(float(value or 0) for value in row[3:])
                for row in self.env.cr.fetchall()}

    def assertFiguresLive(self, msg=None):
        direct = self._rows(DIRECT)
        self.assertTrue(direct, "the scenario has sessions")
        self.assertEqual(self._rows(STORED), direct, msg)

    def test_every_write_path(self):
        Day = self.env["clearing.contract.day"]
        with freeze_time("2026-03-20 10:00:00"):
            # ORM path
            first = self._session("2026-03-10T10:00:00", kwh=12.0)
            late_night = self._session("2026-03-10T23:30:00", kwh=7.0)  # 11 March in Paris
            self.assertFiguresLive("ORM create")
            self.assertEqual(late_night.end_datetime.day, 10)
            # batch path (one COPY)
            items = [make_ocpi_cdr("B-%d" % i, datetime(2026, 3, 12, 8 + i),
                                   [(0, {"ENERGY": 5 + i})], issuer=("FR", "TEM"),
                                   total_cost={"excl_vat": 9.99, "incl_vat": 11.99})
                     for i in range(4)]
            results = self.Cdr.ingest_ocpi_batch(items, company=self.company)
            self.assertFalse([r["error"] for r in results if r["error"]])
            self.assertFiguresLive("batch ingest")
            batch = self.Cdr.browse([r["record"].id for r in results])
            self.assertTrue(any(batch.mapped("price_mismatch")))
            # re-pricing after a grid change (set-based SQL update)
            self.contract.price_line_ids.filtered(
                lambda line: line.dimension == "ENERGY").price = 0.40
            (first | batch).reprice()
            self.assertFiguresLive("re-price")
            # fleet grid: the same sessions split by fleet
            fleet = self.env["clearing.fleet"].create({
                "name": "VIP", "contract_id": self.contract.id,
                "token_uids": first.token_uid,
                "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.10})]})
            first.reprice()
            self.assertEqual(first.fleet_id, fleet)
            self.assertFiguresLive("fleet grid")
            fleet.unlink()
            self.assertFiguresLive("fleet deleted")
        # dispute then exclusion
        period = first.period_id
        with freeze_time("2026-04-02 10:00:00"):
            period._open_window()
            dispute = self.Dispute._raise(first, "wrong_energy", "Too much energy")
            self.assertFiguresLive("dispute raised")
            dispute.action_accept()
            self.assertEqual(first.state, "excluded")
            self.assertFiguresLive("dispute accepted: excluded")
        # period change: the lock, then a late session carried to the next period
        with freeze_time("2026-04-08 06:00:00"):
            self.Period._cron_lock_periods()
            self.assertTrue(late_night.locked)
            late = self._session("2026-03-25T10:00:00", kwh=3.0)
            self.assertTrue(late.is_late)
            self.assertFiguresLive("lock and late session")
        # SQL written straight (as re-pricing and locking do)
        self.env.cr.execute("UPDATE clearing_cdr SET price_mismatch = NOT price_mismatch")
        self.assertFiguresLive("SQL update")
        # delete
        self.env.cr.execute("DELETE FROM clearing_cdr WHERE id = %s", (batch[0].id,))
        self.assertFiguresLive("delete")
        # compaction: one row per key, the same figures
        rows_before = Day.search_count([])
        Day._compact()
        self.assertFiguresLive("compacted")
        self.env.cr.execute("SELECT count(*), count(DISTINCT (contract_id, fleet_id, day)) "
                            "FROM clearing_contract_day")
        count, keys = self.env.cr.fetchone()
        self.assertEqual(count, keys)
        self.assertLess(count, rows_before)
        # the time zone changes the local day of the sessions: the figures follow
        self.contract.tz = "America/New_York"
        self.assertFiguresLive("time zone change")
        # rebuild from scratch
        self.env.cr.execute("DELETE FROM clearing_contract_day")
        Day.rebuild_figures()
        self.assertFiguresLive("rebuilt")

    def test_figures_by_month_from_the_aggregates(self):
        """The contract's figures per month are the day figures summed, plus accounting."""
        with freeze_time("2026-03-20 10:00:00"):
            self._session("2026-03-10T10:00:00", kwh=12.0)
            self._session("2026-02-10T10:00:00", kwh=8.0)
        figures = self.contract._figures_by_month()
        march = figures[(self.contract.id, datetime(2026, 3, 1).date())]
        february = figures[(self.contract.id, datetime(2026, 2, 1).date())]
        self.assertEqual((march["sessions"], february["sessions"]), (1, 1))
        self.assertAlmostEqual(float(march["kwh"]), 12.0)
        # 12 kWh x 0.30 + 1.00 flat
        self.assertEqual(float(march["revenue"]), 4.6)
        self.assertEqual((march["billed"], march["paid"], march["payment_exceptions"]),
                         (0, 0, 0))
        # the reporting view: the same figures by day, with the counterparty
        report = self.env["clearing.contract.report"].search(
            [("contract_id", "=", self.contract.id)])
        self.assertEqual(sum(report.mapped("sessions")), 2)
        self.assertEqual(report.partner_id, self.emsp)
        self.assertAlmostEqual(sum(report.mapped("revenue")), 4.6 + 3.4)
        self.assertEqual(self.env["clearing.contract.report"].read_group(
            [("contract_id", "=", self.contract.id)], ["sessions:sum"], ["day:month"])[0][
                "sessions"], 1)
        # the figures survive a rebuild, and come from the aggregates: emptied, none left
        self.env.cr.execute("DELETE FROM clearing_contract_day")
        self.assertFalse(self.contract._figures_by_month())
        self.env["clearing.contract.day"].rebuild_figures(self.contract)
        self.assertEqual(self.contract._figures_by_month()[
            (self.contract.id, datetime(2026, 3, 1).date())], march)

    def test_accounting_figures(self):
        """Billed, credited, paid, outstanding and overdue from the posted moves of the
        contract's periods, open payment exceptions and reconciliation findings, in the month
        of the period."""
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00")
        period = cdr.period_id
        with freeze_time("2026-04-08 06:00:00"):
            period._lock()
        period.state = "invoiced"
        company = period.company_id
        sale = self.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", company.id)], limit=1)
        moves = self.env["account.move"].create([{
            "move_type": move_type, "partner_id": self.emsp.id, "journal_id": sale.id,
            "invoice_date": "2026-04-08", "invoice_date_due": "2026-04-30",
            "clearing_period_id": period.id,
            "invoice_line_ids": [Command.create({
                "name": "Sessions", "price_unit": amount, "tax_ids": []})],
        } for move_type, amount in (("out_invoice", 25.0), ("out_refund", 5.0))])
        moves.action_post()
        invoice = moves[0]
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids).create({
                "amount": 10.0, "payment_date": "2026-04-20"})._create_payments()
        self.assertEqual(invoice.amount_residual, 15.0)
        self.env["clearing.payment.exception"].create({
            "exception_type": "late", "invoice_id": invoice.id, "partner_id": self.emsp.id,
            "currency_id": invoice.currency_id.id, "expected_amount": 25.0})
        self.env["clearing.invoice.reconciliation"].sudo().create({
            "direction": "received", "company_id": company.id, "country_code": "FR",
            "party_id": "TEM", "ocpi_id": "REC-1", "invoice_id": "INV-1",
            "period_id": period.id, "finding_count": 2})
        with freeze_time("2026-05-15 10:00:00"):
            march = self.contract._figures_by_month()[
                (self.contract.id, datetime(2026, 3, 1).date())]
        self.assertEqual(
            {key: float(march[key]) for key in (
                "billed", "credited", "paid", "outstanding", "overdue", "payment_exceptions",
                "reconciliation_findings")},
            {"billed": 25.0, "credited": 5.0, "paid": 10.0, "outstanding": 10.0,
             "overdue": 15.0, "payment_exceptions": 1, "reconciliation_findings": 2})
        self.assertEqual(march["sessions"], 1)
