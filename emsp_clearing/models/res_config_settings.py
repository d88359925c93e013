from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .clearing_ingestion_log import (
    QUEUE_RETENTION_KEY,
    UNAUTHORIZED_RETENTION_KEY,
    retention_days,
)

# settings field -> ir.config_parameter (company-independent), days, 0 = keep forever
_RETENTION_FIELDS = {
    "clearing_push_queue_retention_days": QUEUE_RETENTION_KEY,
    "clearing_unauthorized_log_retention_days": UNAUTHORIZED_RETENTION_KEY,
}


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    clearing_price_tolerance = fields.Float(
        related="company_id.clearing_price_tolerance",
        readonly=False,
        digits=(16, 6),
    )
    clearing_energy_cost = fields.Float(
        related="company_id.clearing_energy_cost", readonly=False, digits=(16, 6))
    clearing_session_cost = fields.Float(
        related="company_id.clearing_session_cost", readonly=False, digits=(16, 6))
    clearing_monthly_cost = fields.Float(
        related="company_id.clearing_monthly_cost", readonly=False, digits=(16, 2))
    # not config_parameter= fields: those delete the parameter when set to 0, and the default
    # would then come back instead of "keep forever"
    clearing_push_queue_retention_days = fields.Integer(
        "Push Queue Retention (days)",
        help="Rows of the OCPI push queue whose CDR is stored are deleted this many days after "
             "it was stored (the CDR itself stays and keeps answering replays and GET of its "
             "Location). 0 keeps them forever.")
    clearing_unauthorized_log_retention_days = fields.Integer(
        "Unauthorized Calls Retention (days)",
        help="Ingestion log rows of unauthenticated OCPI calls (HTTP 401: no, malformed or "
             "unknown token) are deleted after this many days. Other log rows are kept. "
             "0 keeps them forever.")

    @api.constrains(*_RETENTION_FIELDS)
    def _check_clearing_retention(self):
        for settings in self:
            for name in _RETENTION_FIELDS:
                if settings[name] < 0:
                    raise ValidationError(_(
                        "%s cannot be negative (0 keeps forever).",
                        self._fields[name].get_description(self.env)["string"]))

    @api.model
    def get_values(self):
        res = super().get_values()
        for name, key in _RETENTION_FIELDS.items():
            res[name] = retention_days(self.env, key)
        return res

    def set_values(self):
        super().set_values()
        params = self.env["ir.config_parameter"].sudo()
        for name, key in _RETENTION_FIELDS.items():
            if self[name] != retention_days(self.env, key):
                params.set_param(key, str(self[name]))

    # Payments
    clearing_pay_tolerance_amount = fields.Monetary(
        related="company_id.clearing_pay_tolerance_amount", readonly=False,
        currency_field="currency_id",
    )
    clearing_pay_tolerance_percent = fields.Float(
        related="company_id.clearing_pay_tolerance_percent", readonly=False,
    )
    clearing_pay_writeoff_account_id = fields.Many2one(
        related="company_id.clearing_pay_writeoff_account_id", readonly=False,
    )
    clearing_late_reminder_days = fields.Integer(
        related="company_id.clearing_late_reminder_days", readonly=False,
    )
    clearing_payment_mode_id = fields.Many2one(
        related="company_id.clearing_payment_mode_id", readonly=False,
    )
    clearing_self_billing_journal_id = fields.Many2one(
        related="company_id.clearing_self_billing_journal_id", readonly=False,
    )
