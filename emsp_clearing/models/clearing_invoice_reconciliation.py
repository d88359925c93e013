"""clearing.invoice.reconciliation: an OCPI 2.3.0 InvoiceReconciliationRecord (module
``invoicereconciliation``): the id of an invoice and the ids of exactly the CDRs it bills.

``direction`` ``published`` -- the documents we issue: our CPO hat (direct billing), and our
eMSP hat with reverse billing (``clearing.contract.reverse_billing``: the self-billed vendor bill,
``account.move.clearing_self_billed``, is published to the CPO by the same path). When an
invoice or a credit note of
a clearing period is posted, a record is published for it (``_publish``: ``invoice_id`` = the
move's number, ``cdrs`` = the OCPI ids of the CDRs it bills or credits, the ones its XLSX
lists); the scheduled action delivers it (``_deliver``) by POST to the partner's Receiver
endpoint when the version details of its connection list one, by PUT once delivered (a
correction: the move posted again), retrying until delivered; the delivery state shows on the
invoice. Our Sender endpoint serves them too (GET, paginated, ``date_from``/``date_to``).

``direction`` ``received`` -- our eMSP hat:
a CPO's records arrive on our Receiver endpoint (``/ocpi/2.3.0/invoicereconciliation``,
POST/PUT/GET/DELETE, controllers/ocpi.py) and reconciles each at once, without calling anyone,
against our locked CDRs and the vendor bill of that period (``_reconcile``):

* ``unknown``: a CDR listed that we do not hold (a finding, not an error of the record);
* ``not_locked``: a CDR listed that we hold but that is in no locked period yet;
* ``not_listed``: a CDR the vendor bill bills (or the period holds, without a bill) not listed;
* ``duplicate``: a CDR listed in another record of the same CPO;
* ``amount``: our amount of the listed CDRs against the invoice total (the CPO invoice total
  entered on the vendor bill, else the bill's total).

The findings are shown on the vendor bill. Bad input is refused by ``_receive`` with the OCPI
status code and the JSON path; nothing is stored then.
"""

from decimal import Decimal

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.tools import float_compare, float_is_zero

from ..clearing_core import ocpi
from ..clearing_core.errors import OcpiValidationError
from ..clearing_core.transport import client as ocpi_client
from ..clearing_core.transport import envelope as ot

class ClearingInvoiceReconciliation(models.Model):
    _name = "clearing.invoice.reconciliation"
    _description = "OCPI Invoice Reconciliation Record"
    _order = "last_updated desc, id desc"
    _rec_name = "ocpi_id"

    direction = fields.Selection(
        [("received", "Received (the CPO bills us)"), ("published", "Published (we bill)")],
        required=True, default="received", readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    connection_id = fields.Many2one("clearing.ocpi.connection", readonly=True, index=True,
                                    ondelete="set null")
    partner_id = fields.Many2one("res.partner", string="CPO", readonly=True, index=True)
    country_code = fields.Char(required=True, readonly=True)
    party_id = fields.Char(required=True, readonly=True)
    ocpi_id = fields.Char("Record Id", required=True, readonly=True)
    invoice_id = fields.Char("CPO Invoice", required=True, readonly=True)
    cdr_refs = fields.Json("Listed CDR Ids", readonly=True)
    cdr_count = fields.Integer("Listed CDRs", readonly=True)
    last_updated = fields.Datetime(readonly=True)
    raw_json = fields.Json("Received JSON", readonly=True)
    move_id = fields.Many2one("account.move", string="Vendor Bill", readonly=True, index=True,
                              ondelete="set null")
    period_id = fields.Many2one("clearing.period", readonly=True, index=True, ondelete="set null")
    currency_id = fields.Many2one(related="move_id.currency_id")
    listed_amount = fields.Monetary("Our Amount of the Listed CDRs", readonly=True)
    invoice_total = fields.Monetary("Invoice Total", readonly=True)
    amount_difference = fields.Monetary(
        "Difference", readonly=True, help="Our amount of the listed CDRs minus the invoice total.")
    findings = fields.Json("Findings (JSON)", readonly=True)
    finding_count = fields.Integer("Findings", readonly=True, index=True)
    findings_html = fields.Html("Reconciliation", compute="_compute_findings_html", sanitize=False)
    reconciled_on = fields.Datetime(readonly=True)
    # published records: delivery to the partner's Receiver endpoint
    delivery_state = fields.Selection(
        [("pending", "To Deliver"), ("delivered", "Delivered"),
         ("no_endpoint", "No Receiver Endpoint (served by our Sender endpoint)")],
        readonly=True, index=True)
    delivery_attempts = fields.Integer(readonly=True)
    delivery_error = fields.Char("Last Delivery Error", readonly=True)
    delivered_on = fields.Datetime(readonly=True)
    delivered_count = fields.Integer(
        "Deliveries", readonly=True, help="Deliveries done: the first by POST, then PUT.")

    _sql_constraints = [
        ("record_uniq", "unique(company_id, direction, country_code, party_id, ocpi_id)",
         "An invoice reconciliation record with this id was already received from this party."),
    ]

    # ------------------------------------------------------------------ receive (Receiver)
    @api.model
    def _receive(self, conn, method, body=None, key=None):
        """One call on our Receiver endpoint by ``conn``'s partner. ``key``: ``(country_code,
        party_id, id)`` of the URL (None for POST on the endpoint itself). Returns ``(http
        status, OCPI status code, message, data)``; a refusal stores nothing."""
        if key is not None:
            record = self._find(conn, key)
            if method == "GET":
                if not record:
                    return 404, ot.CLIENT_ERROR, _("Unknown invoice reconciliation record"), None
                return 200, ot.SUCCESS, None, record.raw_json
            if method == "DELETE":
                if not record:
                    return 404, ot.CLIENT_ERROR, _("Unknown invoice reconciliation record"), None
                move = record.move_id
                record.unlink()
                if move:
                    move.message_post(body=_(
                        "Invoice reconciliation record %s deleted by the CPO.", key[2]))
                return 200, ot.SUCCESS, None, None
        try:
            parsed = ocpi.parse_invoice_reconciliation_record(body)
        except OcpiValidationError as error:
            return 200, ot.INVALID_PARAMETERS, str(error), {"path": error.path,
                                                            "reason": error.message}
        if key is not None:
            for path, url_value, value in (("$.country_code", key[0], parsed.country_code),
                                           ("$.party_id", key[1], parsed.party_id),
                                           ("$.id", key[2], parsed.id)):
                if url_value.upper() != value.upper():
                    message = _("must be the %(value)s of the URL, got %(got)s",
                                value=url_value, got=value)
                    return 200, ot.INVALID_PARAMETERS, "%s: %s" % (path, message), {
                        "path": path, "reason": message}
        if (parsed.country_code.upper(), parsed.party_id.upper()) not in conn._allowed_parties():
            message = _("%(party)s is not a CPO party of this connection",
                        party="%s*%s" % (parsed.country_code, parsed.party_id))
            return 200, ot.INVALID_PARAMETERS, "$.party_id: " + message, {
                "path": "$.party_id", "reason": message}
        record = self._find(conn, (parsed.country_code, parsed.party_id, parsed.id))
        if record and method == "POST":
            if record.raw_json == body:
                return 200, ot.SUCCESS, _("Record already received (identical)"), None
            message = _("a record with this id exists: send the correction with PUT")
            return 200, ot.INVALID_PARAMETERS, "$.id: " + message, {"path": "$.id",
                                                                    "reason": message}
        vals = self._prepare_record_vals(conn, parsed, body)
        if record:
            record.write(vals)
        else:
            record = self.create(vals)
        record._reconcile()
        return (201 if method == "POST" else 200), ot.SUCCESS, None, None

    @api.model
    def _find(self, conn, key):
        return self.search([
            ("direction", "=", "received"),
            ("company_id", "=", conn.company_id.id), ("country_code", "=ilike", key[0]),
            ("party_id", "=ilike", key[1]), ("ocpi_id", "=", key[2])], limit=1)

    @api.model
    def _prepare_record_vals(self, conn, parsed, body):
        """Hook: the stored values of a received record."""
        return {
            "company_id": conn.company_id.id, "connection_id": conn.id,
            "partner_id": conn.partner_id.id, "country_code": parsed.country_code.upper(),
            "party_id": parsed.party_id.upper(), "ocpi_id": parsed.id,
            "invoice_id": parsed.invoice_id, "cdr_refs": list(parsed.cdrs),
            "cdr_count": len(parsed.cdrs),
            "last_updated": parsed.last_updated.replace(tzinfo=None), "raw_json": body,
        }

    # ------------------------------------------------------------------ reconcile
    def _reconcile(self):
        """Compare each record with our locked CDRs and the vendor bill of its period; store
        the findings (see the module docstring)."""
        Cdr = self.env["clearing.cdr"]
        for record in self:
            listed = list(dict.fromkeys(record.cdr_refs or []))
            held = Cdr.search([
                ("company_id", "=", record.company_id.id),
                ("country_code", "=ilike", record.country_code),
                ("party_id", "=ilike", record.party_id), ("ocpi_id", "in", listed)])
            by_id = {cdr.ocpi_id: cdr for cdr in held}
            locked = held.filtered("locked")
            findings = []
            for ref in listed:
                cdr = by_id.get(ref)
                if cdr is None:
                    findings.append({"kind": "unknown", "cdr": ref})
                elif not cdr.locked:
                    findings.append({"kind": "not_locked", "cdr": ref})
            move = self.env["account.move"].search([
                ("company_id", "=", record.company_id.id), ("move_type", "=", "in_invoice"),
                ("clearing_period_id", "!=", False),
                ("clearing_vendor_reference", "=", record.invoice_id)], limit=1)
            if not move:
                bills = locked.invoice_move_id.filtered(lambda m: m.move_type == "in_invoice")
                move = max(bills, key=lambda m: len(locked.filtered(
                    lambda c, m=m: c.invoice_move_id == m)), default=bills[:0])
            period = move.clearing_period_id or locked.period_id[:1]
            if move:
                billed = move.clearing_cdr_ids
            else:
                billed = period.cdr_ids.filtered(lambda c: c.locked and c.state != "excluded")
            for cdr in billed.sorted("ocpi_id"):
                if cdr.ocpi_id not in by_id:
                    findings.append({"kind": "not_listed", "cdr": cdr.ocpi_id})
            others = self.search([
                ("id", "!=", record.id), ("direction", "=", "received"),
                ("company_id", "=", record.company_id.id),
                ("country_code", "=", record.country_code), ("party_id", "=", record.party_id)])
            for other in others:
                for ref in set(other.cdr_refs or ()) & set(listed):
                    findings.append({"kind": "duplicate", "cdr": ref, "record": other.ocpi_id})
            listed_amount = sum((Decimal(str(cdr.amount_total)) for cdr in locked), Decimal(0))
            invoice_total = 0.0
            difference = 0.0
            if move:
                invoice_total = (move.clearing_vendor_total if move.clearing_vendor_reference
                                 and not float_is_zero(move.clearing_vendor_total,
                                                       precision_rounding=move.currency_id.rounding)
                                 else move.amount_total)
                difference = float(listed_amount) - invoice_total
                if float_compare(difference, 0.0, precision_rounding=move.currency_id.rounding):
                    findings.append({"kind": "amount", "listed": float(listed_amount),
                                     "invoice": invoice_total})
                if not move.clearing_vendor_reference:
                    move.clearing_vendor_reference = record.invoice_id
            record.write({
                "move_id": move.id or False, "period_id": period.id or False,
                "listed_amount": float(listed_amount), "invoice_total": invoice_total,
                "amount_difference": difference, "findings": findings,
                "finding_count": len(findings), "reconciled_on": fields.Datetime.now(),
            })

    # ------------------------------------------------------------------ publish (we bill)
    @api.model
    def _publish(self, moves):
        """Publish (or correct) the record of each posted document of a clearing period in
        ``moves`` that we issue (``account.move._clearing_published``: our invoices and credit
        notes as the CPO, our self-billed vendor bills and their credit notes as the eMSP with
        reverse billing); returns the records. Delivery is left to the scheduled action."""
        records = self.browse()
        for move in moves:
            refund = move.move_type in ("out_refund", "in_refund")
            own = move.company_id.partner_id
            cdrs = self.env["clearing.cdr"].search([("invoice_move_id", "=", move.id)],
                                                   order="id")
            conn = move._clearing_connection()
            vals = {
                "direction": "published", "company_id": move.company_id.id,
                "connection_id": conn.id or False, "partner_id": move.commercial_partner_id.id,
                "country_code": own.ocpi_country_code or "", "party_id": own.ocpi_party_id or "",
                "ocpi_id": "%s-%d" % ("CN" if refund else "INV", move.id),
                "invoice_id": move.name, "cdr_refs": cdrs.mapped("ocpi_id"),
                "cdr_count": len(cdrs), "last_updated": fields.Datetime.now(),
                "move_id": move.id, "period_id": move.clearing_period_id.id,
                "listed_amount": sum(cdrs.mapped("amount_total")),
                "invoice_total": move.amount_total * (-1 if refund else 1),
                "delivery_state": "pending" if conn._endpoint_url(
                    "invoicereconciliation", "RECEIVER") else "no_endpoint",
                "delivery_error": False,
            }
            vals["raw_json"] = self._record_json(vals)
            record = self.search([("direction", "=", "published"), ("move_id", "=", move.id)],
                                 limit=1)
            if record:
                record.write(vals)
            else:
                record = self.create(vals)
            records |= record
        if records.filtered(lambda r: r.delivery_state == "pending"):
            self.env.ref("emsp_clearing.ir_cron_invoice_reconciliation_deliver")._trigger()
        return records

    @api.model
    def _record_json(self, vals):
        """The InvoiceReconciliationRecord object of published ``vals``."""
        return {
            "country_code": vals["country_code"], "party_id": vals["party_id"],
            "id": vals["ocpi_id"], "invoice_id": vals["invoice_id"], "cdrs": vals["cdr_refs"],
            "last_updated": ot.format_datetime(vals["last_updated"]),
        }

    @api.model
    def _cron_deliver(self, limit=200):
        """Deliver the published records waiting for it (oldest first); a failure is kept
        on the record and retried at the next run."""
        records = self.search([("direction", "=", "published"),
                               ("delivery_state", "=", "pending")], order="id", limit=limit)
        records._deliver()
        return records

    def _deliver(self):
        for record in self:
            conn = record.connection_id
            url = conn._endpoint_url("invoicereconciliation", "RECEIVER") if conn else False
            if not url:
                record.write({"delivery_state": "no_endpoint"})
                continue
            body = record.raw_json
            try:
                client = conn._client(retries=0)
                if record.delivered_count:
                    client.request("PUT", "%s/%s/%s/%s" % (
                        url.rstrip("/"), body["country_code"], body["party_id"], body["id"]),
                        json_body=body)
                else:
                    client.request("POST", url, json_body=body)
            except (ocpi_client.OcpiClientError, ValueError) as error:
                record.write({"delivery_attempts": record.delivery_attempts + 1,
                              "delivery_error": str(error)[:255]})
                continue
            record.write({"delivery_state": "delivered", "delivered_on": fields.Datetime.now(),
                          "delivery_attempts": record.delivery_attempts + 1,
                          "delivered_count": record.delivered_count + 1,
                          "delivery_error": False})

    @api.model
    def _finding_labels(self):
        return {
            "unknown": _("CDR listed that we do not hold"),
            "not_locked": _("CDR listed that is in no locked period"),
            "not_listed": _("CDR billed that the record does not list"),
            "duplicate": _("CDR listed in another record"),
            "amount": _("Amount of the listed CDRs differs from the invoice total"),
        }

    @api.depends("findings", "finding_count")
    def _compute_findings_html(self):
        labels = self._finding_labels()
        for record in self:
            if not record.findings:
                record.findings_html = Markup("<p class='text-success'>%s</p>") % _(
                    "Every listed CDR is ours and locked, every billed CDR is listed, the "
                    "amounts agree.")
                continue
            rows = []
            for finding in record.findings:
                detail = finding.get("cdr") or ""
                if finding["kind"] == "duplicate":
                    detail = _("%(cdr)s (also in record %(record)s)", cdr=finding["cdr"],
                               record=finding["record"])
                elif finding["kind"] == "amount":
                    detail = _("ours %(listed).2f, invoice %(invoice).2f",
                               listed=finding["listed"], invoice=finding["invoice"])
                rows.append(Markup("<tr><td>%s</td><td>%s</td></tr>") % (
                    labels.get(finding["kind"], finding["kind"]), detail))
            record.findings_html = Markup(
                "<table class='table table-sm'><thead><tr><th>%s</th><th>%s</th></tr></thead>"
                "<tbody>%s</tbody></table>") % (_("Finding"), _("CDR / detail"),
                                               Markup("").join(rows))
