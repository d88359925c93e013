"""Disputes raised by the counterparty on a session during the control window."""

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools.selections import DISPUTE_STATES

DISPUTE_REASONS = [
    ("wrong_energy", "Wrong energy"),
    ("wrong_duration", "Wrong duration"),
    ("unknown_token", "Unknown token"),
    ("duplicate", "Duplicate session"),
    ("wrong_tariff", "Wrong tariff"),
    ("other", "Other"),
]


class ClearingDispute(models.Model):
    _name = "clearing.dispute"
    _description = "Clearing Dispute"
    _inherit = ["portal.mixin", "mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char("Reference", required=True, readonly=True, copy=False, default="/")
    cdr_id = fields.Many2one(
        "clearing.cdr", string="CDR", required=True, readonly=True, index=True,
        ondelete="restrict", check_company=True,
    )
    period_id = fields.Many2one(
        "clearing.period", string="Raised in Period", readonly=True, index=True,
        help="Clearing period in whose control window the dispute was raised.",
    )
    contract_id = fields.Many2one(related="cdr_id.contract_id", store=True, string="Contract")
    partner_id = fields.Many2one(
        "res.partner", string="Counterparty", readonly=True, index=True,
        help="Commercial partner (eMSP) who raised the dispute.",
    )
    company_id = fields.Many2one(related="cdr_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="cdr_id.currency_id", string="Currency")
    cdr_session_id = fields.Char(related="cdr_id.session_id", string="Session")
    cdr_amount_untaxed = fields.Monetary(related="cdr_id.amount_untaxed",
                                         string="Session Amount (excl. VAT)")
    cdr_locked = fields.Boolean(related="cdr_id.locked", string="CDR Locked")
    reason = fields.Selection(DISPUTE_REASONS, required=True, readonly=True, tracking=True)
    comment = fields.Text("eMSP Comment", required=True, readonly=True)
    attachment_ids = fields.Many2many(
        "ir.attachment", "clearing_dispute_attachment_rel", "dispute_id", "attachment_id",
        string="Attachments", readonly=True,
    )
    raised_by_id = fields.Many2one("res.users", string="Raised By", readonly=True)
    state = fields.Selection(
        DISPUTE_STATES, default="open", required=True, readonly=True, index=True,
        tracking=True,
    )
    answer = fields.Text(
        "Our Answer", tracking=True,
        help="Shown to the counterparty on the portal and in the notification email.",
    )
    resolution = fields.Selection(
        [("exclude", "Invalidate the session (excluded / fully credited)"),
         ("credit", "Credit an amount")],
        default="exclude", tracking=True,
    )
    credit_amount = fields.Monetary("Credit Amount (excl. VAT)")
    credit_cdr_id = fields.Many2one("clearing.cdr", string="Credit CDR", readonly=True)
    resolved_on = fields.Datetime(readonly=True)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("clearing.dispute") or "/"
        disputes = super().create(vals_list)
        for dispute in disputes:
            if dispute.search_count([("cdr_id", "=", dispute.cdr_id.id),
                                     ("state", "in", ("open", "info")),
                                     ("id", "!=", dispute.id)]):
                raise ValidationError(_(
                    "Session %s already has a dispute in progress.", dispute.cdr_id.ocpi_id))
        return disputes

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(_("Disputes are kept for the record: they cannot be deleted."))

    # ------------------------------------------------------------------ raising
    @api.model
    def _raise(self, cdr, reason, comment, attachments=None, user=None):
        """Dispute ``cdr`` (raised by the counterparty during the control window)."""
        user = user or self.env.user
        cdr.ensure_one()
        period = cdr.period_id
        if not period or period.state != "control":
            raise UserError(_(
                "Session %s cannot be disputed: its control window is not open.", cdr.ocpi_id))
        if cdr.locked:
            raise UserError(_("Session %s is locked: it can no longer be disputed.",
                              cdr.ocpi_id))
        if reason not in dict(DISPUTE_REASONS):
            raise UserError(_("Please choose a reason for the dispute."))
        comment = (comment or "").strip()
        if not comment:
            raise UserError(_("Please explain the dispute in the comment."))
        dispute = self.create({
            "cdr_id": cdr.id,
            "period_id": period.id,
            "partner_id": period.partner_id.commercial_partner_id.id,
            "reason": reason,
            "comment": comment,
            "raised_by_id": user.id,
        })
        if attachments:
            attachments.write({"res_model": self._name, "res_id": dispute.id})
            dispute.attachment_ids = [fields.Command.set(attachments.ids)]
        # our people following the contract are told (their inbox / email) to answer it
        internal = cdr.contract_id.sudo().message_partner_ids.filtered(
            lambda p: p.user_ids and not all(p.user_ids.mapped("share")))
        if internal:
            dispute.message_subscribe(partner_ids=internal.ids)
        dispute.message_post(
            body=_("Dispute raised by %(user)s: %(reason)s — %(comment)s",
                   user=user.name, reason=dict(self._fields["reason"]._description_selection(
                       self.env))[reason], comment=comment),
            author_id=user.partner_id.id,
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        return dispute

    def _reply(self, message, user=None):
        """The counterparty answers a request for information: the dispute is open again."""
        self.ensure_one()
        user = user or self.env.user
        if self.state != "info":
            raise UserError(_("No information was requested on dispute %s.", self.name))
        message = (message or "").strip()
        if not message:
            raise UserError(_("Please write your answer."))
        self.message_post(body=message, author_id=user.partner_id.id,
                          message_type="comment", subtype_xmlid="mail.mt_comment")
        self.state = "open"

    # ------------------------------------------------------------------ console
    def _check_manageable(self):
        if not self.env.user.has_group("emsp_clearing.group_clearing_user"):
            raise UserError(_("Only clearing users can answer disputes."))
        if self.filtered(lambda d: d.state not in ("open", "info")):
            raise UserError(_("This dispute is already closed."))

    def action_accept(self):
        self._check_manageable()
        for dispute in self:
            cdr = dispute.cdr_id
            if dispute.resolution == "credit":
                amount = dispute.credit_amount
                if amount <= 0:
                    raise UserError(_("Dispute %s: enter the amount to credit (excl. VAT).",
                                      dispute.name))
                if dispute.currency_id.compare_amounts(amount, cdr.amount_untaxed) > 0:
                    raise UserError(_(
                        "Dispute %(dispute)s: the credit (%(credit)s) exceeds the session "
                        "amount (%(amount)s).", dispute=dispute.name, credit=amount,
                        amount=cdr.amount_untaxed))
                dispute.credit_cdr_id = cdr._create_dispute_credit(amount)
            elif cdr.locked:
                # billed already: the whole session is credited in the next open period
                dispute.credit_cdr_id = cdr._create_dispute_credit()
            else:
                cdr._exclude_from_billing()
            dispute.write({"state": "accepted", "resolved_on": fields.Datetime.now()})
            dispute._notify_counterparty()
        return True

    def action_reject(self):
        self._check_manageable()
        if self.filtered(lambda d: not (d.answer or "").strip()):
            raise UserError(_("Write the answer explaining the rejection first."))
        self.write({"state": "rejected", "resolved_on": fields.Datetime.now()})
        for dispute in self:
            dispute._notify_counterparty()
        return True

    def action_request_info(self):
        self._check_manageable()
        if self.filtered(lambda d: not (d.answer or "").strip()):
            raise UserError(_("Write your question in the answer first."))
        self.write({"state": "info"})
        for dispute in self:
            dispute._notify_counterparty()
        return True

    def _notify_counterparty(self):
        """Email the counterparty's billing contacts (and the raiser) about this step."""
        template = self.env.ref("emsp_clearing.mail_template_dispute_update")
        for dispute in self:
            period = dispute.cdr_id.period_id or dispute.period_id
            recipients = period._billing_recipients() if period else self.env["res.partner"]
            if dispute.raised_by_id:
                recipients |= dispute.raised_by_id.partner_id
            if not recipients:
                continue
            dispute._portal_ensure_token()  # the link of the email (get_portal_url)
            dispute.message_post_with_source(
                template, subtype_xmlid="mail.mt_comment", message_type="comment",
                partner_ids=recipients.ids,
            )

    def _compute_access_url(self):
        super()._compute_access_url()
        for dispute in self:
            dispute.access_url = "/my/clearing/dispute/%s" % dispute.id
