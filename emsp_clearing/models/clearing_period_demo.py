"""Demo data of the invoicing: sessions on a CPO's network billed to us, past periods
invoiced, posted and queued for sending, one credit note."""

import random
from datetime import timedelta

from odoo import api, fields, models


class ClearingPeriod(models.Model):
    _inherit = "clearing.period"

    @api.model
    def _demo_invoice(self, count=40, seed=10):
        company = self.env.ref("base.main_company")
        contract = self.env.ref("emsp_clearing.demo_contract_bex")
        cdr_model = self.env["clearing.cdr"]
        rng = random.Random(seed)
        today = fields.Date.context_today(self)
        first_day = today - timedelta(days=60)
        own = company.partner_id
        rhein = self.env.ref("emsp_clearing.demo_contract_rhein")
        payloads = []
        for index in range(count):
            # sessions of our customers on Borne Express's network (billed to us)
            data = cdr_model._demo_cdr_payload(
                rng, 1000 + index, (own.ocpi_country_code, own.ocpi_party_id, contract),
                first_day, {})
            data.update(country_code="FR", party_id="BEX", id="FR-BEX-%05d" % (index + 1))
            data["cdr_location"]["evse_id"] = data["cdr_location"]["evse_id"].replace(
                "FR*OUR*", "FR*BEX*")
            payloads.append(data)
            # sessions of Rhein Mobil's customers on our network (billed in reverse charge)
            payloads.append(cdr_model._demo_cdr_payload(
                rng, 2000 + index, ("DE", "RMO", rhein), first_day, {}))
        by_day = {}
        for payload in payloads:
            by_day.setdefault(payload["end_date_time"][:10], []).append(payload)
        for day in sorted(by_day):
            as_of = {"clearing_today": fields.Date.to_date(day)}
            self.with_context(**as_of)._cron_lock_periods()
            cdr_model.with_context(**as_of)._ingest_ocpi_batch(by_day[day], company=company)
        self._cron_lock_periods()
        # what the invoicing cron did on each statement date, then Odoo's sending
        self._cron_invoice_periods()
        invoices = self.search([("state", "=", "invoiced")]).invoice_id
        billed = invoices.filtered(lambda m: m.move_type == "out_invoice").clearing_cdr_ids
        credited = billed.filtered(lambda c: not c.credit and not c.credit_cdr_ids)[:1]
        if credited:
            credited._create_dispute_credit()
            self._invoice_refunds()
        # posted and queued for Odoo's sending: the batch cron (account.ir_cron_account_move_send)
        # renders and mails them once the server runs (no PDF can be rendered while the
        # module installs: wkhtmltopdf reads the report assets from the running server)
        return True
