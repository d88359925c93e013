from datetime import date

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import tagged

from .period_common import PeriodCase


@tagged("post_install", "-at_install")
class TestLock(PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with freeze_time("2026-03-20 10:00:00"):
            cls.cdr_a = cls._session("2026-03-10T10:00:00", kwh=12.0)
            cls.cdr_b = cls._session("2026-03-11T10:00:00", kwh=20.0)
        cls.march = cls.cdr_a.period_id

    def _lock_march(self):
        with freeze_time("2026-04-08 06:00:00"):
            self.Period._cron_lock_periods()

    def test_cron_locks_at_statement_date_only(self):
        with freeze_time("2026-04-07 21:00:00"):  # 23:00 in Paris, 7 April
            self.Period._cron_lock_periods()
        self.assertEqual(self.march.state, "open")
        self.assertFalse(self.cdr_a.locked)
        self._lock_march()
        self.assertEqual(self.march.state, "locked")
        self.assertTrue(self.march.locked_on)
        self.assertTrue(self.cdr_a.locked and self.cdr_b.locked)
        self.assertEqual((self.cdr_a.state, self.cdr_b.state), ("locked", "locked"))
        self.assertEqual(self.march.billable_count, 2)

    def test_locked_cdr_refuses_every_write_even_for_managers(self):
        self._lock_march()
        amount = self.cdr_a.amount_untaxed
        for env in (self.env, self.env(user=self.manager), self.env(su=True)):
            cdr = self.cdr_a.with_env(env)
            with self.assertRaises(UserError):
                cdr.write({"amount_untaxed": 0.0})
            with self.assertRaises(UserError):
                cdr.write({"contract_id": False})
            with self.assertRaises(UserError):
                cdr.unlink()
        with self.assertRaises(UserError):
            self.cdr_a.with_user(self.manager).action_reprice()
        with self.assertRaises(UserError):
            self.cdr_a.with_user(self.manager)._match_and_price()
        with self.assertRaises(UserError):
            (self.cdr_a | self.cdr_b)._exclude_from_billing()
        # the discussion stays open: a note with a document on the locked session
        attachment = self.env["ir.attachment"].with_user(self.manager).create(
            {"name": "proof.txt", "raw": b"ok"})
        self.cdr_a.with_user(self.manager).message_post(
            body="Checked with the eMSP", attachment_ids=attachment.ids)
        self.assertIn(attachment, self.cdr_a.message_ids.attachment_ids)
        self.cdr_a.invalidate_recordset()
        self.assertEqual(self.cdr_a.amount_untaxed, amount)
        self.assertEqual(self.cdr_a.state, "locked")

    def test_locked_period_refuses_every_write(self):
        self._lock_march()
        for env in (self.env, self.env(user=self.manager), self.env(su=True)):
            period = self.march.with_env(env)
            with self.assertRaises(UserError):
                period.write({"state": "open"})
            with self.assertRaises(UserError):
                period.write({"lock_date": date(2026, 5, 1)})
            with self.assertRaises(UserError):
                period.unlink()
            with self.assertRaises(UserError):
                period.action_lock()
        self.assertEqual(self.march.state, "locked")
        self.assertEqual(self.march.lock_date, date(2026, 4, 8))

    def test_credit_operation_creates_new_record_after_lock(self):
        self.contract.open_dispute_policy = "bill"
        with freeze_time("2026-04-02 10:00:00"):
            self.march._open_window()
            dispute = self.Dispute._raise(self.cdr_a, "wrong_energy", "Meter says 10 kWh")
        self._lock_march()
        self.assertTrue(self.cdr_a.locked, "policy 'bill': the disputed session is billed")
        with freeze_time("2026-04-10 10:00:00"):
            dispute.with_user(self.clearing_user).write({"resolution": "credit", "credit_amount": 0.6})
            dispute.with_user(self.clearing_user).action_accept()
        credit = dispute.credit_cdr_id
        self.assertTrue(credit.credit and credit.dispute_credit)
        self.assertEqual(credit.credited_cdr_id, self.cdr_a)
        self.assertAlmostEqual(credit.amount_untaxed, -0.6)
        self.assertAlmostEqual(credit.amount_tax, -0.12)
        self.assertAlmostEqual(credit.amount_total, -0.72)
        self.assertEqual(credit.period_id.date_start, date(2026, 4, 1))
        self.assertTrue(credit.is_late)
        self.assertFalse(credit.locked)
        self.assertEqual(self.cdr_a.state, "locked")
        self.assertEqual(self.march.billable_count, 2)

    def test_full_credit_of_locked_session(self):
        self.contract.open_dispute_policy = "bill"
        with freeze_time("2026-04-02 10:00:00"):
            self.march._open_window()
            dispute = self.Dispute._raise(self.cdr_b, "duplicate", "Same as another session")
        self._lock_march()
        with freeze_time("2026-04-10 10:00:00"):
            dispute.with_user(self.clearing_user).action_accept()
        credit = dispute.credit_cdr_id
        self.assertAlmostEqual(credit.amount_total, -self.cdr_b.amount_total)
        self.assertAlmostEqual(credit.energy_kwh, -self.cdr_b.energy_kwh)
        self.assertEqual(self.cdr_b.state, "locked")
        self.assertEqual(self.cdr_b.dispute_state, "accepted")

    def test_open_dispute_carried_at_lock_by_default(self):
        self.assertEqual(self.contract.open_dispute_policy, "carry")
        with freeze_time("2026-04-02 10:00:00"):
            self.march._open_window()
            self.Dispute._raise(self.cdr_b, "wrong_tariff", "Not our tariff")
        self._lock_march()
        self.assertTrue(self.cdr_a.locked)
        self.assertFalse(self.cdr_b.locked)
        self.assertEqual(self.cdr_b.carried_from_period_id, self.march)
        self.assertEqual(self.cdr_b.period_id.date_start, date(2026, 4, 1))
        self.assertEqual(self.cdr_b.state, "priced")
        self.assertEqual(self.march.cdr_count, 1)
        self.assertAlmostEqual(self.march.amount_total, self.cdr_a.amount_total)
