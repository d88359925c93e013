"""Real browser (headless Chromium): the eMSP disputes on the portal, we accept it."""

from datetime import datetime, timedelta

from odoo import Command
from odoo.tests import HttpCase, tagged

from .period_common import PeriodCase


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
