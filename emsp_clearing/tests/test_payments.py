import base64
import os
from decimal import Decimal
from unittest.mock import patch

from lxml import etree

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.modules.module import get_module_path
from odoo.tests import tagged

from odoo.addons.account.tests.common import AccountTestInvoicingCommon

from freezegun import freeze_time

from ..models import account_bank_statement_line as statement_line_module
from .camt_files import Entry, camt053, camt054
from .period_common import PeriodCase

OUR_IBAN = "FR7630006000011234567890189"
IBAN_A = "DE89370400440532013000"
IBAN_B = "NL91ABNA0417164300"
IBAN_CPO = "GB29NWBK60161331926819"


@tagged("post_install", "-at_install")
class PaymentCase(AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.groups_id |= (cls.env.ref("emsp_clearing.group_clearing_manager")
                                   | cls.env.ref("account_payment_order.group_account_payment"))
        cls.company = cls.company_data["company"]
        cls.ccy = cls.company.currency_id
        cls.bank_journal = cls.company_data["default_journal_bank"]
        cls.bank_journal.bank_account_id = cls.env["res.partner.bank"].sudo().create({
            "acc_number": OUR_IBAN, "partner_id": cls.company.partner_id.id,
        })
        cls.company_data["default_journal_sale"].write({
            "invoice_reference_model": "euro", "invoice_reference_type": "invoice",
        })
        # bank accounts are created by those allowed to (Accounting / Payments)
        cls.emsp_a = cls.env["res.partner"].sudo().create({
            "name": "eMSP Alpha", "email": "billing@alpha.example",
            "bank_ids": [Command.create({"acc_number": IBAN_A})],
        })
        cls.emsp_b = cls.env["res.partner"].sudo().create({
            "name": "eMSP Beta", "bank_ids": [Command.create({"acc_number": IBAN_B})],
        })
        cls.other_ccy = cls.setup_other_currency("EUR") if cls.ccy.name != "EUR" else \
            cls.setup_other_currency("CHF")
        cls.writeoff_account = cls.company_data["default_account_expense"]
        cls.company.write({
            "clearing_pay_tolerance_amount": 1.0,
            "clearing_pay_tolerance_percent": 1.0,
            "clearing_pay_writeoff_account_id": cls.writeoff_account.id,
        })
        cls._seq = 0

    @classmethod
    def _invoice(cls, partner, amount, date="2026-11-01", due=None):
        invoice = cls.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": partner.id, "invoice_date": date,
            "invoice_date_due": due or date,
            "journal_id": cls.company_data["default_journal_sale"].id,
            "invoice_line_ids": [Command.create({
                "name": "Charging sessions", "price_unit": amount, "tax_ids": []})],
        })
        invoice.action_post()
        return invoice

    def _import(self, data, name="statement.xml"):
        wizard = self.env["account.statement.import"].with_context(
            journal_id=self.bank_journal.id).create({
                "statement_file": base64.b64encode(data), "statement_filename": name})
        result = wizard._import_file()
        return self.env["account.bank.statement"].browse(result["statement_ids"]).line_ids

    def _entry(self, amount, **kw):
        type(self)._seq += 1
        kw.setdefault("booking_date", "2026-12-01")
        kw.setdefault("bank_ref", "BANKREF%06d" % self._seq)
        return Entry(amount=Decimal(str(amount)), **kw)

    def _statement(self, *entries, msg="STMT"):
        return camt053(msg, OUR_IBAN, self.ccy.name, list(entries))


class TestPaymentMatching(PaymentCase):
    def test_full_matches_by_each_rule(self):
        inv_ref = self._invoice(self.emsp_a, 100.0)
        inv_num = self._invoice(self.emsp_a, 200.0)
        inv_iban = self._invoice(self.emsp_b, 150.0)
        inv_m1 = self._invoice(self.emsp_a, 40.0)
        inv_m2 = self._invoice(self.emsp_a, 60.5)
        self.assertTrue(inv_ref.payment_reference.startswith("RF"))
        spaced = inv_ref.payment_reference  # 'RF.. .... ....'
        self.assertIn(" ", spaced)
        data = self._statement(
            # the bank gives the RF reference without spaces
            self._entry(100.0, structured_ref=spaced.replace(" ", ""), party_name="Alpha",
                        party_iban=IBAN_A),
            self._entry(200.0, unstructured="Payment of invoice %s, thanks" % inv_num.name,
                        party_name="Alpha"),
            self._entry(150.0, unstructured="clearing november", party_name="Beta",
                        party_iban=IBAN_B),
            self._entry(100.5, unstructured="%s %s" % (inv_m1.payment_reference,
                                                      inv_m2.payment_reference)),
        )
        lines = self._import(data)
        self.assertEqual(len(lines), 4)
        self.assertEqual(lines.mapped("clearing_match_rule"), ["ref", "number", "iban", "multi"])
        for inv in inv_ref | inv_num | inv_iban | inv_m1 | inv_m2:
            self.assertEqual(inv.payment_state, "paid", inv.name)
        self.assertTrue(all(lines.mapped("is_reconciled")))
        self.assertFalse(self.env["clearing.payment.exception"].search(
            [("statement_line_id", "in", lines.ids)]))

    def test_exact_sum_of_partner_invoices(self):
        inv1 = self._invoice(self.emsp_b, 10.0)
        inv2 = self._invoice(self.emsp_b, 32.25)
        lines = self._import(self._statement(
            self._entry(42.25, unstructured="all open items", party_iban=IBAN_B)))
        self.assertEqual(lines.clearing_match_rule, "multi")
        self.assertEqual((inv1 | inv2).mapped("payment_state"), ["paid", "paid"])

    def test_same_file_twice(self):
        inv = self._invoice(self.emsp_a, 70.0)
        data = self._statement(self._entry(70.0, structured_ref=inv.payment_reference))
        lines = self._import(data)
        self.assertEqual(len(lines), 1)
        count = self.env["account.bank.statement.line"].search_count([])
        with self.assertRaises(UserError):
            self._import(data)
        self.assertEqual(self.env["account.bank.statement.line"].search_count([]), count)
        self.assertEqual(inv.payment_state, "paid")

    def test_exceptions(self):
        inv_partial = self._invoice(self.emsp_a, 300.0)
        inv_over = self._invoice(self.emsp_a, 80.0)
        inv_ccy = self._invoice(self.emsp_b, 55.0)
        lines = self._import(self._statement(
            self._entry(250.0, structured_ref=inv_partial.payment_reference),
            self._entry(80.5, unstructured="inv %s" % inv_over.name, party_iban=IBAN_A),
            self._entry(999.0, unstructured="who am I", party_name="Stranger",
                        party_iban="FR1420041010050500013M02606"),
            self._entry(55.0, structured_ref=inv_ccy.payment_reference,
                        instructed=(Decimal("60.00"), self.other_ccy.name)),
        ))
        self.assertFalse(any(lines.mapped("clearing_match_rule")))
        exc = lines.clearing_exception_ids
        by_line = {e.statement_line_id: e for e in exc}
        self.assertEqual(len(exc), 4)
        e_partial, e_over, e_unknown, e_ccy = (by_line[line] for line in lines)
        self.assertEqual(
            (e_partial.exception_type, e_partial.expected_amount, e_partial.received_amount,
             e_partial.difference, e_partial.invoice_id, e_partial.partner_id),
            ("partial", 300.0, 250.0, -50.0, inv_partial, self.emsp_a))
        self.assertEqual((e_over.exception_type, e_over.difference), ("overpayment", 0.5))
        self.assertEqual((e_unknown.exception_type, e_unknown.invoice_id.id),
                         ("unknown", False))
        self.assertEqual((e_ccy.exception_type, e_ccy.currency_id), ("currency", self.other_ccy))
        self.assertEqual(inv_partial.payment_state, "not_paid")

        # the cron does not record them twice
        self.env["account.bank.statement.line"].sudo()._cron_clearing_match()
        self.assertEqual(len(lines.clearing_exception_ids), 4)

        # partial: reconciled as partial, the remainder stays open
        e_partial.action_reconcile_partial()
        self.assertEqual(e_partial.state, "resolved")
        self.assertEqual(inv_partial.payment_state, "partial")
        self.assertAlmostEqual(inv_partial.amount_residual, 50.0)

        # overpayment of 0.50: under the tolerance, written off
        e_over.action_write_off()
        self.assertEqual(inv_over.payment_state, "paid")
        wo = e_over.statement_line_id.move_id.line_ids.filtered(
            lambda l: l.account_id == self.writeoff_account)
        self.assertAlmostEqual(wo.balance, -0.5)

        # unknown payer: assigned by hand to an invoice of that amount
        inv_late = self._invoice(self.emsp_b, 999.0)
        e_unknown.assign_invoice_id = inv_late
        e_unknown.action_assign_invoice()
        self.assertEqual(e_unknown.state, "resolved")
        self.assertEqual(inv_late.payment_state, "paid")

    def test_writeoff_above_tolerance_refused(self):
        inv = self._invoice(self.emsp_a, 100.0)
        line = self._import(self._statement(
            self._entry(95.0, structured_ref=inv.payment_reference)))
        exc = line.clearing_exception_ids
        with self.assertRaisesRegex(UserError, "above the write-off tolerance"):
            exc.action_write_off()
        self.assertEqual(exc.state, "open")

    def test_duplicate_and_credited(self):
        inv = self._invoice(self.emsp_a, 20.0)
        self._import(self._statement(self._entry(20.0, structured_ref=inv.payment_reference),
                                     msg="S1"))
        self.assertEqual(inv.payment_state, "paid")
        cancelled = self._invoice(self.emsp_a, 30.0)
        cancelled.button_draft()
        cancelled.button_cancel()
        lines = self._import(self._statement(
            self._entry(20.0, structured_ref=inv.payment_reference),
            self._entry(30.0, unstructured="for %s" % cancelled.name), msg="S2"))
        types = [line.clearing_exception_ids.exception_type for line in lines]
        self.assertEqual(types, ["duplicate", "credited"])
        self.assertEqual(lines[0].clearing_exception_ids.invoice_id, inv)

    def test_cron_matches_later_invoice(self):
        line = self._import(self._statement(
            self._entry(12.0, unstructured="prepayment", party_iban=IBAN_B)))
        self.assertEqual(line.clearing_exception_ids.exception_type, "unknown")
        inv = self._invoice(self.emsp_b, 12.0)
        self.env["account.bank.statement.line"].sudo()._cron_clearing_match()
        self.assertEqual(line.clearing_match_rule, "iban")
        self.assertEqual(inv.payment_state, "paid")
        self.assertEqual(line.clearing_exception_ids.state, "resolved")

    def test_late_payments(self):
        inv = self._invoice(self.emsp_a, 45.0, date="2026-10-01", due="2026-10-31")
        self.company.clearing_late_reminder_days = 5
        Exc = self.env["clearing.payment.exception"]
        Exc.sudo()._cron_late_payments()  # crons run as the superuser
        late = Exc.search([("exception_type", "=", "late"), ("invoice_id", "=", inv.id)])
        self.assertEqual(len(late), 1)
        today = fields.Date.context_today(Exc)
        self.assertEqual(late.days_late, (today - inv.invoice_date_due).days)
        self.assertEqual(late.reminder_sent_on, today)
        mail = self.env["mail.mail"].search([("model", "=", late._name), ("res_id", "=", late.id)])
        self.assertEqual(len(mail), 1)
        self.assertIn(self.emsp_a, mail.recipient_ids)
        Exc.sudo()._cron_late_payments()  # no second exception, no second reminder
        self.assertEqual(Exc.search_count([("exception_type", "=", "late"),
                                           ("invoice_id", "=", inv.id)]), 1)
        self.assertEqual(self.env["mail.mail"].search_count(
            [("model", "=", late._name), ("res_id", "=", late.id)]), 1)
        self._import(self._statement(self._entry(45.0, structured_ref=inv.payment_reference)))
        Exc.sudo()._cron_late_payments()
        self.assertEqual(late.state, "resolved")


class TestStatementLineCreation(PaymentCase):
    """Statement lines are created with their journal items in one batch: the items must be
    those Odoo's own create writes (``_prepare_move_line_default_vals`` of the created line),
    the moves posted and numbered in order."""

    FIELDS = ("account_id", "partner_id", "currency_id", "amount_currency", "debit", "credit",
              "name")

    def _assert_odoo_items(self, st_line, counterpart_account_id=None):
        expected = st_line._prepare_move_line_default_vals(
            counterpart_account_id=counterpart_account_id)
        got = st_line.move_id.line_ids.sorted("id")
        self.assertEqual(len(got), len(expected), st_line.payment_ref)
        for line, vals in zip(got, expected):
            for field in self.FIELDS:
                value = line[field]
                value = value.id if hasattr(value, "_name") else value
                self.assertEqual(value or False, vals[field] or False,
                                 "%s: %s" % (st_line.payment_ref, field))
        self.assertEqual(st_line.move_id.state, "posted")
        self.assertEqual(st_line.move_id.statement_line_id, st_line)
        self.assertTrue(st_line.move_id.name.startswith(self.bank_journal.code))

    def test_items_are_odoos(self):
        other = self.other_ccy
        counterpart = self.company_data["default_account_revenue"]
        lines = self.env["account.bank.statement.line"].create([
            {"journal_id": self.bank_journal.id, "date": "2026-12-01", "amount": 120.35,
             "payment_ref": "plain", "partner_id": self.emsp_a.id},
            {"journal_id": self.bank_journal.id, "date": "2026-12-01", "amount": -45.10,
             "payment_ref": "outgoing"},
            {"journal_id": self.bank_journal.id, "date": "2026-12-01", "amount": 99.0,
             "payment_ref": "foreign", "foreign_currency_id": other.id,
             "amount_currency": 198.0},
            {"journal_id": self.bank_journal.id, "date": "2026-12-01", "amount": 10.0,
             "payment_ref": "same currency", "foreign_currency_id": self.ccy.id,
             "amount_currency": 10.0},
            {"journal_id": self.bank_journal.id, "date": "2026-12-01", "amount": 33.0,
             "payment_ref": "counterpart", "counterpart_account_id": counterpart.id},
        ])
        self.assertEqual(len(lines), 5)
        for st_line in lines[:4]:
            self._assert_odoo_items(st_line)
        self._assert_odoo_items(lines[4], counterpart.id)
        self.assertEqual(lines[4].move_id.line_ids.account_id,
                         self.bank_journal.default_account_id | counterpart)
        self.assertFalse(lines[3].foreign_currency_id)
        # numbered in order, one after the other
        numbers = [m.sequence_number for m in lines.move_id]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 5)))

    def test_journal_from_statement(self):
        """Lines given only their statement take its journal (as Odoo's create does)."""
        statement = self.env["account.bank.statement"].create(
            {"name": "Statement", "journal_id": self.bank_journal.id})
        lines = self.env["account.bank.statement.line"].create([
            {"statement_id": statement.id, "date": "2026-12-01", "amount": 50.0,
             "payment_ref": "from statement"},
            {"statement_id": statement.id, "date": "2026-12-01", "amount": 80.0,
             "payment_ref": "from statement, foreign", "foreign_currency_id": self.other_ccy.id,
             "amount_currency": 160.0},
        ])
        for st_line in lines:
            self.assertEqual(st_line.journal_id, self.bank_journal)
            self._assert_odoo_items(st_line)
        self.assertEqual(lines[1].move_id.line_ids.currency_id, self.ccy | self.other_ccy)


    def test_batches(self):
        """Created and reconciled in several batches: the same items, numbers in order, every
        invoice paid."""
        invoices = [self._invoice(self.emsp_a, 10.0 + i) for i in range(5)]
        data = self._statement(*[
            self._entry(10.0 + i, structured_ref=inv.payment_reference.replace(" ", ""))
            for i, inv in enumerate(invoices)])
        with patch.object(statement_line_module, "BATCH_SIZE", 2):
            lines = self._import(data)
        self.assertEqual(len(lines), 5)
        # numbered in Odoo's order: date, then reference
        ordered = lines.sorted(lambda l: (l.date, l.move_id.ref or "", l.id))
        numbers = [l.move_id.sequence_number for l in ordered]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 5)))
        self.assertEqual(lines.mapped("clearing_match_rule"), ["ref"] * 5)
        self.assertEqual([inv.payment_state for inv in invoices], ["paid"] * 5)
        for st_line in lines:
            liquidity = st_line.move_id.line_ids.filtered(
                lambda l: l.account_id == self.bank_journal.default_account_id)
            expected = st_line._prepare_move_line_default_vals()[0]
            self.assertEqual((liquidity.debit, liquidity.amount_currency, liquidity.name),
                             (expected["debit"], expected["amount_currency"], expected["name"]))


    def test_batches_number_as_one_create(self):
        """Lines created in batches get the numbers one create gives them, and come back in
        the order given."""
        def create(batch_size):
            vals_list = [
                {"journal_id": self.bank_journal.id, "date": date, "amount": 1.0 + i,
                 "ref": ref, "payment_ref": "line %d" % i}
                for i, (date, ref) in enumerate([
                    ("2026-12-02", "C"), ("2026-12-01", "Z"), ("2026-12-02", "A"),
                    ("2026-12-02", False), ("2026-12-01", "B"), ("2026-12-02", "A")])]
            with patch.object(statement_line_module, "BATCH_SIZE", batch_size):
                lines = self.env["account.bank.statement.line"].create(vals_list)
            self.assertEqual(lines.mapped("payment_ref"), ["line %d" % i for i in range(6)])
            numbers = lines.move_id.mapped("sequence_number")
            return [n - min(numbers) for n in numbers]

        self.assertEqual(create(2), create(100))
        self.assertEqual(create(2), [5, 1, 3, 2, 0, 4])


class TestPaymentOrders(PaymentCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        method = cls.env["account.payment.method"].search(
            [("code", "=", "sepa_credit_transfer"), ("payment_type", "=", "outbound")],
            limit=1)
        cls.bank_journal.outbound_payment_method_line_ids = [Command.create({
            "payment_method_id": method.id, "name": "SEPA"})]
        cls.mode = cls.env["account.payment.mode"].sudo().create({
            "name": "Clearing SEPA", "company_id": cls.company.id,
            "payment_method_id": method.id, "bank_account_link": "fixed",
            "fixed_journal_id": cls.bank_journal.id, "default_batch_booking": True,
        })
        cls.company.clearing_payment_mode_id = cls.mode
        cls.cpo = cls.env["res.partner"].sudo().create({
            "name": "CPO Gamma", "bank_ids": [Command.create({
                "acc_number": IBAN_CPO, "bank_id": cls.env["res.bank"].create(
                    {"name": "NatWest", "bic": "NWBKGB2L"}).id})],
        })

    def test_refund_and_bill_in_pain001(self):
        inv = self._invoice(self.emsp_a, 100.0)
        line = self._import(self._statement(
            self._entry(130.0, structured_ref=inv.payment_reference)))
        exc = line.clearing_exception_ids
        self.assertEqual(exc.exception_type, "overpayment")
        exc.action_refund_excess()
        self.assertEqual(inv.payment_state, "paid")
        order = exc.payment_order_id
        self.assertEqual(order.payment_line_ids.amount_currency, 30.0)
        bill = self.init_invoice("in_invoice", partner=self.cpo, invoice_date="2026-11-05",
                                 amounts=[500.0], taxes=[], post=True)
        self.assertEqual(bill.action_clearing_add_to_payment_order(), order)
        self.assertEqual(sorted(order.payment_line_ids.mapped("amount_currency")),
                         [30.0, 500.0])
        order.draft2open()
        order.open2generated()
        attachment = self.env["ir.attachment"].search(
            [("res_model", "=", order._name), ("res_id", "=", order.id)])
        xml = base64.b64decode(attachment.datas)
        root = etree.fromstring(xml)
        pain = root.tag[1:root.tag.index("}")].split(":")[-1]
        self.assertTrue(pain.startswith("pain.001.001."))
        xsd = os.path.join(get_module_path("account_banking_sepa_credit_transfer"), "data",
                           "%s.xsd" % pain)
        schema = etree.XMLSchema(etree.parse(xsd))
        self.assertTrue(schema.validate(root), schema.error_log)
        ns = {"p": root.tag[1:root.tag.index("}")]}
        self.assertEqual(root.xpath("//p:PmtInf/p:BtchBookg/text()", namespaces=ns), ["true"])
        self.assertEqual(root.xpath("//p:GrpHdr/p:NbOfTxs/text()", namespaces=ns), ["2"])
        self.assertEqual(root.xpath("//p:GrpHdr/p:CtrlSum/text()", namespaces=ns), ["530.00"])

        # the bank executes them: a camt.054 closes the refund and the bill
        order.generated2uploaded()
        payments = order.payment_ids
        self.assertEqual(len(payments), 2)
        entries = [self._entry(abs(p.amount), debit=True, end_to_end=str(p.id),
                               party_name=p.partner_id.name) for p in payments]
        lines = self._import(camt054("NTF1", OUR_IBAN, self.ccy.name, entries),
                             name="notification.xml")
        self.assertEqual(lines.mapped("clearing_match_rule"), ["payment", "payment"])
        self.assertTrue(all(payments.mapped("is_matched")))
        self.assertEqual(bill.payment_state, "paid")

    def test_refusal_names_partner_without_bank_account(self):
        cpo = self.env["res.partner"].create({"name": "CPO Without Bank"})
        bill = self.init_invoice("in_invoice", partner=cpo, invoice_date="2026-11-05",
                                 amounts=[10.0], taxes=[], post=True)
        with self.assertRaisesRegex(UserError, "CPO Without Bank has no bank account"):
            bill.action_clearing_add_to_payment_order()
        cpo.sudo().bank_ids = [Command.create({"acc_number": "DE00123456789012345678"})]
        with self.assertRaisesRegex(UserError, "not a valid IBAN"):
            bill.action_clearing_add_to_payment_order()


@tagged("post_install", "-at_install")
class TestPeriodPaid(PeriodCase):
    def test_period_paid_with_its_invoice(self):
        cdr = self._session("2026-03-10T10:00:00")
        period = cdr.period_id
        with freeze_time("2026-04-08 06:00:00"):
            period._lock()
        period.state = "invoiced"
        company = period.company_id
        sale = self.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", company.id)], limit=1)
        bank = self.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1)
        invoice = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": self.emsp.id, "journal_id": sale.id,
            "invoice_date": "2026-04-08", "clearing_period_id": period.id,
            "invoice_line_ids": [Command.create({
                "name": "Sessions", "price_unit": 25.0, "tax_ids": []})],
        })
        invoice.action_post()
        self.assertEqual(invoice.clearing_contract_id, self.contract)
        self.assertEqual(period.invoice_payment_state, "not_paid")
        st = self.env["account.bank.statement.line"].create({
            "journal_id": bank.id, "date": "2026-04-20", "amount": 25.0,
            "payment_ref": "TEM clearing %s" % invoice.name,
        })
        st._clearing_match()
        self.assertEqual(st.clearing_match_rule, "number")
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(period.state, "paid")
        self.assertEqual(period.invoice_payment_state, "paid")
        # undoing the payment puts the period back to invoiced
        st.action_undo_reconciliation()
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertEqual(period.state, "invoiced")


@tagged("post_install", "-at_install")
class TestPaymentDemo(PaymentCase):
    def test_demo_payment_order(self):
        volta = self.env.ref("emsp_clearing.demo_partner_volta", raise_if_not_found=False)
        if not volta:
            self.skipTest("demo data not installed")
        order = self.env["account.payment.order"].sudo().search(  # main company
            [("payment_line_ids.partner_id", "=", volta.id)])
        self.assertEqual(len(order), 1)
        lines = order.payment_line_ids
        self.assertEqual(sorted(lines.mapped("amount_currency")), [30.0, 480.0])
        self.assertEqual(set(lines.partner_id.mapped("name")),
                         {"Electra Mobility", "Volta Charge Networks BV"})
