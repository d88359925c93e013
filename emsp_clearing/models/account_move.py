from odoo import _, fields, models
from odoo.exceptions import UserError
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban


class AccountMove(models.Model):
    _inherit = "account.move"

    clearing_period_id = fields.Many2one("clearing.period", string="Clearing Period", index="btree_not_null", copy=False, readonly=True, ondelete="restrict")
    clearing_contract_id = fields.Many2one(related="clearing_period_id.contract_id", store=True, index=True, string="Clearing Contract")

    # Payments
    clearing_payment_exception_ids = fields.One2many(
        "clearing.payment.exception", "invoice_id", string="Payment Exceptions", readonly=True,
    )

    def _compute_payment_state(self):
        super()._compute_payment_state()
        self.filtered("clearing_period_id")._clearing_sync_period_state()

    def _clearing_sync_period_state(self):
        """A period whose invoice is paid goes to 'paid' (and back to 'invoiced' when a
        payment is undone)."""
        for period in self.clearing_period_id:
            invoices = self.sudo().search([
                ("clearing_period_id", "=", period.id), ("state", "=", "posted"),
                ("move_type", "=", "out_invoice"),
            ])
            paid = bool(invoices) and all(
                inv.payment_state in ("paid", "in_payment") for inv in invoices)
            if paid and period.state == "invoiced":
                period.sudo().state = "paid"
            elif not paid and period.state == "paid":
                period.sudo().state = "invoiced"

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
