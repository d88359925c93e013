"""Import CDRs from a file for partners without OCPI: an OCPI JSON array or a CSV file.

Both go through ``clearing.ingestion.log._ingest_cdrs``: the same OCPI validation, the same
idempotency (re-importing a file stores nothing twice) and a log listing every rejected CDR with
its reason, JSON path and, for CSV, row and column. The CSV header is documented in
``clearing_core/formats/cdr_csv.py`` (and the wizard offers a template).
"""

import base64

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..clearing_core import json_text
from ..clearing_core.formats import cdr_csv


class ClearingCdrImport(models.TransientModel):
    _name = "clearing.cdr.import"
    _description = "Import CDRs from a File"

    file = fields.Binary(required=True)
    filename = fields.Char()
    file_format = fields.Selection(
        [("auto", "From the file name"), ("json", "OCPI JSON (array of CDR objects)"),
         ("csv", "CSV (documented header)")], default="auto", required=True)
    partner_id = fields.Many2one(
        "res.partner", string="From Partner",
        help="The partner the file comes from (shown in the ingestion log).")
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    csv_header = fields.Text("CSV Header", compute="_compute_csv_header")
    log_id = fields.Many2one("clearing.ingestion.log", readonly=True)

    @api.depends("file_format")
    def _compute_csv_header(self):
        for w in self:
            w.csv_header = cdr_csv.template_header()

    def _format(self):
        if self.file_format != "auto":
            return self.file_format
        name = (self.filename or "").lower()
        if name.endswith(".json"):
            return "json"
        if name.endswith((".csv", ".txt")):
            return "csv"
        raise UserError(_("Choose the file format: the name %s ends neither in .json nor .csv.",
                          self.filename or "?"))

    def action_import(self):
        self.ensure_one()
        if self.company_id not in self.env.companies:
            raise UserError(_("You cannot import CDRs into company %s.", self.company_id.name))
        fmt = self._format()
        raw = base64.b64decode(self.file or b"")
        log = self.env["clearing.ingestion.log"].sudo().create({
            "channel": "file", "endpoint": (self.filename or _("(no file name)"))[:255],
            "partner_id": self.partner_id.id, "company_id": self.company_id.id,
            "user_id": self.env.uid, "outcome": "running",
        })
        if fmt == "json":
            self._import_json(raw, log)
        else:
            self._import_csv(raw, log)
        log._set_outcome()
        self.log_id = log
        return {
            "type": "ir.actions.act_window", "res_model": "clearing.ingestion.log",
            "res_id": log.id, "view_mode": "form", "target": "current",
        }

    def _import_json(self, raw, log):
        try:
            data = json_text.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as e:
            log._add_rejection(1, _("The file is not valid JSON: %s", e), path="$")
            return
        if isinstance(data, dict):
            data = [data]  # a single CDR object is accepted too
        if not isinstance(data, list):
            log._add_rejection(1, _("An array of OCPI CDR objects is expected"), path="$")
            return
        log._ingest_cdrs(data, company=self.company_id,
                         positions=["#%d" % (i + 1) for i in range(len(data))])

    def _import_csv(self, raw, log):
        cdrs, errors = cdr_csv.read_cdrs(raw)
        for e in errors:
            log._add_rejection("row %d" % e.row, e.message, column=e.column)
        if cdrs:
            log._ingest_cdrs([c for _row, c in cdrs], company=self.company_id,
                             positions=["row %d" % row for row, _c in cdrs])

    def action_download_template(self):
        header = cdr_csv.template_header() + "\n"
        attachment = self.env["ir.attachment"].create({
            "name": "cdr_import_template.csv", "raw": header.encode(),
            "mimetype": "text/csv", "res_model": self._name, "res_id": self.id,
        })
        return {"type": "ir.actions.act_url", "target": "self",
                "url": "/web/content/%d?download=true" % attachment.id}
