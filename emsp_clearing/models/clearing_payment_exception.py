"""The payment exception journal: every bank payment the matching could not settle in full,
and every invoice past its due date."""

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError

EXCEPTION_TYPES = [
    ("partial", "Partial payment"),
    ("overpayment", "Overpayment"),
    ("unknown", "Unknown payer or reference"),
    ("duplicate", "Duplicate payment"),
    ("credited", "Paid after credit/cancellation"),
    ("currency", "Currency mismatch"),
    ("late", "Late payment"),
]


class ClearingPaymentException(models.Model):
    _name = "clearing.payment.exception"
    _description = "Clearing Payment Exception"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "state, date desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    exception_type = fields.Selection(
        EXCEPTION_TYPES, string="Type", required=True, readonly=True, index=True, tracking=True,
    )
    state = fields.Selection(
        [("open", "Open"), ("resolved", "Resolved")], default="open", required=True,
        readonly=True, index=True, tracking=True,
    )
    date = fields.Date(default=fields.Date.context_today, required=True, readonly=True)
    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, index=True,
        default=lambda self: self.env.company,
    )
    partner_id = fields.Many2one("res.partner", string="Partner", index=True, tracking=True)
    contract_id = fields.Many2one(
        "clearing.contract", string="Contract", index=True, readonly=True,
        compute="_compute_contract_id", store=True, check_company=True,
    )
    invoice_id = fields.Many2one(
        "account.move", string="Invoice", index=True, readonly=True, check_company=True,
    )
    invoice_ids = fields.Many2many(
        "account.move", string="Invoices", readonly=True,
        help="Every invoice the payment named (one payment for several invoices).",
    )
    statement_line_id = fields.Many2one(
        "account.bank.statement.line", string="Bank Statement Line", index=True,
        readonly=True, check_company=True, ondelete="cascade",
    )
    payment_ref = fields.Char(related="statement_line_id.payment_ref", string="Remittance")
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    expected_amount = fields.Monetary("Expected", readonly=True)
    received_amount = fields.Monetary("Received", readonly=True)
    difference = fields.Monetary(compute="_compute_difference", store=True)
    days_late = fields.Integer(readonly=True)
    reminder_sent_on = fields.Date("Reminder Sent On", readonly=True, copy=False)
    resolution_note = fields.Text(tracking=True)
    resolved_on = fields.Datetime(readonly=True, copy=False)
    resolved_by_id = fields.Many2one("res.users", string="Resolved By", readonly=True)
    assign_invoice_id = fields.Many2one(
        "account.move", string="Assign to Invoice", check_company=True,
        domain="[('move_type', '=', 'out_invoice'), ('state', '=', 'posted'), "
        "('payment_state', 'in', ('not_paid', 'partial'))]",
        help="The open invoice this payment pays, chosen by hand.",
    )
    payment_order_id = fields.Many2one(
        "account.payment.order", string="Refund Payment Order", readonly=True, copy=False,
    )

    # ------------------------------------------------------------------ computes
    @api.depends("exception_type", "partner_id", "invoice_id", "statement_line_id")
    def _compute_name(self):
        labels = dict(self._fields["exception_type"]._description_selection(self.env))
        for exc in self:
            what = exc.invoice_id.name or exc.statement_line_id.payment_ref or ""
            exc.name = " – ".join(filter(None, [labels.get(exc.exception_type),
                                                exc.partner_id.name, what]))

    @api.depends("invoice_id.clearing_contract_id")
    def _compute_contract_id(self):
        for exc in self:
            exc.contract_id = exc.invoice_id.clearing_contract_id

    @api.depends("expected_amount", "received_amount")
    def _compute_difference(self):
        for exc in self:
            exc.difference = exc.received_amount - exc.expected_amount

    # ------------------------------------------------------------------ recording
    @api.model
    def _record(self, vals_list):
        """Create the exceptions of ``vals_list`` not open already (same statement line or
        invoice, same type); an open exception of another type on the same statement line is
        resolved as superseded. One search for the whole list."""
        if not vals_list:
            return self
        st_ids = [v["statement_line_id"] for v in vals_list if v.get("statement_line_id")]
        existing = self.search([("state", "=", "open"), ("statement_line_id", "in", st_ids)])
        by_line = {}
        for exc in existing:
            by_line.setdefault(exc.statement_line_id.id, self.browse())
            by_line[exc.statement_line_id.id] |= exc
        to_create, superseded = [], self.browse()
        for vals in vals_list:
            current = by_line.get(vals.get("statement_line_id"), self.browse())
            same = current.filtered(lambda e, t=vals["exception_type"]: e.exception_type == t)
            superseded |= current - same
            if not same:
                to_create.append(vals)
        superseded._resolve(_("Superseded by a later matching of the same payment."))
        return self.create(to_create)

    def _resolve(self, note):
        if not self:
            return
        self.write({
            "state": "resolved", "resolved_on": fields.Datetime.now(),
            "resolved_by_id": self.env.uid,
        })
        for exc in self:
            exc.resolution_note = "\n".join(filter(None, [exc.resolution_note, note]))

    def _check_open(self):
        for exc in self:
            if exc.state != "open":
                raise UserError(_("Exception %s is already resolved.", exc.display_name))

    def _check_line(self):
        self.ensure_one()
        if not self.statement_line_id:
            raise UserError(_("Exception %s has no bank payment to settle.",
                              self.display_name))

    # ------------------------------------------------------------------ resolution actions
    def action_reconcile_partial(self):
        """Apply the whole payment to the invoice, whose remainder stays open."""
        for exc in self:
            exc._check_open()
            exc._check_line()
            if exc.exception_type != "partial" or not exc.invoice_ids:
                raise UserError(_("Only a partial payment of an invoice can be reconciled as "
                                  "partial (%s).", exc.display_name))
            st = exc.statement_line_id
            st._clearing_reconcile_parts(
                st._clearing_invoice_parts(exc.invoice_ids, exc.received_amount))
            st.clearing_match_rule = "manual"
            exc._resolve(_("Reconciled as a partial payment; %(rest)s remain open.",
                           rest=exc.currency_id.format(-exc.difference)))
        return True

    def _writeoff_allowed(self):
        self.ensure_one()
        company = self.company_id
        diff = abs(self.difference)
        limit_pct = abs(self.expected_amount) * company.clearing_pay_tolerance_percent / 100.0
        if (self.currency_id.compare_amounts(diff, company.clearing_pay_tolerance_amount) > 0
                or self.currency_id.compare_amounts(diff, limit_pct) > 0):
            raise UserError(_(
                "The difference of %(diff)s on %(exc)s is above the write-off tolerance "
                "(%(amount)s and %(pct)s %% of the amount expected).",
                diff=self.currency_id.format(diff), exc=self.display_name,
                amount=self.currency_id.format(company.clearing_pay_tolerance_amount),
                pct=company.clearing_pay_tolerance_percent))
        if not company.clearing_pay_writeoff_account_id:
            raise UserError(_("Set the payment write-off account in the Clearing settings."))

    def action_write_off(self):
        """Pay the invoice in full, the small difference to the write-off account."""
        for exc in self:
            exc._check_open()
            exc._check_line()
            if exc.exception_type not in ("partial", "overpayment") or not exc.invoice_ids:
                raise UserError(_("Only the difference of a partial payment or an "
                                  "overpayment can be written off (%s).", exc.display_name))
            exc._writeoff_allowed()
            st = exc.statement_line_id
            parts = st._clearing_invoice_parts(exc.invoice_ids)
            parts.append({
                "account_id": exc.company_id.clearing_pay_writeoff_account_id.id,
                "partner_id": exc.partner_id.id,
                "name": _("Payment difference written off"),
                "amount": exc.difference,
            })
            st._clearing_reconcile_parts(parts)
            st.clearing_match_rule = "manual"
            exc._resolve(_("Difference of %(diff)s written off.",
                           diff=exc.currency_id.format(exc.difference)))
        return True

    def action_refund_excess(self):
        """Pay the invoice(s) named in full and refund the excess (or the whole payment of a
        duplicate or credited invoice) to the payer: an outgoing payment line in the clearing
        payment order."""
        for exc in self:
            exc._check_open()
            exc._check_line()
            if exc.exception_type not in ("overpayment", "duplicate", "credited"):
                raise UserError(_("Only an overpayment, a duplicate payment or a payment of a "
                                  "credited invoice can be refunded (%s).", exc.display_name))
            if not exc.partner_id:
                raise UserError(_("Set the partner to refund on %s.", exc.display_name))
            st = exc.statement_line_id
            parts = (st._clearing_invoice_parts(exc.invoice_ids)
                     if exc.exception_type == "overpayment" else [])
            excess = exc.received_amount - sum(p["amount"] for p in parts)
            receivable = exc.partner_id.with_company(exc.company_id).property_account_receivable_id
            parts.append({
                "account_id": receivable.id, "partner_id": exc.partner_id.id,
                "name": _("Refund of %s", exc.name), "amount": excess,
            })
            # refused before anything is written when the partner has no valid bank account
            probe = self.env["account.move.line"].new({"partner_id": exc.partner_id.id})
            probe._clearing_check_bank_account()
            new_lines = st._clearing_reconcile_parts(parts)
            st.clearing_match_rule = "manual"
            order = new_lines[-1:]._clearing_add_to_payment_order(exc.company_id)
            exc.payment_order_id = order
            exc._resolve(_("Excess of %(amount)s refunded through payment order %(order)s.",
                           amount=exc.currency_id.format(excess), order=order.name))
        return True

    def action_assign_invoice(self):
        """Settle the payment against the invoice chosen by hand: paid in full when the
        amount is its residual, else the exception becomes a partial payment or an
        overpayment of that invoice (to be settled by the other actions)."""
        for exc in self:
            exc._check_open()
            exc._check_line()
            invoice = exc.assign_invoice_id
            if not invoice:
                raise UserError(_("Choose the invoice to assign on %s.", exc.display_name))
            if invoice.currency_id != exc.currency_id:
                raise UserError(_("Invoice %(inv)s is in %(cur)s, the payment in %(paid)s.",
                                  inv=invoice.name, cur=invoice.currency_id.name,
                                  paid=exc.currency_id.name))
            residual = invoice.amount_residual
            cmp = exc.currency_id.compare_amounts(exc.received_amount, residual)
            if cmp == 0:
                st = exc.statement_line_id
                st._clearing_reconcile_invoices(invoice)
                st.clearing_match_rule = "manual"
                exc.write({"invoice_id": invoice.id,
                           "invoice_ids": [Command.set(invoice.ids)],
                           "partner_id": invoice.commercial_partner_id.id,
                           "expected_amount": residual})
                exc._resolve(_("Assigned by hand to invoice %s, paid in full.", invoice.name))
            else:
                exc.write({
                    "exception_type": "partial" if cmp < 0 else "overpayment",
                    "invoice_id": invoice.id, "invoice_ids": [Command.set(invoice.ids)],
                    "partner_id": invoice.commercial_partner_id.id,
                    "expected_amount": residual,
                })
                exc.message_post(body=_("Assigned by hand to invoice %s.", invoice.name))
        return True

    def action_resolve(self):
        """Close by hand (the note says why)."""
        for exc in self:
            exc._check_open()
            if not exc.resolution_note:
                raise UserError(_("Write a resolution note on %s before closing it.",
                                  exc.display_name))
        self._resolve(False)
        return True

    # ------------------------------------------------------------------ late payments
    @api.model
    def _cron_late_payments(self):
        """Open a 'late' exception per customer invoice past its due date and not fully paid
        (days late updated daily), close those of invoices paid since, and send the reminder
        to the eMSP's billing contacts once the company's delay has passed."""
        today = fields.Date.context_today(self)
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT m.id, m.invoice_date_due, m.amount_residual, m.amount_total,
                   m.company_id, m.currency_id, m.commercial_partner_id
              FROM account_move m
             WHERE m.move_type = 'out_invoice' AND m.state = 'posted'
               AND m.payment_state IN ('not_paid', 'partial')
               AND m.invoice_date_due < %s
        """, [today])
        overdue = {r[0]: r for r in self.env.cr.fetchall()}
        open_late = self.search([("exception_type", "=", "late"), ("state", "=", "open")])
        known = {exc.invoice_id.id: exc for exc in open_late}
        settled = open_late.filtered(lambda e: e.invoice_id.id not in overdue)
        settled.filtered(lambda e: e.invoice_id.payment_state in ("paid", "in_payment"))._resolve(
            _("The invoice is paid."))
        settled.filtered(lambda e: e.state == "open")._resolve(
            _("The invoice is no longer due (cancelled, credited or due date changed)."))
        vals_list = []
        for move_id, (_mid, due, residual, total, company_id, currency_id,
                      partner_id) in overdue.items():
            days = (today - due).days
            exc = known.get(move_id)
            if exc:
                if exc.days_late != days or exc.received_amount != total - residual:
                    exc.write({"days_late": days, "received_amount": total - residual})
                continue
            vals_list.append({
                "exception_type": "late", "invoice_id": move_id,
                "invoice_ids": [Command.set([move_id])], "partner_id": partner_id,
                "company_id": company_id, "currency_id": currency_id,
                "expected_amount": total, "received_amount": total - residual,
                "days_late": days,
            })
        created = self.create(vals_list)
        (open_late | created).filtered(lambda e: e.state == "open")._send_late_reminders()
        return created

    def _send_late_reminders(self):
        template = self.env.ref("emsp_clearing.mail_template_payment_late",
                                raise_if_not_found=False)
        if not template:
            return
        for exc in self:
            delay = exc.company_id.clearing_late_reminder_days
            if exc.reminder_sent_on or not delay or exc.days_late < delay:
                continue
            template.send_mail(exc.id, force_send=False)
            exc.reminder_sent_on = fields.Date.context_today(self)

    def _late_reminder_recipients(self):
        """The eMSP's billing contacts, else the partner itself (comma-separated ids)."""
        self.ensure_one()
        partner = self.partner_id.commercial_partner_id
        contacts = partner.clearing_billing_contact_ids or partner
        return ",".join(str(i) for i in contacts.ids)
