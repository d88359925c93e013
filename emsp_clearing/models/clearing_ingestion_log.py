"""Ingestion log: every inbound OCPI call and every imported file, with its outcome.

``clearing.ingestion.log._ingest_cdrs`` is the one place where CDRs coming from outside (OCPI
push, OCPI pull, file import) are checked for idempotency and handed to
``clearing.cdr.ingest_ocpi_batch``; every CDR it does not store gets a log line with the reason
and the JSON path (and the CSV column for files). Nothing is dropped silently.
"""

import json
import logging
import re
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.tools import SQL

from ..clearing_core import ocpi
from ..clearing_core.errors import OcpiValidationError

_logger = logging.getLogger(__name__)

_PATH_IN_MESSAGE = re.compile(r"(\$[\w.\[\]]*):")

CHANNELS = [
    ("push", "OCPI push (POST)"),
    ("queue", "OCPI push queue (stored)"),
    ("pull", "OCPI pull (GET)"),
    ("file", "File import"),
    ("credentials", "OCPI credentials"),
    ("versions", "OCPI versions"),
    ("cdr_get", "OCPI CDR read"),
    ("other", "OCPI unknown endpoint or method"),
]
OUTCOMES = [
    ("success", "Success"),
    ("partial", "Partly rejected"),
    ("rejected", "Rejected"),
    ("error", "Error"),
    ("unauthorized", "Unauthorized"),
    ("running", "Running"),
]


# retention (days; 0 = keep forever), company-independent ir.config_parameter; set in Settings
QUEUE_RETENTION_KEY = "emsp_clearing.push_queue_retention_days"
UNAUTHORIZED_RETENTION_KEY = "emsp_clearing.unauthorized_log_retention_days"
RETENTION_DEFAULTS = {QUEUE_RETENTION_KEY: 30, UNAUTHORIZED_RETENTION_KEY: 90}
PURGE_CHUNK = 5000


def retention_days(env, key):
    """Retention of ``key`` in days: the parameter, its default when absent; 0 (keep forever)
    when it is not a whole number or negative (a typo must not delete anything)."""
    value = env["ir.config_parameter"].sudo().get_param(key)
    if value is False or value is None or not str(value).strip():
        return RETENTION_DEFAULTS[key]
    try:
        days = int(str(value).strip())
    except ValueError:
        _logger.warning("System parameter %s=%r is not a number of days: nothing purged",
                        key, value)
        return 0
    return max(days, 0)


def _normalized(value):
    """JSON value without null members, for "same CDR?" comparisons (a peer re-serialising a
    CDR may add ``"remark": null`` or write ``2.0`` for ``2``; both are the same CDR)."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _key(country_code, party_id, cdr_id):
    return ((country_code or "").upper(), (party_id or "").upper(), cdr_id or "")


class ClearingIngestionLog(models.Model):
    _name = "clearing.ingestion.log"
    _description = "CDR Ingestion Log"
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name")
    date = fields.Datetime(required=True, default=fields.Datetime.now, readonly=True, index=True)
    # no index on channel and company_id: a handful of values each, and every OCPI call
    # inserts a row here (clearing_cdr_inbox.py)
    channel = fields.Selection(CHANNELS, required=True, readonly=True)
    connection_id = fields.Many2one("clearing.ocpi.connection", readonly=True, index=True,
                                    ondelete="set null")
    partner_id = fields.Many2one("res.partner", string="Partner", readonly=True, index=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True,
                                 default=lambda self: self.env.company)
    user_id = fields.Many2one("res.users", string="Imported By", readonly=True)
    endpoint = fields.Char(readonly=True, help="HTTP method and URL, or the file name.")
    http_status = fields.Integer("HTTP Status", readonly=True)
    ocpi_status_code = fields.Integer("OCPI Status", readonly=True)
    outcome = fields.Selection(OUTCOMES, required=True, default="success", readonly=True,
                               index=True)
    message = fields.Text(readonly=True)
    request_id = fields.Char("X-Request-ID", readonly=True)
    correlation_id = fields.Char("X-Correlation-ID", readonly=True)
    count_received = fields.Integer("Received", readonly=True)
    count_created = fields.Integer("Stored", readonly=True)
    count_duplicate = fields.Integer("Replays", readonly=True,
                                     help="Already received, identical: acknowledged, nothing stored.")
    count_rejected = fields.Integer("Rejected", readonly=True)
    pages = fields.Integer(readonly=True, help="Pages fetched (pull).")
    total_announced = fields.Integer("X-Total-Count", readonly=True,
                                     help="Objects the peer announced for the pulled window.")
    duration = fields.Float("Duration (s)", readonly=True, digits=(16, 3))
    line_ids = fields.One2many("clearing.ingestion.log.line", "log_id", string="Rejections",
                               readonly=True)

    @api.depends("channel", "date", "endpoint")
    def _compute_name(self):
        labels = dict(CHANNELS)
        for log in self:
            log.name = "%s %s" % (labels.get(log.channel, log.channel or ""),
                                  fields.Datetime.to_string(log.date) if log.date else "")

    def _set_outcome(self, message=None, **vals):
        """Final counts -> outcome (success / partial / rejected) unless given."""
        self.ensure_one()
        if "outcome" not in vals:
            if self.count_rejected and (self.count_created or self.count_duplicate):
                vals["outcome"] = "partial"
            elif self.count_rejected:
                vals["outcome"] = "rejected"
            else:
                vals["outcome"] = "success"
        if message is not None:
            vals["message"] = message
        self.write(vals)

    # ------------------------------------------------------------------ retention
    @api.model
    def _cron_purge_expired(self):
        """Scheduled action: apply the retentions, committing each chunk."""
        self._purge_expired(commit=True)

    @api.model
    def _purge_expired(self, chunk=PURGE_CHUNK, commit=False):
        """Delete what outlived its retention (Settings > Clearing > Data Retention):

        * push-queue rows whose CDR is stored under their number
          (``clearing.cdr.inbox._expired_sql``), processed more than the queue retention ago;
        * log rows of unauthenticated calls (outcome ``unauthorized``: HTTP 401, no or unknown
          token), older than their retention. Every other log row is the audit trail and stays.

        One ``DELETE ... WHERE id IN (SELECT ... LIMIT chunk)`` per chunk, in id order from the
        last id deleted; with ``commit`` (the cron), each chunk is committed and reported
        through ``ir.cron._notify_progress``. Returns ``{table: rows deleted}``."""
        now = fields.Datetime.now()
        targets = []  # (table, condition, label, days)
        days = retention_days(self.env, QUEUE_RETENTION_KEY)
        if days:
            targets.append(("clearing_cdr_inbox",
                            self.env["clearing.cdr.inbox"]._expired_sql(now - timedelta(days=days)),
                            "stored push-queue rows", days))
        days = retention_days(self.env, UNAUTHORIZED_RETENTION_KEY)
        if days:
            targets.append(("clearing_ingestion_log",
                            SQL("outcome = 'unauthorized' AND date < %s",
                                now - timedelta(days=days)),
                            "unauthorized OCPI call log rows", days))
        self.env.flush_all()
        cr = self.env.cr
        totals = []
        for table, condition, _label, _days in targets:
            cr.execute(SQL("SELECT count(*) FROM %s WHERE %s", SQL.identifier(table), condition))
            totals.append(cr.fetchone()[0])
        remaining = sum(totals)
        done = 0
        purged = {}
        for (table, condition, label, days), total in zip(targets, totals):
            count = 0
            after = 0
            while total:
                cr.execute(SQL(
                    """DELETE FROM %(table)s WHERE id IN (
                           SELECT id FROM %(table)s WHERE id > %(after)s AND %(condition)s
                            ORDER BY id LIMIT %(chunk)s)
                       RETURNING id""",
                    table=SQL.identifier(table), after=after, condition=condition, chunk=chunk))
                ids = [r[0] for r in cr.fetchall()]
                count += len(ids)
                done += len(ids)
                remaining = max(remaining - len(ids), 0)
                if ids:
                    after = max(ids)
                if commit:
                    self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
                    cr.commit()
                if len(ids) < chunk:
                    break
            purged[table] = count
            _logger.info("Retention: purged %d %s older than %d days", count, label, days)
        if commit:
            self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        self.env["clearing.cdr.inbox"].invalidate_model()
        self.invalidate_model()
        self.env["clearing.ingestion.log.line"].invalidate_model()
        return purged

    # ------------------------------------------------------------------ ingestion
    @api.model
    def _error_path(self, error):
        """JSON path of a core validation error carried by (or written in) ``error``."""
        cause = error
        while cause is not None:
            if isinstance(cause, OcpiValidationError):
                return cause.path, cause.message
            cause = cause.__cause__
        text = str(error)
        m = _PATH_IN_MESSAGE.search(text)
        if m:
            return m.group(1), text[m.end():].strip()
        return None, text

    def _ingest_cdrs(self, items, connection=None, company=None, positions=None,
                     allowed_parties=None, ids=None, version=None):
        """Ingest ``items`` (raw CDR JSON values) and record the outcome on this log.

        ``version``: the OCPI version the CDRs must follow (a pull: the connection's); None
        reads each in the version of its form (``ocpi.detect_cdr_version``: files, the push
        queue whose CDRs were validated in their version when acknowledged).

        * invalid CDR -> rejected, line with reason and JSON path; the others still land;
        * same (country_code, party_id, id) already stored with the same content -> replay:
          acknowledged, nothing stored;
        * same key, different content -> refused (CDRs are immutable; send a credit CDR);
        * ``allowed_parties``: set of (country_code, party_id) the sender may send CDRs for.

        ``positions``: the label of each item in the source (CSV row number...), default its
        index. ``ids``: the record id reserved for each item (OCPI push queue), or None.
        Returns one dict per item: ``{"outcome": "created"|"duplicate"|"rejected",
        "record": clearing.cdr or None, "reason", "path"}``.
        """
        self.ensure_one()
        company = company or self.company_id
        cdr_model = self.env["clearing.cdr"].with_company(company)
        positions = positions or list(range(len(items)))
        results = [None] * len(items)
        parsed_keys = {}
        parsed_cdrs = {}
        for i, data in enumerate(items):
            if not isinstance(data, dict):
                results[i] = self._rejected("$", _("a CDR must be a JSON object"))
                continue
            try:
                cdr = ocpi.parse_cdr(data, strict=True,
                                     version=version or ocpi.detect_cdr_version(data))
            except OcpiValidationError as e:
                results[i] = self._rejected(e.path, e.message, data)
                continue
            key = _key(cdr.country_code, cdr.party_id, cdr.id)
            if allowed_parties is not None and key[:2] not in allowed_parties:
                results[i] = self._rejected(
                    "$.party_id", self._party_refusal(key, allowed_parties), data)
                continue
            parsed_keys[i] = key
            parsed_cdrs[i] = cdr
        existing = self._existing_cdrs(company, set(parsed_keys.values()))
        new_indexes = []
        batch_seen = {}
        for i, key in parsed_keys.items():
            previous = existing.get(key)
            if previous is None and key in batch_seen:
                previous = batch_seen[key]
            if previous is not None:
                prev_id, prev_raw = previous
                if _normalized(prev_raw) == _normalized(items[i]):
                    results[i] = {"outcome": "duplicate", "record": cdr_model.browse(prev_id) if prev_id else None,
                                  "reason": None, "path": None, "same_batch": prev_id is None}
                else:
                    results[i] = self._rejected("$.id", self._conflict_reason(key), items[i])
                continue
            batch_seen[key] = (None, items[i])
            new_indexes.append(i)
        if new_indexes:
            # the CDRs are parsed already: the batch path reuses them (one parse per CDR)
            outs = cdr_model.ingest_ocpi_batch([items[i] for i in new_indexes], company=company,
                                                parsed=[parsed_cdrs[i] for i in new_indexes],
                                                ids=[ids[i] for i in new_indexes] if ids else None)
            for i, out in zip(new_indexes, outs):
                if out["record"]:
                    results[i] = {"outcome": "created", "record": out["record"], "reason": None,
                                  "path": None}
                else:
                    path, reason = self._error_path(out.get("exception") or out["error"])
                    results[i] = self._rejected(path, reason, items[i])
        # same-batch replays point at the record created for the first occurrence
        by_key = {parsed_keys[i]: r["record"] for i, r in enumerate(results)
                  if r and r["outcome"] == "created"}
        for i, r in enumerate(results):
            if r["outcome"] == "duplicate" and r.get("same_batch"):
                r["record"] = by_key.get(parsed_keys[i])
        self._record(results, positions, items)
        return results

    @api.model
    def _rejected(self, path, reason, data=None):
        cdr_id = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
        return {"outcome": "rejected", "record": None, "reason": reason, "path": path,
                "cdr_ocpi_id": cdr_id,
                "sender": "%s*%s" % (data.get("country_code"), data.get("party_id"))
                if isinstance(data, dict) and data.get("country_code") else None}

    @api.model
    def _party_refusal(self, key, allowed):
        """Why a CDR of sender ``key[:2]`` is refused on a connection whose parties are
        ``allowed`` (every channel: push, pull)."""
        return _("%(cc)s*%(party)s is not a party of this OCPI connection (registered: "
                 "%(allowed)s)", cc=key[0], party=key[1],
                 allowed=", ".join("*".join(p) for p in sorted(allowed)) or "-")

    @api.model
    def _conflict_reason(self, key):
        """Why a CDR is refused whose ``key`` holds another CDR already (CDRs are
        immutable)."""
        return _("a different CDR %(id)s from %(cc)s*%(party)s was already received; "
                 "CDRs cannot be changed (send a credit CDR)", id=key[2], cc=key[0], party=key[1])

    def _existing_cdrs(self, company, keys):
        """{key: (record id, raw_json)} of stored CDRs among ``keys`` — one query per 1000."""
        found = {}
        keys = list(keys)
        if not keys:
            return found
        self.env["clearing.cdr"].flush_model(["company_id", "country_code", "party_id", "ocpi_id", "raw_json"])
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            # By id only (the index led by ocpi_id), the company checked here: with the
            # company in the WHERE clause, the planner may pick the unique index led by
            # company_id and scan the company's every CDR (it did, with statistics lagging
            # behind a bulk load: 8 ms for 2 ids at 55k CDRs).
            self.env.cr.execute(
                """SELECT id, upper(country_code), upper(party_id), ocpi_id, company_id,
                          raw_json
                     FROM clearing_cdr
                    WHERE ocpi_id = ANY(%s)""",
                ([k[2] for k in chunk],),
            )
            wanted = set(chunk)
            for rid, cc, party, cid, company_id, raw in self.env.cr.fetchall():
                key = (cc, party, cid)
                if key in wanted and company_id == company.id:
                    if isinstance(raw, str):
                        raw = json.loads(raw)
                    found[key] = (rid, raw)
        return found

    def _record(self, results, positions, items):
        created = sum(1 for r in results if r["outcome"] == "created")
        duplicate = sum(1 for r in results if r["outcome"] == "duplicate")
        rejected = [(i, r) for i, r in enumerate(results) if r["outcome"] == "rejected"]
        if rejected:
            column_for = None
            if self.channel == "file":
                from ..clearing_core.formats import cdr_csv
                column_for = cdr_csv.column_for_path
            self.env["clearing.ingestion.log.line"].sudo().create([{
                "log_id": self.id,
                "position": str(positions[i]),
                "cdr_ocpi_id": r.get("cdr_ocpi_id"),
                "sender": r.get("sender"),
                "reason": r["reason"],
                "json_path": r["path"],
                "column": column_for(r["path"]) if column_for and r["path"] else False,
            } for i, r in rejected])
        self.write({
            "count_received": self.count_received + len(results),
            "count_created": self.count_created + created,
            "count_duplicate": self.count_duplicate + duplicate,
            "count_rejected": self.count_rejected + len(rejected),
        })

    def _record_rejection(self, data, path, reason):
        """One received item refused before storage (the OCPI push checks)."""
        self._record([self._rejected(path, reason, data)], [0], [data])

    def _add_rejection(self, position, reason, path=None, column=None, cdr_ocpi_id=None):
        """A rejection found before OCPI validation (CSV cell, unreadable file...)."""
        self.ensure_one()
        self.env["clearing.ingestion.log.line"].sudo().create({
            "log_id": self.id, "position": str(position), "reason": reason,
            "json_path": path, "column": column, "cdr_ocpi_id": cdr_ocpi_id,
        })
        self.write({"count_received": self.count_received + 1,
                    "count_rejected": self.count_rejected + 1})


class ClearingIngestionLogLine(models.Model):
    _name = "clearing.ingestion.log.line"
    _description = "CDR Ingestion Rejection"
    _order = "log_id desc, id"

    log_id = fields.Many2one("clearing.ingestion.log", required=True, ondelete="cascade",
                             index=True, readonly=True)
    company_id = fields.Many2one(related="log_id.company_id", store=True, readonly=True)
    position = fields.Char(readonly=True, help="Index in the batch, or CSV row number.")
    cdr_ocpi_id = fields.Char("CDR ID", readonly=True, index=True)
    sender = fields.Char(readonly=True, help="country_code*party_id of the CDR, when readable.")
    reason = fields.Text(required=True, readonly=True)
    json_path = fields.Char("JSON Path", readonly=True)
    column = fields.Char("CSV Column", readonly=True)
