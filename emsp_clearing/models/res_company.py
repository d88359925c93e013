from odoo import _, fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    clearing_self_billing_journal_id = fields.Many2one(
        "account.journal",
        string="Self-Billing Journal",
        check_company=True,
        domain=[("type", "=", "purchase")],
        help="Purchase journal of the vendor bills we issue in the CPO's name for contracts "
        "with reverse billing (self-billing, 'Autofacturation'): its own numbering, "
        "AUTO/YYYY/NNNN. Created with the first such bill when empty.",
    )
    clearing_price_tolerance = fields.Float(
        string="Clearing Price Tolerance",
        digits=(16, 6),
        default=0.01,
        help="Largest difference (excl. VAT, in the CDR currency) between the total "
        "stated by the CPO and our own pricing that is not reported as a mismatch. "
        "Default for new contracts.",
    )

    # Payments
    clearing_pay_tolerance_amount = fields.Monetary(
        string="Payment Write-off Tolerance",
        currency_field="currency_id",
        default=1.0,
        help="Largest payment difference (in the company currency) an accountant may write "
        "off from the payment exception journal.",
    )
    clearing_pay_tolerance_percent = fields.Float(
        string="Payment Write-off Tolerance (%)",
        digits=(16, 2),
        default=0.5,
        help="Largest payment difference, in percent of the amount expected, that may be "
        "written off. Both limits apply.",
    )
    clearing_pay_writeoff_account_id = fields.Many2one(
        "account.account",
        string="Payment Write-off Account",
        check_company=True,
        help="Account receiving the small differences written off.",
    )
    clearing_late_reminder_days = fields.Integer(
        string="Late Payment Reminder (days)",
        default=7,
        help="Days after the due date at which the eMSP's billing contacts receive a reminder "
        "for an invoice still not fully paid. 0 sends no reminder.",
    )
    clearing_payment_mode_id = fields.Many2one(
        "account.payment.mode",
        string="Clearing Outgoing Payment Mode",
        check_company=True,
        domain=[("payment_type", "=", "outbound")],
        help="Payment mode (SEPA credit transfer) of the payment orders holding refunds to "
        "eMSPs and payments of CPO vendor bills.",
    )

    # default costs of a session (CPO hat), when the contract has no cost of its own
    clearing_energy_cost = fields.Float(
        "Energy Cost per kWh", digits=(16, 6),
        help="What a kWh delivered costs us (CPO): default of the contracts' costs.")
    clearing_session_cost = fields.Float(
        "Cost per Session", digits=(16, 6),
        help="Platform and payment fees of a session (CPO): default of the contracts' costs.")
    clearing_monthly_cost = fields.Float(
        "Fixed Monthly Cost", digits=(16, 2),
        help="Fixed cost of a contract per month (CPO): default of the contracts' costs.")

    def _clearing_self_billing_journal(self):
        """The purchase journal of this company's self-billed vendor bills, created (code
        AUTO, or the first free AUTOn) when none is set."""
        self.ensure_one()
        journal = self.clearing_self_billing_journal_id
        if journal:
            return journal
        Journal = self.env["account.journal"].sudo()
        used = set(Journal.with_context(active_test=False).search(
            Journal._check_company_domain(self)).mapped("code"))
        code = next(c for c in ["AUTO"] + ["AUTO%d" % n for n in range(2, 10)] if c not in used)
        journal = Journal.create({
            "name": _("Self-Billing (Autofacturation)"), "code": code, "type": "purchase",
            "company_id": self.id, "refund_sequence": True})
        self.sudo().clearing_self_billing_journal_id = journal
        return journal
