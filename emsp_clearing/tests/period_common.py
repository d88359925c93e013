"""Shared set-up of the clearing period, lock, dispute and portal tests."""

from datetime import datetime, timedelta

from odoo import Command

from freezegun import freeze_time

from .common import ClearingCase, make_ocpi_cdr


class PeriodCase(ClearingCase):
    """A monthly contract (billing day 1, 7-day window, Europe/Paris) with an eMSP that has a
    billing contact, and helpers to ingest sessions."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.billing_contact = cls.env["res.partner"].create({
            "name": "Billing Desk TEM", "email": "billing@tem.example", "parent_id": cls.emsp.id,
        })
        cls.emsp.write({
            "email": "contact@tem.example",
            "clearing_billing_contact_ids": [Command.set(cls.billing_contact.ids)],
        })
        cls.contract = cls._contract(
            lines=[{"dimension": "ENERGY", "price": 0.30}, {"dimension": "FLAT", "price": 1.0}],
            billing_frequency="monthly", billing_day=1, control_window_days=7,
        )
        cls.Cdr = cls.env["clearing.cdr"]
        cls.Period = cls.env["clearing.period"]
        cls.Dispute = cls.env["clearing.dispute"]
        cls.manager = cls.env["res.users"].create({
            "name": "Clearing Manager", "login": "clearing_mgr_p4",
            "email": "mgr@example.com",
            "groups_id": [Command.set([cls.env.ref("emsp_clearing.group_clearing_manager").id])],
        })
        cls.clearing_user = cls.env["res.users"].create({
            "name": "Clearing Clerk", "login": "clearing_user_p4",
            "email": "clerk@example.com",
            "groups_id": [Command.set([cls.env.ref("emsp_clearing.group_clearing_user").id])],
        })
        cls._seq = 0

    @classmethod
    def _session(cls, end, kwh=10.0, minutes=60, issuer=("FR", "TEM"), **extra):
        """Ingest one priced session ending at ``end`` (naive UTC datetime or ISO string)."""
        cls._seq += 1
        end = end if isinstance(end, datetime) else datetime.fromisoformat(end)
        start = end - timedelta(minutes=minutes)
        data = make_ocpi_cdr(
            "P4-%05d" % cls._seq, start, [(0, {"ENERGY": kwh, "TIME": minutes / 60})],
            end=end, issuer=issuer, **extra,
        )
        return cls.env["clearing.cdr"].ingest_ocpi(data)


class RematchCase(PeriodCase):
    """Tests of rule changes (contract or partner identity) that move CDRs: three priced
    sessions of ``cls.contract`` received on 2026-03-20 (``march_10``: 12 kWh, ``march_11``:
    20 kWh, ``april_5``: 10 kWh) and the assertions of such tests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with freeze_time("2026-03-20 10:00:00"):
            cls.march_10 = cls._session("2026-03-10T10:00:00", kwh=12.0)
            cls.march_11 = cls._session("2026-03-11T10:00:00", kwh=20.0)
            cls.april_5 = cls._session("2026-04-05T10:00:00", kwh=10.0)

    def snapshot(self, cdrs):
        """What a rule change must leave alone on a CDR that still fits."""
        return {cdr.id: (cdr.contract_id, cdr.partner_id, cdr.period_id, cdr.state,
                         cdr.amount_untaxed, cdr.amount_total, cdr.priced_date,
                         cdr.unmatched_reason)
                for cdr in cdrs}

    def assertDetached(self, cdr, reason):
        self.assertFalse(cdr.contract_id)
        self.assertEqual(cdr.match_state, "unmatched")
        self.assertEqual(cdr.state, "unmatched")
        self.assertEqual(cdr.unmatched_reason, reason)
        self.assertEqual((cdr.amount_untaxed, cdr.amount_tax, cdr.amount_total), (0, 0, 0))
        self.assertFalse(cdr.priced_date)
        self.assertFalse(cdr.period_id)

    def _lock_march(self, cdrs=None):
        """Lock the March periods: of every contract, or of ``cdrs`` only."""
        with freeze_time("2026-04-08 06:00:00"):
            if cdrs is None:
                self.Period._cron_lock_periods()
            else:
                cdrs.period_id._lock()
        self.assertTrue(self.march_10.locked and self.march_11.locked)
        self.assertFalse(self.april_5.locked)
