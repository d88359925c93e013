"""Real browser (headless Chromium): the eMSP disputes on the portal, we accept it."""

from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.tests import HttpCase, tagged

from .period_common import PeriodCase
from .test_ocpi_v230 import stdlib_peer


@tagged("post_install", "-at_install")
class TestTours(HttpCase, PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.portal_user = cls.env["res.users"].create({
            "name": "Tour eMSP", "login": "tour_emsp", "password": "tour_emsp",
            "partner_id": cls.billing_contact.id,
            "groups_id": [Command.set(cls.env.ref("base.group_portal").ids)],
        })
        cls.clearing_user.password = "clearing_user_p4"
        now = datetime.now().replace(microsecond=0)
        cdrs = cls.env["clearing.cdr"]
        for index in range(4):
            cdrs |= cls._session(now - timedelta(minutes=20 + index), kwh=10.0 + index)
        location = dict(cdrs[0].raw_json["cdr_location"], evse_id="FR*TST*E9TOUR",
                        evse_uid="EVSE-TOUR")
        cls.target = cls._session(now - timedelta(minutes=5), kwh=8.0, cdr_location=location)
        cls.target.period_id._open_window()

    def test_portal_dispute_then_backend_accept(self):
        self.start_tour("/my/clearing/periods", "emsp_clearing_portal_dispute",
                        login="tour_emsp")
        dispute = self.target.dispute_ids
        self.assertEqual(len(dispute), 1)
        self.assertEqual(dispute.reason, "wrong_energy")
        self.assertEqual(dispute.raised_by_id, self.portal_user)
        self.assertEqual(dispute.state, "open")
        self.start_tour("/odoo/action-emsp_clearing.action_clearing_dispute",
                        "emsp_clearing_dispute_accept", login="clearing_user_p4")
        self.assertEqual(dispute.state, "accepted")
        self.assertEqual(dispute.answer, "Checked against the meter values: accepted.")
        self.assertEqual(self.target.state, "excluded")

    def test_overview_follow_a_figure(self):
        """The overview opens with the app; a card's open disputes open their list."""
        self.contract.description = "Tour overview"
        self.Dispute._raise(self.target, "wrong_energy", "Too much energy")
        self.start_tour("/odoo", "emsp_clearing_overview", login="clearing_user_p4")


@tagged("post_install", "-at_install")
class TestReverseBillingTour(HttpCase, PeriodCase):
    """A manager switches reverse billing on for an eMSP contract in the browser; the period's
    self-billed bill, numbered by us, shows the mention and its record delivered to the CPO."""

    def test_reverse_billing_option_then_self_billed_bill(self):
        self.contract.state = "closed"
        contract = self._contract(partner=self.cpo, role="emsp", name="EMSP-TOUR")
        self.manager.password = "clearing_mgr_p4"
        self.start_tour("/odoo/action-emsp_clearing.action_clearing_contract/%d" % contract.id,
                        "emsp_clearing_reverse_billing_option", login="clearing_mgr_p4")
        self.assertTrue(contract.reverse_billing)
        with stdlib_peer.StdlibPeer([], invoice_receiver=True) as peer:
            self.env["clearing.ocpi.connection"].create({
                "name": "CPX", "partner_id": self.cpo.id, "state": "registered",
                "version": "2.3.0", "token_b": peer.token_b, "endpoints": [
                    {"identifier": "invoicereconciliation", "role": "RECEIVER",
                     "url": peer.base + "/2.3.0/invoicereconciliation"}]})
            with freeze_time("2026-03-20 10:00:00"):
                cdr = self._session("2026-03-10T10:00:00", sender=("DE", "CPX"),
                                    issuer=("FR", "TST"))
            with freeze_time("2026-04-08 06:00:00"):
                self.Period._cron_lock_periods()
                self.Period._cron_invoice_periods()
            self.env["clearing.invoice.reconciliation"]._cron_deliver()
            bill = cdr.invoice_move_id
            self.assertEqual(list(peer.records),
                             bill.clearing_published_reconciliation_ids.mapped("ocpi_id"))
        self.start_tour("/odoo/action-account.action_move_in_invoice_type/%d" % bill.id,
                        "emsp_clearing_reverse_billing_bill", login="admin")  # an accountant
