from odoo import fields, models


class ClearingPeriod(models.Model):
    _inherit = "clearing.period"

    invoice_payment_state = fields.Selection(
        [("none", "Not invoiced"), ("not_paid", "Not paid"), ("partial", "Partially paid"),
         ("paid", "Paid")],
        string="Payment", compute="_compute_invoice_payment_state",
        help="Payment state of the period's customer invoices.",
    )

    def _compute_invoice_payment_state(self):
        groups = self.env["account.move"].sudo()._read_group(
            [("clearing_period_id", "in", self.ids), ("state", "=", "posted"),
             ("move_type", "=", "out_invoice")],
            ["clearing_period_id", "payment_state"], ["__count"],
        )
        states = {}
        for period, payment_state, _count in groups:
            states.setdefault(period.id, set()).add(payment_state)
        for period in self:
            found = states.get(period.id)
            if not found:
                period.invoice_payment_state = "none"
            elif found <= {"paid", "in_payment"}:
                period.invoice_payment_state = "paid"
            elif found <= {"not_paid"}:
                period.invoice_payment_state = "not_paid"
            else:
                period.invoice_payment_state = "partial"
