"""OCPI push queue: a pushed CDR is checked and acknowledged at once, stored in batches.

``POST /ocpi/2.2.1/cdrs`` does, within the request, everything that can refuse a CDR: the
token, the JSON, the full OCPI 2.2.1 validation (``clearing_core.ocpi.parse_cdr``), the sender's
party, the currency, idempotency (same CDR again: success, nothing stored; a different CDR under
a known id: refused). An accepted CDR is then written to this queue in one SQL statement, under
a ``clearing.cdr`` id reserved from that model's sequence: the ``Location`` answered
(``/ocpi/2.2.1/cdrs/<id>``) is the CDR's final URL, and GET serves it from the queue until it is
stored. The row carries the call's details (endpoint, request/correlation ids, answer time); the
call's ingestion-log row is written from them with the batch that stores the CDR, saying what
the call led to. Refused calls are logged at once.

A cron (``ir_cron_cdr_inbox``, triggered by the pushes) stores the queue through the batch path
(``clearing.ingestion.log._ingest_cdrs``: matching, pricing, periods, one ``COPY`` per batch) in
arrival order, under the reserved ids. Once stored, a row keeps its key and the link to its CDR
(the idempotency record of the push) and drops its copy of the JSON. A CDR that cannot be stored
then (a database constraint, a concurrent import of the same CDR) is marked with the reason and
listed in the ingestion log; nothing is dropped silently.

Retention (``clearing.ingestion.log._purge_expired``, daily): a row whose CDR is stored under its
number is deleted some days after (Settings); the CDR is then the idempotency record (the look-up
of every channel finds it) and answers GET of the Location. The other final rows stay: an
*Already stored* row maps its Location to a CDR stored under another number, a *Rejected* row
holds the only copy of an acknowledged CDR and keeps its key from being queued again.
"""

import json
import logging
import time

from odoo import _, api, fields, models, tools
from odoo.tools import SQL

from ..clearing_core import ocpi
from ..clearing_core.errors import OcpiValidationError
from .clearing_cdr import pretty_json
from ..tools.bulk_insert import analyze_if_stale
from .clearing_ingestion_log import _key, _normalized

_logger = logging.getLogger(__name__)

STATES = [
    ("queued", "Queued"),
    ("done", "Stored"),
    ("duplicate", "Already stored"),
    ("rejected", "Rejected"),
]
BATCH = 500
# a push triggers the queue cron at most this often per worker process (seconds)
TRIGGER_EVERY = 2.0
_last_trigger = {}  # database name -> time.monotonic() of this process's last trigger


class ClearingCdrInbox(models.Model):
    _name = "clearing.cdr.inbox"
    _description = "OCPI Push Queue"
    _order = "id desc"
    _rec_name = "ocpi_id"
    _check_company_auto = True

    # few indexes and foreign keys: every push inserts a row (the key index is the one needed)
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    connection_id = fields.Many2one("clearing.ocpi.connection", readonly=True,
                                    ondelete="set null")
    log_id = fields.Many2one("clearing.ingestion.log", string="Received In", readonly=True,
                             ondelete="set null", help="The push (POST) that delivered it.")
    country_code = fields.Char("Sender Country Code", required=True, readonly=True)
    party_id = fields.Char("Sender Party ID", required=True, readonly=True)
    ocpi_id = fields.Char("CDR ID", required=True, readonly=True)
    cdr_ref = fields.Integer(
        "CDR Number", required=True, readonly=True, index=True,
        help="The id reserved for the CDR when it was acknowledged (its Location URL).")
    raw_json = fields.Json("Received JSON", readonly=True,
                           help="Kept until the CDR is stored.")
    raw_json_text = fields.Text("Received JSON (formatted)", compute="_compute_raw_json_text")
    state = fields.Selection(STATES, required=True, default="queued", readonly=True)
    cdr_id = fields.Many2one("clearing.cdr", string="CDR", readonly=True, ondelete="set null")
    error = fields.Text(readonly=True)
    processed_date = fields.Datetime("Stored On", readonly=True)
    # the push call, for its ingestion-log row (written when the queue stores the CDR)
    endpoint = fields.Char(readonly=True)
    request_id = fields.Char("X-Request-ID", readonly=True)
    correlation_id = fields.Char("X-Correlation-ID", readonly=True)
    duration = fields.Float("Answer Time (s)", readonly=True, digits=(16, 3))

    @api.depends("raw_json")
    def _compute_raw_json_text(self):
        for row in self:
            row.raw_json_text = pretty_json(row.raw_json)

    def init(self):
        super().init()
        # the idempotency key of a push, as clearing.ingestion.log compares it (CiString)
        tools.create_unique_index(
            self.env.cr, "clearing_cdr_inbox_key_uniq", self._table,
            ["company_id", "upper(country_code)", "upper(party_id)", "ocpi_id"])
        # what the cron reads: the waiting rows only
        tools.create_index(self.env.cr, "clearing_cdr_inbox_queued_idx", self._table, ["id"],
                           where="state = 'queued'")

    # ------------------------------------------------------------------ receive (POST)
    @api.model
    def _receive(self, body, conn, call, version=ocpi.V221):
        """Check a pushed CDR and queue it. ``call``: the OCPI controller's call (log values,
        start time); ``version``: the OCPI version of the endpoint it was pushed to. Returns ``(outcome, cdr_ref, path, reason, log)`` with outcome ``queued``
        / ``duplicate`` / ``rejected`` and the call's log row (counts and rejection written);
        None for ``queued``: that call's row is written when the queue stores the CDR."""
        log_vals = call["vals"]
        if not isinstance(body, dict):
            return self._refuse(log_vals, body, "$", _("one CDR object is expected"))
        try:
            parsed = ocpi.parse_cdr(body, strict=True, version=version)
        except OcpiValidationError as e:
            return self._refuse(log_vals, body, e.path, e.message)
        key = _key(parsed.country_code, parsed.party_id, parsed.id)
        allowed = conn._allowed_parties()
        if key[:2] not in allowed:
            return self._refuse(log_vals, body, "$.party_id", self.env[
                "clearing.ingestion.log"]._party_refusal(key, allowed))
        if not self.env["clearing.cdr"]._currency_memo(parsed.currency):
            return self._refuse(log_vals, body, "$.currency", _(
                "currency %s is not available in Odoo", parsed.currency))
        company_id = log_vals["company_id"]
        now = fields.Datetime.now()
        # one statement, simple to plan (Odoo's pool discards plans between requests): the
        # call's log row is written with the batch that stores the CDR (_store)
        query = SQL(
            """
            WITH existing AS (
                SELECT id FROM clearing_cdr
                 WHERE company_id = %(company)s AND ocpi_id = %(ocpi_id)s
                   AND upper(country_code) = %(cc)s AND upper(party_id) = %(party)s
                 LIMIT 1
            )
            INSERT INTO clearing_cdr_inbox
                   (company_id, connection_id, country_code, party_id, ocpi_id, cdr_ref,
                    raw_json, state, endpoint, request_id, correlation_id, duration,
                    create_uid, create_date, write_uid, write_date)
            SELECT %(company)s, %(conn)s, %(cc_raw)s, %(party_raw)s, %(ocpi_id)s,
                   nextval('clearing_cdr_id_seq'), %(raw)s, 'queued', %(endpoint)s,
                   %(request_id)s, %(correlation_id)s, %(duration)s,
                   %(uid)s, %(now)s, %(uid)s, %(now)s
             WHERE NOT EXISTS (SELECT 1 FROM existing)
            ON CONFLICT (company_id, upper(country_code), upper(party_id), ocpi_id) DO NOTHING
            RETURNING cdr_ref
            """,
            company=company_id, ocpi_id=parsed.id, cc=key[0], party=key[1],
            cc_raw=parsed.country_code, party_raw=parsed.party_id,
            raw=json.dumps(body), now=now, uid=self.env.uid, conn=conn.id,
            endpoint=log_vals.get("endpoint"), request_id=log_vals.get("request_id"),
            correlation_id=log_vals.get("correlation_id"),
            duration=time.monotonic() - call["started"],
        )
        # The same CDR pushed at the same instant by another request makes this INSERT a
        # serialization failure (REPEATABLE READ), which Odoo retries -- the retry answers a
        # replay: an expected failure, not logged as an error.
        self.env.cr.execute(query, log_exceptions=False)
        row = self.env.cr.fetchone()
        if row:
            self._trigger_processing()
            return "queued", row[0], None, None, None
        log = self.env["clearing.ingestion.log"].create(dict(log_vals, outcome="running"))
        # already received: the same CDR (a replay) or a different one under its id
        previous_ref, previous_raw = self._previous(log, key)
        if previous_ref is None:  # pragma: no cover - the unique index makes this a retry
            raise RuntimeError("CDR %s: conflict without a visible previous row" % parsed.id)
        if _normalized(previous_raw) == _normalized(body):
            log.write({"count_received": 1, "count_duplicate": 1})
            return "duplicate", previous_ref, None, None, log
        reason = log._conflict_reason(key)
        log._record_rejection(body, "$.id", reason)
        return "rejected", None, "$.id", reason, log

    @api.model
    def _refuse(self, log_vals, body, path, reason):
        log = self.env["clearing.ingestion.log"].create(dict(log_vals, outcome="running"))
        log._record_rejection(body, path, reason)
        return "rejected", None, path, reason, log

    @api.model
    def _previous(self, log, key):
        """``(record id, raw JSON)`` of the CDR already received under ``key``: stored (the
        look-up of every ingestion channel), or still queued."""
        stored = log._existing_cdrs(log.company_id, {key}).get(key)
        if stored:
            return stored
        self.env.cr.execute(SQL(
            """SELECT cdr_ref, raw_json FROM clearing_cdr_inbox
                WHERE company_id = %s AND ocpi_id = %s
                  AND upper(country_code) = %s AND upper(party_id) = %s""",
            log.company_id.id, key[2], key[0], key[1]))
        row = self.env.cr.fetchone()
        if row is None:
            return None, None
        return row[0], row[1]  # jsonb: decoded by psycopg2

    @api.model
    def _trigger_processing(self, throttle=True):
        """Wake the queue's scheduled action now (at most every TRIGGER_EVERY seconds per
        process and database when ``throttle``). A trigger in the future would not wake the
        cron workers (Odoo notifies them of due triggers only): they would see it at their
        next minute poll."""
        now = time.monotonic()
        dbname = self.env.cr.dbname
        if throttle and now - _last_trigger.get(dbname, -TRIGGER_EVERY) < TRIGGER_EVERY:
            return
        _last_trigger[dbname] = now
        cron = self.env.ref("emsp_clearing.ir_cron_cdr_inbox", raise_if_not_found=False)
        if cron:
            cron.sudo()._trigger()

    @api.model
    def _find_queued(self, company, cdr_ref):
        """The queued row answering GET ``/cdrs/<cdr_ref>`` before the CDR is stored."""
        return self.sudo().search([("company_id", "=", company.id), ("cdr_ref", "=", cdr_ref)],
                                  limit=1)

    @api.model
    def _expired_sql(self, cutoff):
        """Rows the retention may delete: processed before ``cutoff`` and of no use any more,
        i.e. their CDR is stored under their number (state ``done``, ``cdr_id = cdr_ref``).
        Nothing references this table. Kept: queued rows, *Already stored* rows (GET of their
        Location goes through them), *Rejected* rows (the only copy of an acknowledged CDR, and
        the key that answers its replays), and stored rows whose CDR was deleted since."""
        return SQL("state = 'done' AND cdr_id = cdr_ref AND processed_date < %s", cutoff)

    # ------------------------------------------------------------------ store (cron)
    @api.model
    def _cron_process(self):
        """Store the queued CDRs, oldest first, a batch per transaction; when CDRs arrived
        during the run, run again (its first batch holds what arrived meanwhile: the busier
        the queue, the larger the batches)."""
        self._process_queue(commit=True)
        self.env.cr.execute("SELECT 1 FROM clearing_cdr_inbox WHERE state = 'queued' LIMIT 1")
        if self.env.cr.fetchone():
            self._trigger_processing(throttle=False)

    @api.model
    def _process_queue(self, limit=None, commit=False):
        """Store queued CDRs (at most ``limit``); returns how many rows were processed."""
        done = 0
        cron_model = self.env["ir.cron"]
        while limit is None or done < limit:
            size = BATCH if limit is None else min(BATCH, limit - done)
            self.env.flush_all()
            self.env.cr.execute(SQL(
                """SELECT id FROM clearing_cdr_inbox WHERE state = 'queued'
                    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""", size))
            ids = [r[0] for r in self.env.cr.fetchall()]
            if not ids:
                break
            self.sudo().browse(ids)._store()
            done += len(ids)
            if commit:
                self.env.cr.execute("SELECT count(*) FROM clearing_cdr_inbox WHERE state = 'queued'")
                remaining = self.env.cr.fetchone()[0]
                cron_model._notify_progress(done=done, remaining=remaining)
                self.env.cr.commit()
                self.env.invalidate_all()
                if len(ids) < size:
                    # caught up: stop rather than store a trickle in tiny batches; what
                    # arrived meanwhile is stored by the next run (_cron_process)
                    break
        return done

    def _store(self):
        """Store these queued rows through the batch ingestion path, grouped by connection."""
        groups = {}
        for row in self.sorted("id"):
            groups.setdefault((row.company_id, row.connection_id), []).append(row.id)
        now = fields.Datetime.now()
        for (company, conn), row_ids in groups.items():
            rows = self.browse(row_ids)
            log = self.env["clearing.ingestion.log"].create({
                "channel": "queue", "connection_id": conn.id, "company_id": company.id,
                "partner_id": conn.partner_id.id, "outcome": "running",
                "endpoint": _("OCPI push queue: %s CDR(s)", len(rows)),
            })
            started = time.monotonic()
            results = log._ingest_cdrs(
                [r.raw_json for r in rows], connection=conn or None, company=company,
                positions=[str(r.cdr_ref) for r in rows],
                # the sender's party was checked when the CDR was acknowledged: a later change
                # of the connection's roles does not undo an acknowledgement
                allowed_parties=None, ids=[r.cdr_ref for r in rows])
            updates = []  # (id, state, cdr id, error): one UPDATE for the batch
            for row, result in zip(rows, results):
                record = result["record"]
                if result["outcome"] == "created":
                    updates.append((row.id, "done", record.id, None))
                elif result["outcome"] == "duplicate":
                    updates.append((row.id, "duplicate", record.id if record else None, None))
                else:
                    error = "%s: %s" % (result["path"] or "$", result["reason"])
                    updates.append((row.id, "rejected", None, error))
                    _logger.warning("Queued CDR %s (%s) not stored: %s", row.ocpi_id,
                                    row.cdr_ref, error)
            # the push calls' log rows (what each acknowledged call led to), then the rows
            cr = self.env.cr
            cr.execute(SQL("SELECT nextval('clearing_ingestion_log_id_seq') "
                           "FROM generate_series(1, %s)", len(updates)))
            log_ids = [r[0] for r in cr.fetchall()]
            cr.execute(SQL(
                """INSERT INTO clearing_ingestion_log
                          (id, date, channel, connection_id, partner_id, company_id, endpoint,
                           request_id, correlation_id, http_status, ocpi_status_code, outcome,
                           message, count_received, count_created, count_duplicate,
                           count_rejected, duration, create_uid, create_date, write_uid,
                           write_date)
                   SELECT u.log_id, q.create_date, 'push', q.connection_id, %s, q.company_id,
                          q.endpoint, q.request_id, q.correlation_id, 201, 1000,
                          CASE WHEN u.state = 'rejected' THEN 'error' ELSE 'success' END,
                          CASE WHEN u.state = 'rejected'
                               THEN %s || u.error END,
                          1, (u.state = 'done')::int, (u.state = 'duplicate')::int,
                          (u.state = 'rejected')::int, q.duration, q.create_uid,
                          q.create_date, %s, %s
                     FROM (SELECT unnest(%s::int[]) AS id, unnest(%s::int[]) AS log_id,
                                  unnest(%s::varchar[]) AS state, unnest(%s::text[]) AS error) AS u
                     JOIN clearing_cdr_inbox q ON q.id = u.id""",
                conn.partner_id.id or None,
                _("Acknowledged (201) but not stored by the push queue: "),
                self.env.uid, now, [u[0] for u in updates], log_ids,
                [u[1] for u in updates], [u[3] for u in updates]))
            cr.execute(SQL(
                """UPDATE clearing_cdr_inbox AS q
                      SET state = u.state, cdr_id = u.cdr_id, error = u.error, log_id = u.log_id,
                          raw_json = CASE WHEN u.state = 'rejected' THEN q.raw_json END,
                          processed_date = %s, write_date = %s, write_uid = %s
                     FROM (SELECT unnest(%s::int[]) AS id, unnest(%s::varchar[]) AS state,
                                  unnest(%s::int[]) AS cdr_id, unnest(%s::text[]) AS error,
                                  unnest(%s::int[]) AS log_id) AS u
                    WHERE q.id = u.id""",
                now, now, self.env.uid, [u[0] for u in updates], [u[1] for u in updates],
                [u[2] for u in updates], [u[3] for u in updates], log_ids))
            self.env["clearing.ingestion.log"].invalidate_model()
            rows.invalidate_recordset()
            log._set_outcome(duration=time.monotonic() - started)
        analyze_if_stale(self.env.cr, self._table, ["state", "company_id", "ocpi_id"])
