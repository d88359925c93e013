"""Retention (clearing.ingestion.log._purge_expired, daily cron): stored push-queue rows and the
log rows of unauthenticated calls are deleted after their retention; nothing else is, and a
purged push is still answered as a replay and served at its Location."""

import copy
from datetime import timedelta

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..models.clearing_ingestion_log import (
    QUEUE_RETENTION_KEY,
    UNAUTHORIZED_RETENTION_KEY,
    retention_days,
)
from .ocpi_common import OcpiPushCase


@tagged("post_install", "-at_install")
class TestRetention(OcpiPushCase):

    def setUp(self):
        super().setUp()
        self.params = self.env["ir.config_parameter"].sudo()
        # the defaults (30 / 90 days): no parameter stored
        self.params.set_param(QUEUE_RETENTION_KEY, False)
        self.params.set_param(UNAUTHORIZED_RETENTION_KEY, False)
        self.Inbox = self.env["clearing.cdr.inbox"]
        self.Log = self.env["clearing.ingestion.log"]

    # ------------------------------------------------------------------ helpers
    def path(self, response):
        return response.headers["Location"][len(self.base_url()):]

    def row(self, cdr):
        return self.Inbox.search([("ocpi_id", "=", cdr["id"])])

    def age_rows(self, rows, days, column="processed_date"):
        """Move ``column`` of these rows ``days`` into the past (SQL: the fields are readonly
        and the ORM would stamp write_date)."""
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE %s SET %s = %%s WHERE id = ANY(%%s)" % (rows._table, column),
            (fields.Datetime.now() - timedelta(days=days), rows.ids))
        rows.invalidate_recordset()

    def unauthorized_call(self):
        r, _p = self.ocpi("GET", "/ocpi/versions", "not-a-known-token")
        self.assertEqual(r.status_code, 401)
        log = self.last_log(outcome="unauthorized")
        self.assertTrue(log)
        return log

    def old_log(self, outcome, days):
        return self.Log.create({
            "channel": "push", "company_id": self.company.id, "outcome": outcome,
            "date": fields.Datetime.now() - timedelta(days=days)})

    # ------------------------------------------------------------------ tests
    def test_purge_deletes_only_expired_stored_rows_and_unauthorized_calls(self):
        # stored rows: two expired, one recent (29 days: within the 30-day default)
        for cdr in self.cdrs[:3]:
            self.assertEqual(self.push(cdr)[0].status_code, 201)
        self.drain()
        expired = self.row(self.cdrs[0]) | self.row(self.cdrs[1])
        recent = self.row(self.cdrs[2])
        self.assertEqual(set((expired | recent).mapped("state")), {"done"})
        self.age_rows(expired, 31)
        self.age_rows(recent, 29)
        push_logs = expired.log_id
        self.assertEqual(len(push_logs), 2)
        # an "Already stored" row: the same CDR imported meanwhile, stored under another id;
        # GET of the Location answered to the push goes through the queue row
        r, _p = self.push(self.cdrs[4])
        duplicate_path = self.path(r)
        file_log = self.Log.create({"channel": "file", "company_id": self.company.id,
                                    "partner_id": self.cpo.id})
        file_log._ingest_cdrs([copy.deepcopy(self.cdrs[4])], company=self.company)
        self.drain()
        duplicate = self.row(self.cdrs[4])
        self.assertEqual(duplicate.state, "duplicate")
        self.age_rows(duplicate, 400)
        # a queued row, however old (its dates forced old too: only the state protects it)
        self.push(self.cdrs[3])
        queued = self.row(self.cdrs[3])
        self.assertEqual(queued.state, "queued")
        self.age_rows(queued, 400, "create_date")
        self.age_rows(queued, 400)
        # a "Rejected" row: the only copy of an acknowledged CDR
        self.env.cr.execute("SELECT nextval('clearing_cdr_id_seq')")
        rejected = self.Inbox.create({
            "company_id": self.company.id, "connection_id": self.conn.id,
            "country_code": "NL", "party_id": "CPO", "ocpi_id": "REJECTED-1",
            "cdr_ref": self.env.cr.fetchone()[0], "raw_json": {"id": "REJECTED-1"},
            "state": "rejected", "error": "$: test"})
        self.age_rows(rejected, 400)

        # log: unauthorized calls (real 401s) expired and recent, old rows of other outcomes
        old_401 = self.unauthorized_call() | self.unauthorized_call()
        self.age_rows(old_401, 91, "date")
        recent_401 = self.unauthorized_call()
        self.age_rows(recent_401, 89, "date")
        others = push_logs | file_log | self.old_log("success", 400) \
            | self.old_log("rejected", 400) | self.old_log("error", 400) \
            | self.old_log("partial", 400)
        self.age_rows(others, 400, "date")
        other_count = self.Log.search_count([("outcome", "!=", "unauthorized")])

        purged = self.Log._purge_expired()

        self.assertEqual(purged, {"clearing_cdr_inbox": 2, "clearing_ingestion_log": 2})
        self.assertFalse(expired.exists())
        self.assertEqual(recent.exists(), recent)
        self.assertEqual(queued.exists(), queued)
        self.assertEqual(duplicate.exists(), duplicate)
        self.assertEqual(rejected.exists(), rejected)
        self.assertFalse(old_401.exists())
        self.assertEqual(recent_401.exists(), recent_401)
        self.assertEqual(others.exists(), others)
        self.assertEqual(self.Log.search_count([("outcome", "!=", "unauthorized")]), other_count)
        # the CDRs of the purged rows are untouched; the kept rows still do their job
        self.assertEqual(self.cdr_count(), 4)
        r, p = self.ocpi("GET", duplicate_path, self.token_c)
        self.assertEqual((r.status_code, p["data"]), (200, self.cdrs[4]))
        self.assertEqual(self.drain(), 1)  # the queued row is still stored
        self.assertEqual(queued.state, "done")
        # nothing left to purge: a second run deletes nothing
        self.assertEqual(self.Log._purge_expired(),
                         {"clearing_cdr_inbox": 0, "clearing_ingestion_log": 0})

    def test_zero_keeps_everything(self):
        self.push(self.cdrs[0])
        self.drain()
        row = self.row(self.cdrs[0])
        self.age_rows(row, 5000)
        log = self.unauthorized_call()
        self.age_rows(log, 5000, "date")
        self.params.set_param(QUEUE_RETENTION_KEY, "0")
        self.params.set_param(UNAUTHORIZED_RETENTION_KEY, "0")
        self.assertEqual(self.Log._purge_expired(), {})
        self.assertEqual(row.exists(), row)
        self.assertEqual(log.exists(), log)
        # one at a time: each retention is its own
        self.params.set_param(UNAUTHORIZED_RETENTION_KEY, "10")
        self.assertEqual(self.Log._purge_expired(), {"clearing_ingestion_log": 1})
        self.assertEqual(row.exists(), row)
        # a value that is not a number of days deletes nothing (and says so)
        self.params.set_param(QUEUE_RETENTION_KEY, "thirty")
        with self.assertLogs("odoo.addons.emsp_clearing.models.clearing_ingestion_log",
                             "WARNING"):
            self.assertEqual(retention_days(self.env, QUEUE_RETENTION_KEY), 0)
        self.params.set_param(QUEUE_RETENTION_KEY, "-5")
        self.assertEqual(retention_days(self.env, QUEUE_RETENTION_KEY), 0)
        self.Log._purge_expired()
        self.assertEqual(row.exists(), row)

    def test_purged_push_still_answered_as_replay_and_served_at_its_location(self):
        cdr = self.cdrs[0]
        r, p = self.push(cdr)
        self.assertEqual(r.status_code, 201, p)
        location = r.headers["Location"]
        self.assertEqual(self.drain(), 1)
        row = self.row(cdr)
        self.assertEqual((row.state, row.cdr_id.id, row.cdr_ref),
                         ("done", int(location.rsplit("/", 1)[1]), row.cdr_id.id))
        self.age_rows(row, 31)
        self.assertEqual(self.Log._purge_expired()["clearing_cdr_inbox"], 1)
        self.assertFalse(row.exists())
        # the same CDR again: a replay, same Location, nothing queued nor stored
        r, p = self.push(copy.deepcopy(cdr))
        self.assertEqual((r.status_code, p["status_code"]), (200, 1000), p)
        self.assertEqual(r.headers["Location"], location)
        self.assertFalse(self.row(cdr))
        self.assertEqual(self.drain(), 0)
        self.assertEqual(self.cdr_count(ocpi_id=cdr["id"]), 1)
        # a different CDR under its id is still refused (CDRs are immutable)
        changed = copy.deepcopy(cdr)
        changed["total_energy"] = changed["total_energy"] + 1
        r, p = self.push(changed)
        self.assertEqual(p["status_code"], 2001, p)
        self.assertEqual(p["data"]["path"], "$.id")
        self.assertFalse(self.row(cdr))
        # GET of the Location still serves the CDR
        r, p = self.ocpi("GET", location[len(self.base_url()):], self.token_c)
        self.assertEqual((r.status_code, p["data"]), (200, cdr))

    def test_cron_deletes_in_committed_chunks_with_progress(self):
        self.env.cr.execute("DELETE FROM clearing_ingestion_log WHERE outcome = 'unauthorized'")
        logs = self.Log.browse([self.old_log("unauthorized", 100).id for _i in range(5)])
        self.params.set_param(QUEUE_RETENTION_KEY, "0")
        commits, progress = [], []
        self.patch(self.env.cr, "commit", lambda: commits.append(1))
        self.patch(type(self.env["ir.cron"]), "_notify_progress",
                   lambda self, *, done, remaining, deactivate=False:
                   progress.append((done, remaining)))
        self.assertEqual(self.Log._purge_expired(chunk=2, commit=True),
                         {"clearing_ingestion_log": 5})
        self.assertFalse(logs.exists())
        self.assertEqual(len(commits), 3)  # chunks of 2 + 2 + 1, each committed
        self.assertEqual(progress, [(2, 3), (4, 1), (5, 0), (5, 0)])

    def test_cron_and_settings(self):
        cron = self.env.ref("emsp_clearing.ir_cron_clearing_retention")
        self.assertTrue(cron.active)
        self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))
        # the cron's code runs (commits patched: a test cannot commit)
        log = self.unauthorized_call()
        self.age_rows(log, 91, "date")
        self.patch(self.env.cr, "commit", lambda: None)
        cron.method_direct_trigger()
        self.assertFalse(log.exists())
        # Settings: defaults, 0 stored as 0 (not removed, which would bring the default back)
        settings = self.env["res.config.settings"].create({})
        self.assertEqual((settings.clearing_push_queue_retention_days,
                          settings.clearing_unauthorized_log_retention_days), (30, 90))
        settings.write({"clearing_push_queue_retention_days": 0,
                        "clearing_unauthorized_log_retention_days": 45})
        settings.execute()
        self.assertEqual((self.params.get_param(QUEUE_RETENTION_KEY),
                          self.params.get_param(UNAUTHORIZED_RETENTION_KEY)), ("0", "45"))
        settings = self.env["res.config.settings"].create({})
        self.assertEqual((settings.clearing_push_queue_retention_days,
                          settings.clearing_unauthorized_log_retention_days), (0, 45))
        with self.assertRaises(ValidationError):
            self.env["res.config.settings"].create({"clearing_push_queue_retention_days": -1})

    def test_deleted_rows_are_referenced_by_nothing_that_would_break(self):
        """Foreign keys: none points at the queue; those pointing at the log (rejection lines,
        queue rows, import wizard) cascade or set null; the queue's own (log, CDR, connection)
        go outward only."""
        self.env.cr.execute("""
            SELECT conrelid::regclass::text, confrelid::regclass::text, confdeltype
              FROM pg_constraint
             WHERE contype = 'f'
               AND confrelid IN ('clearing_cdr_inbox'::regclass,
                                 'clearing_ingestion_log'::regclass)""")
        refs = self.env.cr.fetchall()
        self.assertFalse([r for r in refs if r[1] == "clearing_cdr_inbox"], refs)
        self.assertTrue(refs)
        self.assertEqual({r for r in refs if r[2] not in ("c", "n")}, set(), refs)
