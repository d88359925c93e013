"""OCPI 2.3.0 Invoice Reconciliation, our eMSP hat: the CPO's records are received on our
Receiver endpoint and reconciled at once against our locked CDRs and the vendor bill of the
period (missing, extra, duplicate CDRs, amount gap); bad input refused naming the field,
nothing stored."""

import datetime as dt

from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import Form, HttpCase, tagged

from ..clearing_core.transport import envelope as ot
from .ocpi_common import OcpiHttpCase
from .period_common import PeriodCase
from .test_invoice_documents import pdf_text
from .test_ocpi_v230 import stdlib_peer


# every member of an InvoiceReconciliationRecord is required (OCPI 2.3.0 edition 2)
REQUIRED = ("country_code", "party_id", "id", "invoice_id", "cdrs", "last_updated")


def _record(rid, invoice_id, cdrs, **extra):
    return dict({"country_code": "DE", "party_id": "CPX", "id": rid, "invoice_id": invoice_id,
                 "cdrs": cdrs, "last_updated": "2026-04-08T07:00:00Z"}, **extra)


@tagged("post_install", "-at_install")
class TestInvoiceReconciliation(PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        purchase_journal = cls.env["account.journal"].create({
            "name": "Clearing Bills", "code": "CLRB", "type": "purchase",
            "company_id": cls.company.id})
        cls.contract.state = "closed"
        cls.emsp_contract = cls._contract(
            partner=cls.cpo, role="emsp", lines=[{"dimension": "ENERGY", "price": 0.4}],
            invoice_journal_id=purchase_journal.id, name="EMSP")
        with freeze_time("2026-03-20 10:00:00"):
            cls.sessions = [cls._session("2026-03-%02dT10:00:00" % (10 + i), kwh=10.0 * (i + 1),
                                         sender=("DE", "CPX"), issuer=("FR", "TST"))
                            for i in range(3)]
        with freeze_time("2026-04-08 06:00:00"):
            cls.Period._cron_lock_periods()
            cls.Period._cron_invoice_periods()
        cls.bill = cls.sessions[0].invoice_move_id
        cls.conn = cls.env["clearing.ocpi.connection"].create(
            {"name": "CPX", "partner_id": cls.cpo.id})
        cls.Record = cls.env["clearing.invoice.reconciliation"]

    def receive(self, method, body=None, key=None):
        return self.Record._receive(self.conn, method, body, key)

    def kinds(self, record):
        return sorted((f["kind"], f.get("cdr")) for f in record.findings)

    def test_missing_extra_duplicate_and_amount_gap(self):
        one, two, three = (s.ocpi_id for s in self.sessions)
        self.assertEqual(self.bill.move_type, "in_invoice")
        self.assertEqual(sorted(self.bill.clearing_cdr_ids.mapped("ocpi_id")), [one, two, three])
        status = self.receive("POST", _record("IRR-1", "CPX-2026-03", [one, two, "GHOST-1"]))
        self.assertEqual(status[:2], (201, ot.SUCCESS))
        record = self.Record.search([("ocpi_id", "=", "IRR-1")])
        self.assertEqual(record.move_id, self.bill)
        self.assertEqual(record.period_id, self.bill.clearing_period_id)
        # one CDR we do not hold, one billed CDR not listed, the listed amount short of the bill
        self.assertEqual(self.kinds(record), [("amount", None), ("not_listed", three),
                                              ("unknown", "GHOST-1")])
        listed = self.sessions[0].amount_total + self.sessions[1].amount_total
        self.assertAlmostEqual(record.listed_amount, listed)
        self.assertAlmostEqual(record.invoice_total, self.bill.amount_total)
        self.assertAlmostEqual(record.amount_difference, listed - self.bill.amount_total)
        self.assertEqual(self.bill.clearing_vendor_reference, "CPX-2026-03")  # learnt from it
        self.assertEqual(self.bill.clearing_reconciliation_findings, 3)
        self.assertIn("GHOST-1", record.findings_html)

        # a second record listing a CDR of the first: a duplicate on both sides
        self.receive("POST", _record("IRR-2", "CPX-2026-03B", [two]))
        second = self.Record.search([("ocpi_id", "=", "IRR-2")])
        self.assertIn(("duplicate", two), self.kinds(second))
        # the correction (PUT) lists the three CDRs: only the duplicate remains
        status = self.receive("PUT", _record("IRR-1", "CPX-2026-03", [one, two, three]),
                              key=("DE", "CPX", "IRR-1"))
        self.assertEqual(status[:2], (200, ot.SUCCESS))
        self.assertEqual(self.kinds(record), [("duplicate", two)])
        self.assertAlmostEqual(record.amount_difference, 0.0)
        # the CPO deletes its erroneous second record; the next correction is clean
        self.assertEqual(self.receive("DELETE", key=("DE", "CPX", "IRR-2"))[:2], (200, ot.SUCCESS))
        self.assertFalse(second.exists())
        self.receive("PUT", _record("IRR-1", "CPX-2026-03", [one, two, three],
                                    last_updated="2026-04-09T07:00:00Z"), key=("DE", "CPX", "IRR-1"))
        self.assertEqual((record.findings or [], record.finding_count), ([], 0))
        self.assertEqual(self.bill.clearing_reconciliation_findings, 0)
        # GET serves the record as received
        status = self.receive("GET", key=("DE", "CPX", "IRR-1"))
        self.assertEqual(status[3]["cdrs"], [one, two, three])

    def test_amount_against_the_cpo_invoice_total(self):
        ids = [s.ocpi_id for s in self.sessions]
        self.bill.write({"clearing_vendor_reference": "CPX-42",
                         "clearing_vendor_total": self.bill.amount_total + 1.0})
        self.receive("POST", _record("IRR-9", "CPX-42", ids))
        record = self.Record.search([("ocpi_id", "=", "IRR-9")])
        self.assertEqual(self.kinds(record), [("amount", None)])
        self.assertAlmostEqual(record.amount_difference, -1.0)

    def test_bad_input_names_the_field_and_stores_nothing(self):
        one = self.sessions[0].ocpi_id
        # each required field removed, then set to null
        cases = [({k: v for k, v in _record("X", "I", [one]).items() if k != field},
                  None, "$." + field) for field in REQUIRED]
        cases += [(dict(_record("X", "I", [one]), **{field: None}), None, "$." + field)
                  for field in REQUIRED]
        cases += [
            (_record("X", "I", []), None, "$.cdrs"),
            (_record("X", "I", [one, 42]), None, "$.cdrs[1]"),
            (_record("X", "I", [one], last_updated="yesterday"), None, "$.last_updated"),
            (_record("X", "I", [one], party_id="ZZZ"), None, "$.party_id"),
            (_record("X", "I", [one]), ("DE", "CPX", "Y"), "$.id"),
            ("not an object", None, "$"),
        ]
        for body, key, path in cases:
            http, code, message, data = self.receive("PUT" if key else "POST", body, key)
            self.assertEqual((http, code, data["path"]), (200, ot.INVALID_PARAMETERS, path), message)
            self.assertTrue(message.startswith(path))
            self.assertTrue(data["reason"], path)
        self.assertFalse(self.Record.search([("direction", "=", "received")]))
        # a POST of an existing id with other content must be a PUT
        self.receive("POST", _record("X", "I", [one]))
        http, code, message, data = self.receive("POST", _record("X", "I2", [one]))
        self.assertEqual((code, data["path"]), (ot.INVALID_PARAMETERS, "$.id"))
        self.assertEqual(self.Record.search([("direction", "=", "received")]).invoice_id, "I")
        self.assertEqual(self.receive("POST", _record("X", "I", [one]))[:2], (200, ot.SUCCESS))


@tagged("post_install", "-at_install")
class TestInvoiceReconciliationEndpoint(OcpiHttpCase):

    def test_receiver_endpoint(self):
        conn, token = self._connection()
        r, p = self.ocpi("GET", "/ocpi/2.3.0", token)
        eps = {(e["identifier"], e["role"]): e["url"] for e in p["data"]["endpoints"]}
        base = self.base_url() + "/ocpi/2.3.0/invoicereconciliation"
        self.assertEqual(eps[("invoicereconciliation", "RECEIVER")], base)
        self.assertEqual(eps[("invoicereconciliation", "SENDER")], base)
        r, p = self.ocpi("GET", "/ocpi/2.2.1", token)
        self.assertNotIn("invoicereconciliation", [e["identifier"] for e in p["data"]["endpoints"]])
        record = {"country_code": "NL", "party_id": "CPO", "id": "R1", "invoice_id": "INV-1",
                  "cdrs": ["NOPE-1"], "last_updated": "2026-04-08T07:00:00Z"}
        bad = dict(record, cdrs="NOPE-1")
        r, p = self.ocpi("POST", "/ocpi/2.3.0/invoicereconciliation", token, body=bad)
        self.assertEqual((r.status_code, p["status_code"], p["data"]["path"]), (200, 2001, "$.cdrs"))
        for field in REQUIRED:  # each required field removed: 2001 naming it
            r, p = self.ocpi("POST", "/ocpi/2.3.0/invoicereconciliation", token,
                             body={k: v for k, v in record.items() if k != field})
            self.assertEqual((r.status_code, p["status_code"], p["data"]["path"]),
                             (200, 2001, "$." + field), p)
            self.assertIn("$." + field, p["status_message"])
        self.assertFalse(self.env["clearing.invoice.reconciliation"].search([("direction", "=", "received")]))
        # an unknown CDR id is a finding, not an error
        r, p = self.ocpi("POST", "/ocpi/2.3.0/invoicereconciliation", token, body=record)
        self.assertEqual((r.status_code, p["status_code"]), (201, 1000), p)
        stored = self.env["clearing.invoice.reconciliation"].search([("ocpi_id", "=", "R1")])
        self.assertEqual([f["kind"] for f in stored.findings], ["unknown"])
        path = "/ocpi/2.3.0/invoicereconciliation/NL/CPO/R1"
        r, p = self.ocpi("GET", path, token)
        self.assertEqual((r.status_code, p["data"]), (200, record))
        r, p = self.ocpi("PUT", path, token, body=dict(record, cdrs=["NOPE-1", "NOPE-2"]))
        self.assertEqual((r.status_code, p["status_code"]), (200, 1000))
        stored.invalidate_recordset()
        self.assertEqual(stored.cdr_count, 2)
        r, p = self.ocpi("DELETE", path, token)
        self.assertEqual(r.status_code, 200)
        r, p = self.ocpi("GET", path, token)
        self.assertEqual((r.status_code, p["status_code"]), (404, 2000))
        r, p = self.ocpi("PATCH", "/ocpi/2.3.0/invoicereconciliation", token)
        self.assertEqual(r.status_code, 405)
        r, p = self.ocpi("POST", "/ocpi/2.3.0/invoicereconciliation", "bad-token", body=record)
        self.assertEqual(r.status_code, 401)


@tagged("post_install", "-at_install")
class TestInvoiceReconciliationPublish(PeriodCase):
    """Our CPO hat: the posted invoice's record reaches a peer speaking 2.3.0 with its Receiver
    and lists exactly the CDRs the invoice bills; a correction goes by PUT; a failed delivery
    is retried."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bank = cls.env["res.partner.bank"].create({
            "acc_number": "FR7630004000031234567890143", "partner_id": cls.company.partner_id.id})
        cls.contract.invoice_journal_id = cls.env["account.journal"].create({
            "name": "Clearing Sales", "code": "CLRS", "type": "sale",
            "company_id": cls.company.id, "bank_account_id": cls.bank.id})
        cls.Record = cls.env["clearing.invoice.reconciliation"]

    def _connection_to(self, peer):
        return self.env["clearing.ocpi.connection"].create({
            "name": "TEM", "partner_id": self.emsp.id, "state": "registered", "version": "2.3.0",
            "token_b": peer.token_b, "endpoints": [
                {"identifier": "invoicereconciliation", "role": "RECEIVER",
                 "url": peer.base + "/2.3.0/invoicereconciliation"}]})

    def test_invoice_record_delivered_corrected_and_retried(self):
        with stdlib_peer.StdlibPeer([], invoice_receiver=True) as peer:
            conn = self._connection_to(peer)
            with freeze_time("2026-03-20 10:00:00"):
                sessions = [self._session("2026-03-%02dT10:00:00" % (10 + i), kwh=5.0 + i)
                            for i in range(3)]
            with freeze_time("2026-04-08 06:00:00"):
                self.Period._cron_lock_periods()
                self.Period._cron_invoice_periods()
            invoice = sessions[0].invoice_move_id
            self.assertEqual((invoice.move_type, invoice.state), ("out_invoice", "posted"))
            record = invoice.clearing_published_reconciliation_ids
            self.assertEqual(len(record), 1)
            self.assertEqual((record.connection_id, record.delivery_state), (conn, "pending"))
            billed = self.env["clearing.cdr"].search([("invoice_move_id", "=", invoice.id)])
            self.assertEqual(sorted(record.cdr_refs), sorted(billed.mapped("ocpi_id")))
            self.assertEqual(sorted(record.cdr_refs), sorted(s.ocpi_id for s in sessions))
            # the XLSX of the invoice lists the same sessions (its rows: clearing_cdr_ids)
            self.assertEqual(sorted(invoice.clearing_cdr_ids.mapped("ocpi_id")), sorted(record.cdr_refs))

            self.Record._cron_deliver()
            self.assertEqual((record.delivery_state, record.delivered_count), ("delivered", 1))
            method, body = peer.records[record.ocpi_id]
            self.assertEqual(method, "POST")
            self.assertEqual(body["invoice_id"], invoice.name)
            self.assertEqual(sorted(body["cdrs"]), sorted(s.ocpi_id for s in sessions))
            self.assertEqual((body["country_code"], body["party_id"]), ("FR", "TST"))

            # a correction (the invoice posted again) goes by PUT, to the record's URL
            invoice.button_draft()
            invoice.action_post()
            self.assertEqual(record.delivery_state, "pending")
            self.Record._cron_deliver()
            self.assertEqual(peer.records[record.ocpi_id][0], "PUT")
            self.assertEqual(record.delivered_count, 2)

            # the partner's endpoint down: kept pending with the error, delivered later
            conn.endpoints = [{"identifier": "invoicereconciliation", "role": "RECEIVER",
                               "url": "http://127.0.0.1:9/nothing"}]
            invoice.button_draft()
            invoice.action_post()
            self.Record._cron_deliver()
            self.assertEqual((record.delivery_state, record.delivery_attempts), ("pending", 3))
            self.assertTrue(record.delivery_error)
            conn.endpoints = [{"identifier": "invoicereconciliation", "role": "RECEIVER",
                               "url": peer.base + "/2.3.0/invoicereconciliation"}]
            self.Record._cron_deliver()
            self.assertEqual((record.delivery_state, record.delivery_error), ("delivered", False))

    def test_partner_without_receiver_endpoint(self):
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-10T10:00:00")
        with freeze_time("2026-04-08 06:00:00"):
            self.Period._cron_lock_periods()
            self.Period._cron_invoice_periods()
        record = cdr.invoice_move_id.clearing_published_reconciliation_ids
        self.assertEqual((record.delivery_state, record.cdr_refs), ("no_endpoint", [cdr.ocpi_id]))


@tagged("post_install", "-at_install")
class TestInvoiceReconciliationSender(OcpiHttpCase):

    def test_sender_endpoint_paginated_with_dates(self):
        conn, token = self._connection()
        other, _t = self._connection(partner=self.env["res.partner"].create(
            {"name": "Other", "ocpi_country_code": "NL", "ocpi_party_id": "OTH"}))
        Record = self.env["clearing.invoice.reconciliation"]
        for i, partner in enumerate([self.cpo] * 5 + [other.partner_id]):
            vals = {"direction": "published", "company_id": self.company.id,
                    "partner_id": partner.id, "country_code": "DE", "party_id": "MSP",
                    "ocpi_id": "INV-%d" % i, "invoice_id": "INV/2026/%04d" % i,
                    "cdr_refs": ["C%d" % i], "cdr_count": 1,
                    "last_updated": dt.datetime(2026, 4, 1 + i, 6)}
            Record.create(dict(vals, raw_json=Record._record_json(vals)))
        self.env.flush_all()
        r, p = self.ocpi("GET", "/ocpi/2.3.0/invoicereconciliation?limit=2", token)
        self.assertEqual((r.status_code, p["status_code"]), (200, 1000))
        self.assertEqual([x["id"] for x in p["data"]], ["INV-0", "INV-1"])
        self.assertEqual((r.headers["X-Total-Count"], r.headers["X-Limit"]), ("5", "2"))
        self.assertIn("offset=2", r.headers["Link"])
        r, p = self.ocpi("GET", "/ocpi/2.3.0/invoicereconciliation?date_from=2026-04-02T00:00:00Z"
                                "&date_to=2026-04-04T06:00:00Z", token)
        self.assertEqual([x["id"] for x in p["data"]], ["INV-1", "INV-2"])
        self.assertNotIn("Link", r.headers)
        self.assertEqual(p["data"][0]["last_updated"], "2026-04-02T06:00:00Z")
        r, p = self.ocpi("GET", "/ocpi/2.3.0/invoicereconciliation?date_from=soon", token)
        self.assertEqual((p["status_code"], p["data"]["path"]), (2001, "date_from"))


@tagged("post_install", "-at_install")
class TestReverseBilling(HttpCase, PeriodCase):
    """Reverse billing (``clearing.contract.reverse_billing``): as the eMSP we issue the
    self-billed vendor bill ('Autofacturation', numbered AUTO/YYYY/NNNN by us) and publish its
    invoice reconciliation record to the CPO -- a peer speaking 2.3.0 with its Receiver -- by the
    path our invoices take as the CPO; with the option off, nothing is published."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract.state = "closed"
        cls.emsp_contract = cls._contract(
            partner=cls.cpo, role="emsp", lines=[{"dimension": "ENERGY", "price": 0.4}],
            name="EMSP-RB", reverse_billing=True)
        cls.Record = cls.env["clearing.invoice.reconciliation"]

    def _sessions(self, day_from, count, month="03"):
        with freeze_time("2026-%s-20 10:00:00" % month):
            return [self._session("2026-%s-%02dT10:00:00" % (month, day_from + i),
                                  kwh=10.0 * (i + 1), sender=("DE", "CPX"), issuer=("FR", "TST"))
                    for i in range(count)]

    def _invoice(self, day):
        with freeze_time(day):
            self.Period._cron_lock_periods()
            self.Period._cron_invoice_periods()

    def _connection_to(self, peer):
        return self.env["clearing.ocpi.connection"].create({
            "name": "CPX", "partner_id": self.cpo.id, "state": "registered", "version": "2.3.0",
            "token_b": peer.token_b, "endpoints": [
                {"identifier": "invoicereconciliation", "role": "RECEIVER",
                 "url": peer.base + "/2.3.0/invoicereconciliation"}]})

    def test_self_billed_bill_numbered_by_us_and_published_to_the_cpo(self):
        with stdlib_peer.StdlibPeer([], invoice_receiver=True) as peer:
            conn = self._connection_to(peer)
            march = self._sessions(10, 3)
            april = self._sessions(2, 2, month="04")
            self._invoice("2026-04-08 06:00:00")
            bill = march[0].invoice_move_id
            journal = self.company.clearing_self_billing_journal_id
            self.assertEqual((bill.move_type, bill.state, bill.clearing_self_billed),
                             ("in_invoice", "posted", True))
            self.assertEqual((bill.journal_id, journal.type, journal.code),
                             (journal, "purchase", "AUTO"))
            self.assertEqual(bill.name, "AUTO/2026/0001")  # our own numbering, yearly
            self.assertIn("Autofacturation", str(bill.narration))
            self.assertIn(self.cpo.name, str(bill.narration))
            self.assertFalse(april[0].invoice_move_id)

            record = bill.clearing_published_reconciliation_ids
            self.assertEqual(len(record), 1)
            self.assertEqual((record.connection_id, record.delivery_state), (conn, "pending"))
            self.assertEqual(sorted(record.cdr_refs), sorted(c.ocpi_id for c in march))
            self.assertEqual(sorted(record.cdr_refs), sorted(bill.clearing_cdr_ids.mapped("ocpi_id")))
            self.Record._cron_deliver()
            self.assertEqual((record.delivery_state, record.delivered_count), ("delivered", 1))
            method, body = peer.records[record.ocpi_id]
            self.assertEqual(method, "POST")
            self.assertEqual(body["invoice_id"], "AUTO/2026/0001")
            self.assertEqual(sorted(body["cdrs"]), sorted(c.ocpi_id for c in march))
            self.assertEqual((body["country_code"], body["party_id"]), ("FR", "TST"))  # ours

            # a correction (the bill posted again) goes by PUT, to the record's URL
            bill.button_draft()
            bill.action_post()
            self.assertEqual((bill.name, record.delivery_state), ("AUTO/2026/0001", "pending"))
            self.Record._cron_deliver()
            self.assertEqual(peer.records[record.ocpi_id][0], "PUT")
            self.assertEqual(("PUT", "/2.3.0/invoicereconciliation/FR/TST/%s" % record.ocpi_id),
                             peer.requests[-1])

            # a credit of a billed session: a self-billed credit note, numbered by us too,
            # whose record lists the credit CDR
            with freeze_time("2026-04-12 10:00:00"):
                credit = march[1]._create_dispute_credit()
                self.Period._cron_invoice_periods()
            refund = credit.invoice_move_id
            self.assertEqual((refund.move_type, refund.state, refund.reversed_entry_id),
                             ("in_refund", "posted", bill))
            self.assertEqual((refund.name, refund.clearing_self_billed), ("RAUTO/2026/0001", True))
            self.assertIn("Autofacturation", str(refund.narration))
            refund_record = refund.clearing_published_reconciliation_ids
            self.assertEqual((refund_record.ocpi_id, refund_record.cdr_refs),
                             ("CN-%d" % refund.id, [credit.ocpi_id]))
            self.assertAlmostEqual(refund_record.invoice_total, -refund.amount_total)
            self.Record._cron_deliver()
            self.assertEqual(peer.records[refund_record.ocpi_id],
                             ("POST", refund_record.raw_json))

            # the next period: the next number, listing exactly its own sessions
            self._invoice("2026-05-08 06:00:00")
            second = april[0].invoice_move_id
            self.assertEqual((second.name, second.clearing_self_billed), ("AUTO/2026/0002", True))
            self.Record._cron_deliver()
            body = peer.records[second.clearing_published_reconciliation_ids.ocpi_id][1]
            self.assertEqual(sorted(body["cdrs"]), sorted(c.ocpi_id for c in april))
            self.assertEqual(body["invoice_id"], "AUTO/2026/0002")

    def test_legal_mention_on_the_pdf(self):
        march = self._sessions(10, 1)
        self._invoice("2026-04-08 06:00:00")
        bill = march[0].invoice_move_id
        pdf, _type = self.env["ir.actions.report"].with_context(
            force_report_rendering=True)._render_qweb_pdf("account.account_invoices", bill.ids)
        text = pdf_text(pdf)
        self.assertIn("Autofacturation — issued by %s in the name and on behalf of %s"
                      % (self.company.name, self.cpo.name), text)
        self.assertIn("article 242 nonies A", text)  # the terms repeat it, with the law
        self.assertIn(bill.name, text)

    def test_option_off_nothing_published(self):
        self.emsp_contract.reverse_billing = False
        with stdlib_peer.StdlibPeer([], invoice_receiver=True) as peer:
            self._connection_to(peer)
            march = self._sessions(10, 2)
            self._invoice("2026-04-08 06:00:00")
            bill = march[0].invoice_move_id
            self.assertEqual((bill.move_type, bill.state), ("in_invoice", "posted"))
            self.assertFalse(bill.clearing_self_billed)
            self.assertFalse(bill.clearing_published_reconciliation_ids)
            self.assertNotIn("Autofacturation", str(bill.narration or ""))
            self.assertFalse(self.company.clearing_self_billing_journal_id)
            self.Record._cron_deliver()
            self.assertEqual(peer.records, {})
            self.assertFalse(self.Record.search([("direction", "=", "published"),
                                                 ("partner_id", "=", self.cpo.id)]))

    def test_only_for_emsp_contracts(self):
        with self.assertRaises(ValidationError) as caught:
            self.contract.reverse_billing = True  # a CPO contract
        self.assertIn(self.contract.name, str(caught.exception))
        form = Form(self.env["clearing.contract"])
        form.partner_id = self.cpo
        form.role = "emsp"
        form.reverse_billing = True
        self.assertTrue(form.reverse_billing)
        form.role = "cpo"  # cleared with the role, and hidden
        self.assertFalse(form.reverse_billing)
        with self.assertRaises(AssertionError):
            form.reverse_billing = True
