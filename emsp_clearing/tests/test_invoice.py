"""Invoicing of locked clearing periods: one exact move per period, sent, exactly once."""

from datetime import datetime, timedelta
from decimal import Decimal

import psycopg2
from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged
from odoo.tools import mute_logger
from odoo.addons.account.tools.structured_reference import is_valid_structured_reference_iso

from .period_common import PeriodCase

LOCK_DAY = "2026-04-08 06:00:00"


@tagged("post_install", "-at_install")
class TestInvoice(PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bank = cls.env["res.partner.bank"].create({
            "acc_number": "FR7630004000031234567890143",
            "partner_id": cls.company.partner_id.id,
        })
        cls.sale_journal = cls.env["account.journal"].create({
            "name": "Clearing Sales", "code": "CLRS", "type": "sale",
            "company_id": cls.company.id, "bank_account_id": cls.bank.id,
        })
        cls.purchase_journal = cls.env["account.journal"].create({
            "name": "Clearing Bills", "code": "CLRB", "type": "purchase",
            "company_id": cls.company.id,
        })
        cls.contract.invoice_journal_id = cls.sale_journal
        cls.Move = cls.env["account.move"]

    def _lock_and_invoice(self, periods=None):
        with freeze_time(LOCK_DAY):
            if periods is None:
                self.Period._cron_lock_periods()
            else:
                periods._lock()
            self.Period._cron_invoice_periods()

    def _awkward_contract(self, **vals):
        return self._contract(
            lines=[{"dimension": "ENERGY", "price": 0.49}, {"dimension": "TIME", "price": 3.6},
                   {"dimension": "FLAT", "price": 0.35}],
            billing_frequency="monthly", billing_day=1, control_window_days=7,
            invoice_journal_id=self.sale_journal.id, name="AWK", **vals)

    def _awkward_sessions(self, count=60):
        """Sessions whose per-session rounding drifts from volume x price."""
        cdrs = self.Cdr
        with freeze_time("2026-03-20 10:00:00"):
            for i in range(count):
                kwh = [0.4567, 1.2345, 7.777, 0.001, 33.3333][i % 5] + i * 0.0011
                cdrs |= self._session(datetime(2026, 3, 1 + i % 28, 8) + timedelta(minutes=i),
                                      kwh=round(kwh, 4), minutes=7 + i % 13)
        return cdrs

    # ------------------------------------------------------------------ the invoice
    def test_invoice_exact_to_the_cent(self):
        self.contract.state = "closed"
        self._awkward_contract()
        cdrs = self._awkward_sessions()
        period = cdrs.period_id
        self.assertEqual(len(period), 1)
        expected = sum(Decimal(repr(a)) for a in cdrs.mapped("amount_untaxed"))
        # the drift that a plain volume x price line would leave
        volume = sum(Decimal(repr(k)) for k in cdrs.mapped("energy_kwh"))
        energy = sum(Decimal(repr(a)) for a in cdrs.mapped("amount_energy"))
        self.assertNotEqual((volume * Decimal("0.49")).quantize(Decimal("0.01")), energy)
        self._lock_and_invoice()
        move = period.invoice_id
        self.assertEqual(move.move_type, "out_invoice")
        self.assertEqual(move.state, "posted")
        self.assertEqual(Decimal(repr(move.amount_untaxed)).quantize(Decimal("0.01")), expected)
        for line in move.invoice_line_ids:
            self.assertEqual(move.currency_id.round(line.quantity * line.price_unit),
                             line.price_subtotal)
        energy_line = move.invoice_line_ids.filtered(
            lambda line: line.product_id == self.env.ref("emsp_clearing.product_clearing_energy"))
        self.assertEqual(energy_line.price_unit, 0.49)
        self.assertEqual(energy_line.product_uom_id, self.env.ref("emsp_clearing.uom_kwh"))
        self.assertEqual(Decimal(repr(energy_line.price_subtotal)), energy)
        self.assertIn("Energy, 0.49 €/kWh: ", energy_line.name)
        self.assertIn("60 sessions", energy_line.name)
        self.assertEqual(move.invoice_date, period.lock_date)
        self.assertEqual(move.partner_id, self.emsp)
        self.assertEqual(move.journal_id, self.sale_journal)
        self.assertEqual(move.partner_bank_id, self.bank)
        self.assertEqual(move.clearing_period_id, period)
        self.assertEqual(move.clearing_contract_id, period.contract_id)
        self.assertEqual(cdrs.invoice_move_id, move)
        self.assertEqual(move.clearing_cdr_count, 60)
        self.assertEqual(period.state, "invoiced")
        self.assertEqual(period.invoice_count, 1)
        # RF structured creditor reference (ISO 11649) from the journal
        self.assertEqual(self.sale_journal.invoice_reference_model, "euro")
        self.assertTrue(move.payment_reference.startswith("RF"))
        self.assertTrue(is_valid_structured_reference_iso(move.payment_reference))
        # handed to Odoo's sending, in the transaction that posted it
        self.assertTrue(move.sending_data)
        self.assertEqual(move.action_view_clearing_period()["res_id"], period.id)
        self.assertEqual(
            self.Cdr.search(move.action_view_clearing_cdrs()["domain"]), cdrs)

    def test_fiscal_position_and_taxes(self):
        germany = self.env.ref("base.de")
        # the demo's own German position aside: this test's is the only one
        self.env["account.fiscal.position"].search([("country_id", "=", germany.id)]).active = False
        tax_zero = self.env["account.tax"].create({
            "name": "Reverse charge 0%", "amount": 0.0, "amount_type": "percent",
            "type_tax_use": "sale", "company_id": self.company.id})
        fpos = self.env["account.fiscal.position"].create({
            "name": "Intra-EU B2B (test)", "auto_apply": True, "vat_required": True,
            "country_id": germany.id, "company_id": self.company.id,
            "tax_ids": [Command.create({"tax_src_id": self.sale_tax.id,
                                        "tax_dest_id": tax_zero.id})],
        })
        self.emsp.write({"country_id": germany.id, "vat": "DE123456788"})
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=12.0)
        self._lock_and_invoice()
        move = cdr.invoice_move_id
        self.assertEqual(move.fiscal_position_id, fpos)
        self.assertEqual(move.invoice_line_ids.tax_ids, tax_zero)
        self.assertEqual(move.amount_tax, 0.0)
        self.assertEqual(move.amount_untaxed, cdr.amount_untaxed)

    def test_sales_tax_and_rates_in_another_currency(self):
        foreign = self.usd if self.company.currency_id == self.eur else self.eur
        foreign.active = True
        self.env["res.currency.rate"].create({
            "name": "2026-04-01", "rate": 2.0, "currency_id": foreign.id,
            "company_id": self.company.id})
        self.contract.state = "closed"
        contract = self._contract(
            lines=[{"dimension": "ENERGY", "price": 0.5}], currency_id=foreign.id,
            invoice_journal_id=self.sale_journal.id, name="FOREIGN")
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0, currency=foreign.name)
        self.assertEqual(cdr.contract_id, contract)
        self._lock_and_invoice()
        move = cdr.invoice_move_id
        self.assertEqual(move.currency_id, foreign)
        self.assertEqual(move.amount_untaxed, 5.0)
        self.assertEqual(move.amount_tax, 1.0)
        # Odoo's rate of the invoice date: 2 units of the contract currency per company unit
        self.assertAlmostEqual(move.amount_total_signed, 3.0)

    def test_late_excluded_and_credits(self):
        with freeze_time("2026-03-20 10:00:00"):
            billed = self._session("2026-03-10T10:00:00", kwh=10.0)
            excluded = self._session("2026-03-11T10:00:00", kwh=20.0)
        excluded._exclude_from_billing()
        march = billed.period_id
        self._lock_and_invoice(march)
        self.assertEqual(march.invoice_id.amount_untaxed, billed.amount_untaxed)
        self.assertFalse(excluded.invoice_move_id)
        # a late session of March lands in April, billed there and labelled late
        with freeze_time("2026-04-10 10:00:00"):
            late = self._session("2026-03-30T10:00:00", kwh=5.0)
            april_own = self._session("2026-04-09T10:00:00", kwh=7.0)
        self.assertTrue(late.is_late)
        april = late.period_id
        self.assertEqual(april_own.period_id, april)
        with freeze_time("2026-05-08 06:00:00"):
            self.Period._cron_lock_periods()
            self.Period._cron_invoice_periods()
        move = april.invoice_id
        late_lines = move.invoice_line_ids.filtered(lambda line: "late sessions" in line.name)
        self.assertEqual(sum(late_lines.mapped("price_subtotal")), late.amount_untaxed)
        self.assertEqual(move.amount_untaxed, late.amount_untaxed + april_own.amount_untaxed)

    # ------------------------------------------------------------------ credit notes
    def test_credit_note_reverses_the_credited_sessions(self):
        with freeze_time("2026-03-20 10:00:00"):
            first = self._session("2026-03-10T10:00:00", kwh=10.0)
            second = self._session("2026-03-11T10:00:00", kwh=20.0)
        period = first.period_id
        self._lock_and_invoice()
        invoice = period.invoice_id
        with freeze_time("2026-04-12 10:00:00"):
            credit = second._create_dispute_credit()
            partial = first._create_dispute_credit(amount_untaxed=1.5)
            self.Period._cron_invoice_periods()
        refund = period.move_ids - invoice
        self.assertEqual(refund.move_type, "out_refund")
        self.assertEqual(refund.state, "posted")
        self.assertEqual(refund.reversed_entry_id, invoice)
        self.assertEqual(refund.amount_untaxed, second.amount_untaxed + 1.5)
        self.assertEqual((credit | partial).invoice_move_id, refund)
        self.assertEqual((first | second).refund_move_id, refund)
        self.assertEqual(period.refund_count, 1)
        self.assertEqual(invoice.state, "posted")  # never edited
        # the April invoice does not bill the credits again
        with freeze_time("2026-05-08 06:00:00"):
            self.Period._cron_lock_periods()
            self.Period._cron_invoice_periods()
        self.assertEqual(credit.period_id.state, "nothing")
        self.assertFalse(credit.period_id.invoice_id)

    # ------------------------------------------------------------------ eMSP role
    def test_vendor_bill_and_cpo_invoice_difference(self):
        self.contract.state = "closed"
        contract = self._contract(
            partner=self.cpo, role="emsp", lines=[{"dimension": "ENERGY", "price": 0.4}],
            invoice_journal_id=self.purchase_journal.id, name="EMSP")
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0, sender=("DE", "CPX"),
                                issuer=("FR", "TST"))
        self.assertEqual(cdr.contract_id, contract)
        self._lock_and_invoice()
        bill = cdr.invoice_move_id
        self.assertEqual(bill.move_type, "in_invoice")
        self.assertEqual(bill.partner_id, self.cpo)
        self.assertEqual(bill.amount_untaxed, 4.0)
        self.assertEqual(bill.invoice_line_ids.tax_ids, self.purchase_tax)
        self.assertFalse(bill.sending_data)
        bill.write({"clearing_vendor_reference": "CPX-2026-0042",
                    "clearing_vendor_total": bill.amount_total + 0.3})
        self.assertTrue(bill.clearing_vendor_mismatch)
        self.assertAlmostEqual(bill.clearing_vendor_difference, 0.3)
        self.assertTrue(cdr.period_id.invoice_vendor_mismatch)
        bill.clearing_vendor_total = bill.amount_total
        self.assertFalse(cdr.period_id.invoice_vendor_mismatch)

    # ------------------------------------------------------------------ edges
    def test_nothing_to_invoice(self):
        with freeze_time("2026-03-20 10:00:00"):
            period = self.Period._get_or_create(self.contract, datetime(2026, 3, 5).date())
        self._lock_and_invoice(period)
        self.assertEqual(period.state, "nothing")
        self.assertFalse(period.move_ids)

    def test_no_bank_account_posts_nothing(self):
        self.sale_journal.bank_account_id = False
        company_banks = self.company.partner_id.bank_ids
        company_banks.active = False
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0)
        period = cdr.period_id
        self._lock_and_invoice()
        self.assertEqual(period.state, "locked")
        self.assertFalse(self.Move.search([("clearing_period_id", "=", period.id)]))
        activity = period.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertIn("no bank account", activity.note)
        self.assertIn("no bank account", period.message_ids[0].body)
        with freeze_time(LOCK_DAY):
            self.Period._cron_invoice_periods()  # no second activity
        self.assertEqual(len(period.activity_ids), 1)
        company_banks.active = True
        self.sale_journal.bank_account_id = self.bank
        with freeze_time(LOCK_DAY):
            self.Period._cron_invoice_periods()
        self.assertEqual(period.state, "invoiced")
        self.assertEqual(period.invoice_id.state, "posted")

    def test_partner_without_email_posted_not_sent(self):
        self.emsp.write({"email": False, "clearing_billing_contact_ids": [Command.clear()]})
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0)
        self._lock_and_invoice()
        move = cdr.invoice_move_id
        self.assertEqual(move.state, "posted")
        self.assertFalse(move.sending_data)
        self.assertIn("no e-mail address", move.activity_ids.note)

    def test_review_option_leaves_a_draft(self):
        self.contract.invoice_review = True
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0)
        self._lock_and_invoice()
        self.assertEqual(cdr.invoice_move_id.state, "draft")
        self.assertFalse(cdr.invoice_move_id.sending_data)
        self.assertEqual(cdr.period_id.state, "invoiced")

    def test_invoice_now_managers_only(self):
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0)
        period = cdr.period_id
        with freeze_time("2026-04-02 06:00:00"):
            period.with_user(self.manager).action_lock()
            with self.assertRaises(Exception):
                period.with_user(self.clearing_user).action_create_invoice()
            action = period.with_user(self.manager).action_create_invoice()
        self.assertEqual(action["res_id"], period.invoice_id.id)
        self.assertEqual(period.invoice_id.invoice_date, period.lock_date)

    # ------------------------------------------------------------------ exactly once
    def test_one_move_per_period(self):
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0)
        period = cdr.period_id
        self._lock_and_invoice()
        with freeze_time(LOCK_DAY):
            self.Period._cron_invoice_periods()
            self.assertFalse(period._invoice_period())
        self.assertEqual(len(self.Move.search([("clearing_period_id", "=", period.id)])), 1)
        # the unique index is the last guard, whoever creates the move
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.IntegrityError), \
                self.env.cr.savepoint():
            self.Move.create({
                "move_type": "out_invoice", "partner_id": self.emsp.id,
                "journal_id": self.sale_journal.id, "clearing_period_id": period.id,
            })

    def test_sent_once_by_odoo_sending(self):
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00", kwh=10.0)
        self._lock_and_invoice()
        move = cdr.invoice_move_id
        self.assertTrue(move.sending_data)
        # Odoo's batch cron sends what was handed to it, and clears it in the same transaction
        self.env["account.move"]._cron_account_move_send(job_count=20)
        self.assertFalse(move.sending_data)
        self.assertTrue(move.is_move_sent)
        sent = move.message_ids.filtered(lambda m: m.message_type == "comment" and m.partner_ids)
        self.assertEqual(len(sent), 1)
        self.env["account.move"]._cron_account_move_send(job_count=20)
        with freeze_time(LOCK_DAY):
            self.Period._cron_invoice_periods()
        self.assertEqual(move.message_ids.filtered(
            lambda m: m.message_type == "comment" and m.partner_ids), sent)
