from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

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
