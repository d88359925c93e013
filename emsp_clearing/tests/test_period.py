from datetime import date, datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo.tests import tagged

from ..tools.period import lock_date_for, period_bounds
from .period_common import PeriodCase


@tagged("post_install", "-at_install")
class TestPeriodCalendar(PeriodCase):

    def test_bounds(self):
        self.assertEqual(period_bounds("monthly", date(2026, 2, 14)),
                         (date(2026, 2, 1), date(2026, 2, 28)))
        self.assertEqual(period_bounds("weekly", date(2026, 3, 5)),  # a Thursday
                         (date(2026, 3, 2), date(2026, 3, 8)))
        self.assertEqual(period_bounds("quarterly", date(2026, 5, 31)),
                         (date(2026, 4, 1), date(2026, 6, 30)))
        self.assertEqual(period_bounds("quarterly", date(2026, 12, 1)),
                         (date(2026, 10, 1), date(2026, 12, 31)))

    def test_lock_date(self):
        # billing day 15 leaves a full 7-day window after the period: D is the 15th
        self.assertEqual(lock_date_for("monthly", 15, 7, date(2026, 3, 31)), date(2026, 4, 15))
        # billing day 1 would leave no window: D moves to the end of a full window
        self.assertEqual(lock_date_for("monthly", 1, 7, date(2026, 3, 31)), date(2026, 4, 8))
        # weekly, statement on Friday (5): period ends Sunday 8 March, window 3 days
        self.assertEqual(lock_date_for("weekly", 5, 3, date(2026, 3, 8)), date(2026, 3, 13))
        self.assertEqual(lock_date_for("weekly", 2, 3, date(2026, 3, 8)), date(2026, 3, 12))
        self.assertEqual(lock_date_for("quarterly", 10, 7, date(2026, 6, 30)), date(2026, 7, 10))

    @freeze_time("2026-03-20 10:00:00")
    def test_period_record_dates(self):
        period = self.Period._get_or_create(self.contract, date(2026, 3, 20))
        self.assertEqual((period.date_start, period.date_end), (date(2026, 3, 1), date(2026, 3, 31)))
        self.assertEqual(period.lock_date, date(2026, 4, 8))
        self.assertEqual(period.window_date, date(2026, 4, 1))
        self.assertEqual(period.state, "open")
        self.assertEqual(self.Period._get_or_create(self.contract, date(2026, 3, 1)), period)


@tagged("post_install", "-at_install")
class TestPeriodAssignment(PeriodCase):

    @freeze_time("2026-04-02 10:00:00")
    def test_cdr_goes_to_period_of_local_end_date(self):
        # 31 March 22:30 UTC is 1 April 00:30 in Paris: the April period
        april = self._session("2026-03-31T22:30:00")
        march = self._session("2026-03-31T21:30:00")
        self.assertEqual(april.period_id.date_start, date(2026, 4, 1))
        self.assertEqual(march.period_id.date_start, date(2026, 3, 1))
        # shown in the local time of the network (Paris, summer time since 29 March)
        self.assertEqual(april.end_local, "2026-04-01 00:30:00")
        self.assertEqual(april.start_local, "2026-03-31 23:30:00")
        self.assertEqual(april.duration_display, "1:00")
        self.assertEqual(april._portal_row()["date"].isoformat(), "2026-04-01T00:30:00")
        self.assertFalse(april.is_late or march.is_late)
        self.assertEqual(march.period_id.cdr_count, 1)
        self.assertAlmostEqual(march.period_id.amount_untaxed, march.amount_untaxed)
        self.assertTrue(march.amount_untaxed > 0)

    def test_sessions_of_past_periods_looked_up_once_per_period(self):
        """A batch of sessions of 90 past days (their periods past their lock date) goes to
        the open period, flagged late, with one period look-up per period, not per day."""
        model = self.env["clearing.cdr"]
        with freeze_time("2026-05-20 10:00:00"):
            cdrs = model.browse()
            for i in range(90):
                end = datetime(2026, 1, 1, 12, 0) + timedelta(days=i)
                cdrs |= self._session(end.isoformat())
            cdrs.write({"period_id": False, "is_late": False})
            self.env.flush_all()
            searches = []
            search = type(self.Period)._search

            def counting_search(period_model, domain, *args, **kwargs):
                searches.append(domain)
                return search(period_model, domain, *args, **kwargs)

            with patch.object(type(self.Period), "_search", counting_search):
                cdrs.assign_period()
        self.assertEqual(set(cdrs.mapped("period_id.date_start")), {date(2026, 5, 1)})
        self.assertTrue(all(cdrs.mapped("is_late")))
        # January, February, March (the days of the 90 sessions), then the steps from each to
        # the open period of May: a handful, not one chain of steps per day
        self.assertLessEqual(len(searches), 12, searches)

    def test_unmatched_cdr_has_no_period(self):
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", issuer=("NL", "XXX"))
        self.assertEqual(cdr.match_state, "unmatched")
        self.assertFalse(cdr.period_id)

    def test_late_cdr_goes_to_next_open_period_and_locked_never_reopens(self):
        with freeze_time("2026-03-20 10:00:00"):
            first = self._session("2026-03-10T10:00:00")
        march = first.period_id
        with freeze_time("2026-04-08 06:00:00"):
            self.Period._cron_lock_periods()
        self.assertEqual(march.state, "locked")
        with freeze_time("2026-04-09 09:00:00"):
            late = self._session("2026-03-30T10:00:00")
        self.assertTrue(late.is_late)
        self.assertEqual(late.period_id.date_start, date(2026, 4, 1))
        self.assertFalse(late.locked)
        self.assertEqual(march.state, "locked")
        self.assertEqual(march.cdr_count, 1)
        self.assertEqual(late.period_id.late_count, 1)

    def test_cdr_past_its_lock_date_is_late_even_without_period(self):
        # the March period was never created and its statement date (8 April) is over
        with freeze_time("2026-04-20 09:00:00"):
            late = self._session("2026-03-15T10:00:00")
        self.assertTrue(late.is_late)
        self.assertEqual(late.period_id.date_start, date(2026, 4, 1))


@tagged("post_install", "-at_install")
class TestPeriodCron(PeriodCase):

    def test_cron_creates_period_and_opens_window_with_email(self):
        with freeze_time("2026-03-20 10:00:00"):
            self.Period._cron_open_periods()
            period = self.Period.search([("contract_id", "=", self.contract.id)])
            self.assertEqual(len(period), 1)
            self.assertEqual(period.date_start, date(2026, 3, 1))
            self.assertEqual(period.state, "open")
            self._session("2026-03-12T08:00:00")
        with freeze_time("2026-03-31 21:00:00"):  # 23:00 in Paris: not yet
            self.Period._cron_open_periods()
            self.assertEqual(period.state, "open")
        with freeze_time("2026-03-31 22:30:00"):  # 1 April 00:30 in Paris
            self.Period._cron_open_periods()
        self.assertEqual(period.state, "control")
        self.assertTrue(period.window_notified)
        message = period.message_ids.filtered(
            lambda m: self.billing_contact in m.partner_ids)
        self.assertEqual(len(message), 1)
        self.assertIn("/my/clearing/periods/%s" % period.id, message.body)
        self.assertIn("2026-04-08", message.body)
        # the April period now exists too
        self.assertEqual(
            self.Period.search_count([("contract_id", "=", self.contract.id)]), 2)
        # a second run does not notify again
        with freeze_time("2026-04-02 10:00:00"):
            self.Period._cron_open_periods()
        self.assertEqual(len(period.message_ids.filtered(
            lambda m: self.billing_contact in m.partner_ids)), 1)

    def test_no_period_before_contract_start_or_for_draft(self):
        draft = self._contract(activate=False, date_start="2026-01-01")
        future = self._contract(date_start="2026-06-01")
        ended = self._contract(date_start="2026-01-01", date_end="2026-02-28")
        with freeze_time("2026-03-20 10:00:00"):
            self.Period._cron_open_periods()
        self.assertFalse(self.Period.search(
            [("contract_id", "in", (draft + future + ended).ids)]))
        self.assertTrue(self.Period.search([("contract_id", "=", self.contract.id)]))

    def test_crons_cover_every_company(self):
        other = self.env["res.company"].create({"name": "Other CPO company"})
        emsp = self.env["res.partner"].create({
            "name": "eMSP of the other company", "is_company": True, "company_id": other.id,
            "ocpi_country_code": "FR", "ocpi_party_id": "OTH", "ocpi_is_emsp": True})
        contract = self.env["clearing.contract"].with_company(other).create({
            "partner_id": emsp.id, "company_id": other.id, "currency_id": self.eur.id,
            "date_start": "2026-01-01", "tz": "Europe/Paris",
            "price_line_ids": [(0, 0, {"dimension": "ENERGY", "price": 0.25})]})
        contract.with_company(other).action_activate()
        # a scheduled action running as a user of the main company only
        runner = self.Period.with_user(self.manager)
        self.assertNotIn(other, self.manager.company_ids)
        with freeze_time("2026-03-20 10:00:00"):
            runner._cron_open_periods()
        period = self.Period.sudo().search([("contract_id", "=", contract.id)])
        self.assertEqual(len(period), 1)
        with freeze_time("2026-04-09 10:00:00"):
            runner._cron_lock_periods()
        self.assertEqual(period.state, "locked")


@tagged("post_install", "-at_install")
class TestPeriodCronRecords(PeriodCase):

    def test_scheduled_actions_run(self):
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00")
        period = cdr.period_id
        with freeze_time("2026-04-01 10:00:00"):
            self.env.ref("emsp_clearing.ir_cron_clearing_period_open").method_direct_trigger()
        self.assertEqual(period.state, "control")
        with freeze_time("2026-04-08 10:00:00"):
            self.env.ref("emsp_clearing.ir_cron_clearing_period_lock").method_direct_trigger()
        self.assertEqual(period.state, "locked")
        self.assertTrue(cdr.locked)
