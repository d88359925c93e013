from odoo import Command, api, fields, models


class AccountPaymentOrder(models.Model):
    _inherit = "account.payment.order"

    @api.model
    def _clearing_demo_create(self):
        """Demo: a SEPA payment order holding the refund of an eMSP's overpayment (matched from
        a bank statement line, settled from the exception journal) and a CPO's vendor bill."""
        company = self.env.company
        env = self.env
        bank = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1)
        sale = env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", company.id)], limit=1)
        purchase = env["account.journal"].search(
            [("type", "=", "purchase"), ("company_id", "=", company.id)], limit=1)
        method = env.ref("account_banking_sepa_credit_transfer.sepa_credit_transfer",
                         raise_if_not_found=False)
        if not (bank and sale and purchase and method):
            return False  # no chart of accounts: nothing to demonstrate
        if not bank.bank_account_id:
            bank.bank_account_id = env["res.partner.bank"].create({
                "acc_number": "FR7630006000011234567890189",
                "partner_id": company.partner_id.id,
            })
        if method not in bank.outbound_payment_method_line_ids.payment_method_id:
            bank.outbound_payment_method_line_ids = [Command.create({
                "payment_method_id": method.id, "name": method.name})]
        mode = company.clearing_payment_mode_id or env["account.payment.mode"].create({
            "name": "Clearing SEPA Credit Transfer", "company_id": company.id,
            "payment_method_id": method.id, "bank_account_link": "fixed",
            "fixed_journal_id": bank.id, "default_batch_booking": True,
        })
        company.clearing_payment_mode_id = mode
        emsp = env.ref("emsp_clearing.demo_partner_electra")
        cpo = env.ref("emsp_clearing.demo_partner_volta")
        invoice = env["account.move"].create({
            "move_type": "out_invoice", "partner_id": emsp.id, "journal_id": sale.id,
            "invoice_date": fields.Date.context_today(self),
            "invoice_line_ids": [Command.create({
                "name": "Charging sessions (demo)", "price_unit": 120.0, "tax_ids": []})],
        })
        invoice.action_post()
        statement = env["account.bank.statement"].create({
            "name": "Demo statement", "journal_id": bank.id,
            "line_ids": [Command.create({
                "date": fields.Date.context_today(self), "amount": 150.0,
                "payment_ref": "Electra Mobility - invoice %s" % invoice.name,
                "partner_id": emsp.id, "journal_id": bank.id,
            })],
        })
        statement.line_ids._clearing_match()
        statement.line_ids.clearing_exception_ids.filtered(
            lambda e: e.exception_type == "overpayment").action_refund_excess()
        bill = env["account.move"].create({
            "move_type": "in_invoice", "partner_id": cpo.id, "journal_id": purchase.id,
            "invoice_date": fields.Date.context_today(self), "ref": "VOLTA-2026-11",
            "invoice_line_ids": [Command.create({
                "name": "Roaming sessions on the Volta network (demo)", "price_unit": 480.0,
                "tax_ids": []})],
        })
        bill.action_post()
        return bill.action_clearing_add_to_payment_order()
