from freezegun import freeze_time

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .period_common import PeriodCase


@tagged("post_install", "-at_install")
class TestDispute(PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with freeze_time("2026-03-20 10:00:00"):
            cls.cdr = cls._session("2026-03-10T10:00:00", kwh=12.0)
            cls.other = cls._session("2026-03-11T10:00:00", kwh=30.0)
        cls.period = cls.cdr.period_id

    def _open(self):
        with freeze_time("2026-04-02 10:00:00"):
            self.period._open_window()

    def _notifications(self, dispute):
        return dispute.message_ids.filtered(lambda m: self.billing_contact in m.partner_ids)

    def test_only_during_control_window(self):
        with self.assertRaises(UserError):
            self.Dispute._raise(self.cdr, "wrong_energy", "Too much energy")
        self._open()
        with self.assertRaises(UserError):
            self.Dispute._raise(self.cdr, "wrong_energy", "  ")
        with self.assertRaises(UserError):
            self.Dispute._raise(self.cdr, "not_a_reason", "x")
        dispute = self.Dispute._raise(self.cdr, "wrong_energy", "Too much energy")
        self.assertEqual(dispute.state, "open")
        self.assertEqual(dispute.partner_id, self.emsp)
        self.assertTrue(dispute.name.startswith("DSP-"))
        self.assertEqual(self.cdr.dispute_state, "open")
        with self.assertRaises(ValidationError):
            self.Dispute._raise(self.cdr, "other", "again")
        with freeze_time("2026-04-08 06:00:00"):
            self.Period._cron_lock_periods()
        with self.assertRaises(UserError):
            self.Dispute._raise(self.other, "duplicate", "After the lock")

    def test_contract_followers_are_told_of_a_new_dispute(self):
        self.contract.message_subscribe(partner_ids=self.manager.partner_id.ids)
        self._open()
        dispute = self.Dispute._raise(self.cdr, "duplicate", "Twice the same session")
        self.assertIn(self.manager.partner_id, dispute.message_partner_ids)
        self.assertNotIn(self.emsp, dispute.message_partner_ids)
        raised = dispute.message_ids.filtered(lambda m: "Twice the same session" in m.body)
        self.assertIn(self.manager.partner_id, raised.notified_partner_ids)

    def test_accept_excludes_session_before_lock(self):
        self._open()
        total_before = self.period.amount_total
        dispute = self.Dispute._raise(self.cdr, "unknown_token", "Not our customer")
        dispute = dispute.with_user(self.clearing_user)
        dispute.answer = "Token mistakenly attributed; removed."
        dispute.action_accept()
        self.assertEqual(dispute.state, "accepted")
        self.assertEqual(self.cdr.state, "excluded")
        self.assertEqual(self.cdr.dispute_state, "accepted")
        self.assertFalse(dispute.credit_cdr_id)
        self.assertAlmostEqual(self.period.amount_total, total_before - self.cdr.amount_total)
        self.assertEqual(self.period.excluded_count, 1)
        mails = self._notifications(dispute)
        self.assertEqual(len(mails), 1)
        self.assertIn("accepted", mails.body)
        self.assertIn("Token mistakenly attributed", mails.body)
        # the link is the dispute's portal URL (its page shows the session), with its token
        self.assertIn("/my/clearing/dispute/%s?access_token=%s" % (
            dispute.id, dispute.sudo().access_token), mails.body)
        with self.assertRaises(UserError):
            dispute.action_reject()

    def test_accept_with_credit_amount(self):
        self._open()
        dispute = self.Dispute._raise(self.other, "wrong_tariff", "Price per kWh is 0.25")
        dispute = dispute.with_user(self.clearing_user)
        dispute.write({"resolution": "credit", "credit_amount": 100.0})
        with self.assertRaises(UserError):  # more than the session
            dispute.action_accept()
        dispute.credit_amount = 0.0
        with self.assertRaises(UserError):
            dispute.action_accept()
        dispute.credit_amount = 1.5
        with freeze_time("2026-04-03 10:00:00"):
            dispute.action_accept()
        credit = dispute.credit_cdr_id
        self.assertEqual(credit.period_id, self.period, "not locked yet: same period")
        self.assertFalse(credit.is_late)
        self.assertAlmostEqual(credit.amount_untaxed, -1.5)
        self.assertAlmostEqual(credit.amount_total, -1.8)
        self.assertEqual(self.other.state, "priced")
        self.assertAlmostEqual(
            self.period.amount_untaxed,
            self.cdr.amount_untaxed + self.other.amount_untaxed - 1.5)
        self.assertIn("credit", self._notifications(dispute).body)

    def test_reject_needs_an_answer(self):
        self._open()
        dispute = self.Dispute._raise(self.cdr, "wrong_duration", "Too long")
        dispute = dispute.with_user(self.clearing_user)
        with self.assertRaises(UserError):
            dispute.action_reject()
        dispute.answer = "The meter values are signed and consistent."
        dispute.action_reject()
        self.assertEqual(dispute.state, "rejected")
        self.assertEqual(self.cdr.state, "priced")
        self.assertEqual(self.cdr.dispute_state, "rejected")
        self.assertIn("rejected", self._notifications(dispute).body)

    def test_request_information_then_reply(self):
        self._open()
        dispute = self.Dispute._raise(self.cdr, "other", "Strange session")
        dispute = dispute.with_user(self.clearing_user)
        with self.assertRaises(UserError):
            dispute.action_request_info()
        dispute.answer = "Which vehicle was it?"
        dispute.action_request_info()
        self.assertEqual(dispute.state, "info")
        self.assertEqual(self.cdr.dispute_state, "info")
        self.assertIn("Which vehicle was it?", self._notifications(dispute).body)
        with self.assertRaises(UserError):
            dispute.sudo()._reply("")
        dispute.sudo()._reply("A fleet van, plate AB-123-CD")
        self.assertEqual(dispute.state, "open")
        self.assertIn("AB-123-CD", dispute.message_ids[0].body)
        with self.assertRaises(UserError):
            dispute.sudo()._reply("twice")

    def test_disputes_are_kept(self):
        self._open()
        dispute = self.Dispute._raise(self.cdr, "other", "Strange session")
        with self.assertRaises(UserError):
            dispute.unlink()

    def test_only_clearing_users_answer(self):
        self._open()
        dispute = self.Dispute._raise(self.cdr, "other", "Strange session")
        portal = self.env["res.users"].create({
            "name": "Portal TEM", "login": "portal_tem_dispute", "partner_id":
            self.billing_contact.id,
            "groups_id": [(6, 0, [self.env.ref("base.group_portal").id])],
        })
        with self.assertRaises(Exception):
            dispute.with_user(portal).action_accept()
        self.assertEqual(dispute.state, "open")
