"""The eMSP's statement of account per contract on the portal: invoices, credit notes,
payments, open and overdue amounts, and each period's billed total next to what it disputed.
Over HTTP as portal users of two eMSPs, and in a real browser (tour)."""

import re
from datetime import date
from decimal import Decimal

from freezegun import freeze_time

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

from ..tools.statement import contract_statement
from .period_common import PeriodCase

LOCK_DAY = "2026-04-08 06:00:00"


def money(value):
    return Decimal(repr(float(value))).quantize(Decimal("0.01"))


@tagged("post_install", "-at_install")
class TestPortalStatement(HttpCase, PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        portal = cls.env.ref("base.group_portal")
        bank = cls.env["res.partner.bank"].create({
            "acc_number": "FR7630004000031234567890143",
            "partner_id": cls.company.partner_id.id,
        })
        journal = cls.env["account.journal"].create({
            "name": "Clearing Sales", "code": "CLST", "type": "sale",
            "company_id": cls.company.id, "bank_account_id": bank.id,
        })
        cls.contract.invoice_journal_id = journal
        cls.emsp_b = cls.env["res.partner"].create({
            "name": "Other eMSP", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "TEB", "ocpi_is_emsp": True, "email": "b@teb.example",
        })
        cls.contract_b = cls._contract(partner=cls.emsp_b, invoice_journal_id=journal.id,
                                       billing_frequency="monthly", billing_day=1,
                                       control_window_days=7)
        cls.user_a = cls.env["res.users"].create({
            "name": "Statement TEM", "login": "statement_tem", "password": "statement_tem",
            "partner_id": cls.billing_contact.id, "groups_id": [Command.set(portal.ids)],
        })
        contact_b = cls.env["res.partner"].create({
            "name": "Billing TEB", "email": "billing@teb.example", "parent_id": cls.emsp_b.id})
        cls.user_b = cls.env["res.users"].create({
            "name": "Statement TEB", "login": "statement_teb", "password": "statement_teb",
            "partner_id": contact_b.id, "groups_id": [Command.set(portal.ids)],
        })
        with freeze_time("2026-03-20 10:00:00"):
            cls.first = cls._session("2026-03-10T10:00:00", kwh=12.0)
            cls.disputed = cls._session("2026-03-11T10:00:00", kwh=30.0)
            cls.third = cls._session("2026-03-12T10:00:00", kwh=20.0)
            cls.other = cls._session("2026-03-12T11:00:00", kwh=8.0, issuer=("FR", "TEB"))
        cls.period = cls.first.period_id
        with freeze_time("2026-04-02 10:00:00"):
            (cls.period | cls.other.period_id)._open_window()
            dispute = cls.Dispute._raise(cls.disputed, "wrong_energy", "Our meter says 25 kWh",
                                         user=cls.user_a)
            dispute.answer = "The meter values confirm 30 kWh."
            dispute.action_reject()
        with freeze_time(LOCK_DAY):
            cls.Period._cron_lock_periods()
            cls.Period._cron_invoice_periods()
        cls.invoice = cls.period.invoice_id
        with freeze_time("2026-04-12 10:00:00"):
            cls.first._create_dispute_credit()
            cls.Period._cron_invoice_periods()
        cls.refund = cls.period.move_ids - cls.invoice
        with freeze_time("2026-04-20 10:00:00"):
            cls.env["account.payment.register"].with_context(
                active_model="account.move", active_ids=cls.invoice.ids).create({
                    "amount": 10.0, "payment_date": "2026-04-20",
                    "communication": "TEM transfer 42",
                })._create_payments()
        assert cls.invoice.state == "posted" and cls.refund.move_type == "out_refund"

    def test_statement_figures(self):
        today = date(2026, 12, 5)
        statement = contract_statement(self.period.move_ids, today)
        totals = statement["totals"]
        self.assertEqual(totals["invoiced"], money(self.invoice.amount_total))
        self.assertEqual(totals["credited"], money(self.refund.amount_total))
        self.assertEqual(totals["paid"], Decimal("10.00"))
        open_amount = money(self.invoice.amount_residual) - money(self.refund.amount_residual)
        self.assertEqual(totals["open"], open_amount)
        self.assertEqual(totals["balance"], open_amount)  # the ledger and the statement agree
        self.assertEqual(totals["overdue"], money(self.invoice.amount_residual))
        self.assertEqual([e["kind"] for e in statement["entries"]],
                         ["invoice", "refund", "payment"])
        payment = statement["entries"][-1]
        self.assertEqual(payment["date"], fields.Date.to_date("2026-04-20"))
        self.assertIn("TEM transfer 42", payment["reference"])
        self.assertEqual(payment["move"], self.invoice)
        # before the due date nothing is overdue
        self.assertEqual(contract_statement(self.period.move_ids, date(2026, 4, 8))
                         ["totals"]["overdue"], Decimal(0))

    def _numbers(self, html, css_class):
        """The amounts of the cells of ``css_class`` as Decimals."""
        cells = re.findall(r'class="[^"]*%s[^"]*"[^>]*>([^<]*)<' % css_class, html)
        return [Decimal(re.sub(r"[^\d.-]", "", cell.replace("\xa0", "").replace(",", "")))
                for cell in cells]

    def test_statement_pages(self):
        self.authenticate("statement_tem", "statement_tem")
        periods = self.url_open("/my/clearing/periods")
        self.assertIn('href="/my/clearing/statements"', periods.text)
        listing = self.url_open("/my/clearing/statements")
        self.assertEqual(listing.status_code, 200)
        self.assertIn(self.contract.name, listing.text)
        self.assertNotIn(self.contract_b.name, listing.text)
        page = self.url_open("/my/clearing/statements/%s" % self.contract.id)
        self.assertEqual(page.status_code, 200)
        text = page.text
        for reference in (self.invoice.name, self.refund.name, "TEM transfer 42"):
            self.assertIn(reference, text)
        open_amount = money(self.invoice.amount_residual) - money(self.refund.amount_residual)
        self.assertEqual(self._numbers(text, "o_clearing_open")[0], open_amount)
        self.assertEqual(self._numbers(text, "o_clearing_overdue")[0],
                         money(self.invoice.amount_residual))
        # each period's billed total next to what was disputed (the rejected session); newest
        # first: April holds the credit CDR (billed by the credit note of March), nothing billed
        self.assertEqual(self._numbers(text, "o_clearing_billed"),
                         [Decimal("0.00"), money(self.invoice.amount_total)])
        self.assertEqual(self._numbers(text, "o_clearing_disputed"),
                         [Decimal("0.00"), money(self.disputed.amount_total)])
        self.assertEqual(text.count("o_clearing_entry_payment"), 1)
        # the home page counts the statements
        counters = self.make_jsonrpc_request(
            "/my/counters", {"counters": ["clearing_statement_count"]})
        self.assertEqual(counters["clearing_statement_count"], 1)

    def test_other_emsp_gets_not_found(self):
        self.authenticate("statement_teb", "statement_teb")
        response = self.url_open("/my/clearing/statements/%s" % self.contract.id)
        self.assertEqual(response.status_code, 404)
        self.assertNotIn(self.invoice.name, response.text)
        own = self.url_open("/my/clearing/statements/%s" % self.contract_b.id)
        self.assertEqual(own.status_code, 200)
        self.assertNotIn(self.invoice.name, own.text)
        self.assertEqual(self.url_open("/my/clearing/statements/999999").status_code, 404)
        # signed out: to the login page
        self.logout()
        response = self.url_open("/my/clearing/statements/%s" % self.contract.id,
                                 allow_redirects=False)
        self.assertIn(response.status_code, (302, 303))
        self.assertIn("/web/login", response.headers["Location"])

    def test_tour_statement(self):
        self.start_tour("/my", "emsp_clearing_portal_statement", login="statement_tem")
