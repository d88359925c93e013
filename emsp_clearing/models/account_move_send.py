"""Sending a clearing invoice or credit note through Odoo's own ``account.move.send``.

What a clearing move adds to Odoo's sending:
- the per-session XLSX breakdown, made once when the documents are generated and attached to
  the move, joins the PDF (and the e-invoice XML where its format is not embedded in the PDF,
  which ``account_edi_ubl_cii`` adds itself) through ``_get_invoice_extra_attachments``;
- the clearing mail template (invoice or credit note), rendered in the partner's language;
- the recipients: the invoice partner and the counterparty's billing contacts;
- exactly one e-mail: the sending cron never mails a clearing move that was already sent.
"""

from odoo import api, models

_XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    # ------------------------------------------------------------------ defaults
    @api.model
    def _get_default_mail_template_id(self, move):
        if move.clearing_period_id:
            xmlid = ("emsp_clearing.mail_template_clearing_credit_note"
                     if move.move_type in ("out_refund", "in_refund")
                     else "emsp_clearing.mail_template_clearing_invoice")
            template = self.env.ref(xmlid, raise_if_not_found=False)
            if template:
                return template
        return super()._get_default_mail_template_id(move)

    @api.model
    def _get_default_mail_partner_ids(self, move, mail_template, mail_lang):
        partners = super()._get_default_mail_partner_ids(move, mail_template, mail_lang)
        if move.clearing_period_id:
            partners |= self._clearing_recipients(move)
        return partners

    @api.model
    def _clearing_recipients(self, move):
        """The counterparty's billing contacts that have an e-mail address."""
        return move.clearing_period_id.sudo()._billing_recipients().filtered("email")

    # ------------------------------------------------------------------ attachments
    @api.model
    def _clearing_breakdown_attachment(self, move):
        """The XLSX breakdown attached to ``move`` (an empty recordset until made)."""
        if not move.clearing_period_id or not move.id:
            return self.env["ir.attachment"]
        return self.env["ir.attachment"].sudo().search([
            ("res_model", "=", "account.move"), ("res_id", "=", move.id),
            ("res_field", "=", False), ("mimetype", "=", _XLSX_MIMETYPE),
            ("description", "=", "emsp_clearing.breakdown"),
        ], limit=1)

    @api.model
    def _clearing_make_breakdown_attachment(self, move):
        """Build the move's XLSX breakdown and attach it to the move (once)."""
        attachment = self._clearing_breakdown_attachment(move)
        if attachment:
            return attachment
        filename, content = move.clearing_period_id.sudo().get_breakdown_xlsx(move.sudo())
        return self.env["ir.attachment"].sudo().create({
            "name": filename,
            "raw": content,
            "mimetype": _XLSX_MIMETYPE,
            "res_model": "account.move",
            "res_id": move.id,
            "description": "emsp_clearing.breakdown",
        })

    @api.model
    def _get_invoice_extra_attachments(self, move):
        return super()._get_invoice_extra_attachments(move) + \
            self._clearing_breakdown_attachment(move)

    @api.model
    def _get_placeholder_mail_attachments_data(self, move, extra_edis=None):
        results = super()._get_placeholder_mail_attachments_data(move, extra_edis=extra_edis)
        if move.clearing_period_id and not self._clearing_breakdown_attachment(move):
            filename = move.clearing_period_id.sudo()._breakdown_filename(move)
            results.append({
                "id": "placeholder_%s" % filename,
                "name": filename,
                "mimetype": _XLSX_MIMETYPE,
                "placeholder": True,
            })
        return results

    @api.model
    def _hook_invoice_document_after_pdf_report_render(self, invoice, invoice_data):
        super()._hook_invoice_document_after_pdf_report_render(invoice, invoice_data)
        if invoice.clearing_period_id and not invoice_data.get("error"):
            self._clearing_make_breakdown_attachment(invoice)

    # ------------------------------------------------------------------ sending
    @api.model
    def _generate_and_send_invoices(self, moves, from_cron=False, allow_raising=True,
                                    allow_fallback_pdf=False, **custom_settings):
        if from_cron:
            # never two e-mails for one clearing invoice: a move queued twice is sent once
            sent = moves.filtered(lambda m: m.clearing_period_id and m.is_move_sent)
            if sent:
                sent.sending_data = False
                moves -= sent
            if not moves:
                return self.env["ir.attachment"]
        return super()._generate_and_send_invoices(
            moves, from_cron=from_cron, allow_raising=allow_raising,
            allow_fallback_pdf=allow_fallback_pdf, **custom_settings)

    @api.model
    def _is_applicable_to_move(self, method, move):
        if method == "email" and move.clearing_period_id and not move.partner_id.email:
            return bool(self._clearing_recipients(move))
        return super()._is_applicable_to_move(method, move)

    @api.model
    def _send_mails(self, moves_data):
        # Odoo mails only moves whose partner has an e-mail address; a clearing move also goes
        # to the counterparty's billing contacts when the invoice address has none.
        super()._send_mails(moves_data)
        subtype = self.env.ref("mail.mt_comment")
        for move, move_data in moves_data.items():
            if not move.clearing_period_id or move.partner_id.email \
                    or not move_data.get("mail_partner_ids"):
                continue
            mail_template = move_data["mail_template"]
            mail_lang = move_data["mail_lang"]
            mail_params = self._get_mail_params(move, move_data)
            self._send_mail(
                move, mail_template, subtype_id=subtype.id,
                model_description=move.with_context(lang=mail_lang).type_name,
                email_from=self._get_mail_default_field_value_from_template(
                    mail_template, mail_lang, move, "email_from"),
                **mail_params,
            )
