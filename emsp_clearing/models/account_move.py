"""account.move: the invoice, vendor bill or credit note of a clearing period."""

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_compare
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban

# Decimal places the clearing lines need (see clearing.period._exact_quantity_price): kWh to
# the Wh (OCPI volumes), tariff prices to 1/100 of a cent (OCPI tariffs carry 4 decimals).
MIN_DIGITS = {"product.decimal_product_uom": 3, "product.decimal_price": 4}


class AccountMove(models.Model):
    _inherit = "account.move"

    clearing_period_id = fields.Many2one(
        "clearing.period", string="Clearing Period", index="btree_not_null", copy=False,
        readonly=True, ondelete="restrict",
    )
    clearing_contract_id = fields.Many2one(
        related="clearing_period_id.contract_id", store=True, index="btree_not_null",
        string="Clearing Contract",
    )
    clearing_cdr_ids = fields.One2many(
        "clearing.cdr", "invoice_move_id", string="Billed Sessions", readonly=True)
    clearing_cdr_count = fields.Integer("Sessions", compute="_compute_clearing_cdr_count")
    # vendor bills (we are the eMSP): the CPO's own invoice, against our computed amount
    clearing_vendor_reference = fields.Char(
        "CPO Invoice Reference", copy=False, tracking=True,
        help="Number of the invoice the CPO sent for this clearing period.",
    )
    clearing_vendor_total = fields.Monetary(
        "CPO Invoice Total", copy=False, tracking=True, currency_field="currency_id",
        help="Total (incl. VAT) of the invoice the CPO sent, to compare with ours.",
    )
    clearing_vendor_difference = fields.Monetary(
        "Difference to the CPO Invoice", compute="_compute_clearing_vendor_difference",
        store=True, currency_field="currency_id",
        help="CPO invoice total minus the total computed from the locked sessions.",
    )
    clearing_vendor_mismatch = fields.Boolean(
        "CPO Invoice Differs", compute="_compute_clearing_vendor_difference", store=True)
    # reverse billing (clearing.contract.reverse_billing): we issue this vendor bill (or its
    # credit note) in the CPO's name, numbered in our self-billing journal
    clearing_self_billed = fields.Boolean(
        "Self-Billed (Autofacturation)", copy=False, readonly=True, index="btree_not_null",
        help="Issued by us in the name and on behalf of the CPO (reverse billing): numbered "
        "in our self-billing journal, with the legal mention 'Autofacturation'; its OCPI "
        "invoice reconciliation record is published to the CPO.")
    # OCPI 2.3.0 invoice reconciliation records the CPO sent for this vendor bill
    clearing_reconciliation_ids = fields.One2many(
        "clearing.invoice.reconciliation", "move_id", domain=[("direction", "=", "received")],
        string="Invoice Reconciliation Records", readonly=True)
    clearing_published_reconciliation_ids = fields.One2many(
        "clearing.invoice.reconciliation", "move_id",
        domain=[("direction", "=", "published")],
        string="Published Invoice Reconciliation Records", readonly=True)
    clearing_reconciliation_findings = fields.Integer(
        "Reconciliation Findings", compute="_compute_clearing_reconciliation_findings")

    def init(self):
        super().init()
        # exactly once: one invoice (or vendor bill) per clearing period, whatever runs at once
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS account_move_clearing_period_invoice_uniq
                   ON account_move (clearing_period_id)
                WHERE clearing_period_id IS NOT NULL
                  AND move_type IN ('out_invoice', 'in_invoice')"""
        )
        # Odoo numbers each move after the journal's latest named move (search on the journal,
        # ORDER BY date DESC, id DESC LIMIT 1): without this index every move posted read all
        # the moves of its journal (a bank statement of n lines: n^2)
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS account_move_journal_date_id_desc
                   ON account_move (journal_id, date DESC, id DESC)"""
        )

    @api.depends("clearing_reconciliation_ids.finding_count")
    def _compute_clearing_reconciliation_findings(self):
        for move in self:
            move.clearing_reconciliation_findings = sum(
                move.clearing_reconciliation_ids.mapped("finding_count"))

    def _get_starting_sequence(self):
        # a self-billed document is numbered per year in its own journal: AUTO/2026/0001
        # (credit notes RAUTO/2026/0001), whatever the monthly default of purchase journals
        if self.clearing_self_billed:
            return "%s%s/%04d/0000" % ("R" if self.move_type == "in_refund" else "",
                                       self.journal_id.code, self.date.year)
        return super()._get_starting_sequence()

    def _clearing_published(self):
        """The clearing documents we issue, whose OCPI invoice reconciliation record we
        publish: our invoices and credit notes (CPO role), our self-billed vendor bills and
        their credit notes (eMSP role with reverse billing)."""
        return self.filtered(lambda m: m.clearing_period_id and (
            m.move_type in ("out_invoice", "out_refund")
            or (m.clearing_self_billed and m.move_type in ("in_invoice", "in_refund"))))

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        ours = posted._clearing_published()
        if ours:
            self.env["clearing.invoice.reconciliation"].sudo()._publish(ours)
        return posted

    def _clearing_connection(self):
        """The registered OCPI connection with this move's partner (the eMSP we bill, or the
        CPO in whose name we self-bill)."""
        self.ensure_one()
        return self.env["clearing.ocpi.connection"].sudo().search([
            ("company_id", "=", self.company_id.id), ("state", "=", "registered"),
            ("partner_id", "=", self.commercial_partner_id.id)], limit=1)

    def _compute_clearing_cdr_count(self):
        counts = dict(self.env["clearing.cdr"]._read_group(
            [("invoice_move_id", "in", self.ids)], ["invoice_move_id"], ["__count"]))
        for move in self:
            move.clearing_cdr_count = counts.get(move, 0)

    @api.depends("clearing_vendor_total", "clearing_vendor_reference", "amount_total")
    def _compute_clearing_vendor_difference(self):
        for move in self:
            if move.clearing_period_id and move.clearing_vendor_reference:
                difference = move.clearing_vendor_total - move.amount_total
                move.clearing_vendor_difference = difference
                move.clearing_vendor_mismatch = bool(float_compare(
                    difference, 0.0, precision_rounding=move.currency_id.rounding))
            else:
                move.clearing_vendor_difference = 0.0
                move.clearing_vendor_mismatch = False

    @api.model
    def _clearing_ensure_digits(self):
        """Raise the quantity and unit price precisions to what clearing lines need (never
        lower them). Called when the module is installed or updated."""
        for xmlid, digits in MIN_DIGITS.items():
            precision = self.env.ref(xmlid, raise_if_not_found=False)
            if precision and precision.digits < digits:
                precision.digits = digits

    def write(self, vals):
        # a posted clearing invoice is never edited: corrections are credit notes
        if "clearing_period_id" in vals and any(
                move.clearing_period_id and move.clearing_period_id.id != vals[
                    "clearing_period_id"] for move in self):
            raise UserError(_("A clearing invoice cannot be moved to another clearing period."))
        return super().write(vals)

    def action_view_clearing_period(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "clearing.period",
            "res_id": self.clearing_period_id.id,
            "view_mode": "form",
            "name": self.clearing_period_id.display_name,
        }

    def action_view_clearing_cdrs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_cdr")
        action["domain"] = [("invoice_move_id", "=", self.id)]
        action["context"] = {}
        action["name"] = _("Sessions of %s", self.display_name)
        return action

    # Payments
    clearing_payment_exception_ids = fields.One2many(
        "clearing.payment.exception", "invoice_id", string="Payment Exceptions", readonly=True,
    )

    def _compute_payment_state(self):
        super()._compute_payment_state()
        self.filtered("clearing_period_id")._clearing_sync_period_state()

    def _clearing_sync_period_state(self):
        """A period whose invoice (or vendor bill) is paid goes to 'paid', and back to
        'invoiced' when a payment is undone (``clearing.period._invoice_payment_states``)."""
        periods = self.clearing_period_id.sudo()
        states = periods._invoice_payment_states()
        for period in periods:
            paid = states.get(period.id) == "paid"
            if paid and period.state == "invoiced":
                period.state = "paid"
            elif not paid and period.state == "paid":
                period.state = "invoiced"

    def action_clearing_add_to_payment_order(self):
        """Put what we owe on these documents (CPO vendor bills, credit notes to eMSPs) in the
        clearing payment order."""
        lines = self.line_ids.filtered(
            lambda l: l.display_type == "payment_term" and not l.reconciled
            and l.move_id.state == "posted"
            and l.move_id.move_type in ("in_invoice", "out_refund")
        )
        if not lines:
            raise UserError(_("Nothing to pay: select posted vendor bills or credit notes "
                              "with an open amount."))
        return lines._clearing_add_to_payment_order()


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    # Payments
    def _clearing_check_bank_account(self):
        """The bank account the payment goes to: the line's, else the partner's first; its
        IBAN and BIC checked with python-stdnum. Refuses naming the partner."""
        self.ensure_one()
        partner = self.partner_id.commercial_partner_id
        bank = self.partner_bank_id or (partner.bank_ids | self.partner_id.bank_ids)[:1]
        if not bank:
            raise UserError(_(
                "%(partner)s has no bank account: add one with a valid IBAN to the partner "
                "before paying it by SEPA credit transfer.", partner=partner.display_name))
        if not stdnum_iban.is_valid(bank.acc_number or ""):
            raise UserError(_(
                "The bank account %(account)s of %(partner)s is not a valid IBAN: correct it "
                "before paying the partner by SEPA credit transfer.",
                account=bank.acc_number, partner=partner.display_name))
        if bank.bank_bic and not stdnum_bic.is_valid(bank.bank_bic):
            raise UserError(_(
                "The BIC %(bic)s of the bank account of %(partner)s is not valid.",
                bic=bank.bank_bic, partner=partner.display_name))
        return bank

    def _clearing_add_to_payment_order(self, company=None):
        """Add these open lines (what we owe: a credit on receivable/payable) to the draft
        outgoing payment order of the clearing payment mode, creating it when needed.
        Returns the order."""
        company = company or self.company_id[:1]
        mode = company.clearing_payment_mode_id
        if not mode:
            raise UserError(_(
                "Set the outgoing payment mode of the clearing (Clearing settings, Payments) "
                "before putting refunds or vendor bills in a payment order."))
        for line in self:
            bank = line._clearing_check_bank_account()
            if line.partner_bank_id != bank:
                line.partner_bank_id = bank
        Order = self.env["account.payment.order"]
        order = Order.search([
            ("payment_mode_id", "=", mode.id), ("state", "=", "draft"),
            ("company_id", "=", company.id),
        ], limit=1)
        if not order:
            order = Order.create({
                "payment_mode_id": mode.id,
                "journal_id": mode.fixed_journal_id.id,
                "company_id": company.id,
            })
        already = order.payment_line_ids.move_line_id
        for pay_line in (self - already).create_payment_line_from_move_line(order):
            if not pay_line.communication:
                # a refund from a bank statement line: its label says what it refunds
                aml = pay_line.move_line_id
                pay_line.communication = aml.name or aml.move_id.ref or aml.move_id.name
        return order
