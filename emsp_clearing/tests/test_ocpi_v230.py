"""OCPI 2.3.0 beside 2.2.1 against a peer speaking 2.3.0 (``ocpi_peer/stdlib_peer.py``): the
handshake agrees the highest version both speak and stores its endpoints; the pull reads the
partner's 2.3.0 CDRs page by page; replays and refusals as in 2.2.1; a page failing mid-pull
stops the run, the next run resumes there (no CDR lost or stored twice), a failure within the
retries is retried in the same run."""

import datetime as dt
import importlib.util
import os
import urllib.parse

from odoo.tests import tagged

from ..clearing_core import ocpi
from .ocpi_common import HERE, OcpiHttpCase, launcher


def _load_stdlib_peer():
    spec = importlib.util.spec_from_file_location(
        "emsp_clearing_stdlib_peer", os.path.join(HERE, "ocpi_peer", "stdlib_peer.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


stdlib_peer = _load_stdlib_peer()


def Peer(cdrs, **kw):
    return stdlib_peer.StdlibPeer(cdrs, convert=ocpi.cdr_dict_to_version, **kw)


@tagged("post_install", "-at_install")
class TestOcpiVersions(OcpiHttpCase):

    def _register(self, peer, method="POST", token=None):
        conn = getattr(self, "_conn", None)
        if token is None:
            conn, _ = self._connection(registered=False, pull_limit=10)
            token = conn._new_token_a()
            self._conn = conn
        self.env.flush_all()
        result = peer.register(self.base_url() + "/ocpi/versions", token, method=method)
        self.assertEqual(result["status"], 200, result)
        self.assertEqual(result["body"]["status_code"], 1000, result)
        conn.invalidate_recordset()
        return conn, result

    def test_handshake_agrees_the_highest_version(self):
        with Peer([]) as peer:
            conn, result = self._register(peer)
            # the peer used our 2.3.0 credentials endpoint (the highest we both list)
            self.assertEqual(result["version"], "2.3.0")
            self.assertEqual(result["details"]["version"], "2.3.0")
            self.assertEqual(conn.state, "registered")
            self.assertEqual(conn.version, "2.3.0")
            self.assertEqual(conn.version_details_url, peer.base + "/2.3.0")
            self.assertEqual(conn.cdrs_sender_url, peer.cdrs_url("2.3.0"))
            self.assertEqual(conn.sudo().token_b, peer.token_b)
            # PUT in 2.3.0 with Token C: a new Token C, same version
            old_c = peer.token_c
            conn, result = self._register(peer, method="PUT", token=old_c)
            self.assertNotEqual(peer.token_c, old_c)
            self.assertEqual(conn.version, "2.3.0")
        with Peer([], versions=("2.2.1",)) as peer:
            self._conn = None
            conn, result = self._register(peer)
            self.assertEqual((result["version"], conn.version), ("2.2.1", "2.2.1"))
            self.assertEqual(conn.cdrs_sender_url, peer.cdrs_url("2.2.1"))

    def test_handshake_refused_without_a_common_version(self):
        with Peer([], versions=("2.1.1",)) as peer:
            conn, _ = self._connection(registered=False)
            token = conn._new_token_a()
            self.env.flush_all()
            creds = {"token": peer.token_b, "url": peer.versions_url, "roles": [
                {"role": "CPO", "country_code": "NL", "party_id": "CPO",
                 "business_details": {"name": "Old"}}]}
            status, body, _h = peer.call("POST", self.base_url() + "/ocpi/2.3.0/credentials",
                                         token, creds)
            self.assertEqual((status, body["status_code"]), (200, 3002))
            self.assertIn("2.1.1", body["status_message"])
            conn.invalidate_recordset()
            self.assertEqual(conn.state, "new")  # nothing stored
            self.assertFalse(conn.version)

    def test_pull_230_pages_replay_and_refusal(self):
        cdrs = launcher.make_cdrs(23)
        with Peer(cdrs, max_limit=5) as peer:
            conn, _r = self._register(peer)
            log = conn._pull_cdrs(commit=False, now=dt.datetime(2026, 6, 1))
            self.assertEqual(log.outcome, "success", log.message)
            self.assertEqual((log.pages, log.count_created, log.count_rejected), (5, 23, 0))
            self.assertEqual(log.total_announced, 23)
            stored = self.env["clearing.cdr"].search([("party_id", "=", "CPO"),
                                                      ("country_code", "=", "NL")])
            self.assertEqual(sorted(stored.mapped("ocpi_id")), sorted(c["id"] for c in cdrs))
            self.assertEqual(set(stored.mapped("ocpi_version")), {"2.3.0"})
            self.assertTrue(all(c.stated_taxes and c.state == "priced" for c in stored))
            self.assertTrue(all("/2.3.0/cdrs" in path for _m, path in peer.requests[-5:]))
            # the same window again: every CDR a replay, nothing stored
            conn.write({"last_sync_date": False})
            log = conn._pull_cdrs(commit=False, now=dt.datetime(2026, 6, 1))
            self.assertEqual((log.count_created, log.count_duplicate), (0, 23))
            # a CDR in 2.2.1 form from a 2.3.0 partner: refused, naming the path
            peer.cdrs = launcher.make_cdrs(2, prefix="OLD", start="2026-07-01T00:00:00")
            peer.convert = lambda cdr, version: cdr if cdr["id"] == "OLD000002" else \
                ocpi.cdr_dict_to_version(cdr, version)
            log = conn._pull_cdrs(commit=False, now=dt.datetime(2026, 8, 1))
            self.assertEqual((log.count_created, log.count_rejected), (1, 1))
            self.assertEqual(log.line_ids.json_path, "$.total_cost.before_taxes")

    def test_pull_230_failure_mid_pull_then_resume_without_gap_or_duplicate(self):
        """As ``TestOcpiPeer`` proves it in 2.2.1 against extrawest-ocpi: the page at offset
        20 fails twice; the run (one retry: two attempts) stops there, keeping the next page's
        URL; the next run resumes at that page, in the same window, and stores the rest; in the
        next window, a page failing once is retried within the run."""
        cdrs = launcher.make_cdrs(30)
        with Peer(cdrs, max_limit=10, fail_offsets=[20], fail_times=2) as peer:
            conn, _r = self._register(peer)
            self.assertEqual(conn.version, "2.3.0")
            conn.pull_retries = 1
            log1 = conn._pull_cdrs(commit=False, now=dt.datetime(2026, 6, 1))
            self.assertEqual((log1.outcome, log1.http_status), ("error", 500), log1.message)
            self.assertEqual((log1.pages, log1.count_created), (2, 20))
            self.assertIn("/2.3.0/cdrs", conn.pull_resume_url)
            self.assertIn("offset=20", conn.pull_resume_url)
            self.assertEqual(conn.last_pull_status, "partial")
            self.assertFalse(conn.last_sync_date)  # the window is not done
            window = (conn.pull_window_from, conn.pull_window_to)
            # the resumed run ignores a later "now": it finishes the interrupted window
            log2 = conn._pull_cdrs(commit=False, now=dt.datetime(2026, 7, 1))
            self.assertEqual(log2.outcome, "success", log2.message)
            self.assertIn("offset=20", log2.endpoint)
            self.assertEqual((log2.pages, log2.count_created, log2.count_duplicate), (1, 10, 0))
            self.assertEqual((conn.pull_window_from, conn.pull_window_to), window)
            self.assertEqual((conn.last_sync_date, conn.pull_resume_url), (window[1], False))
            stored = self.env["clearing.cdr"].search([("party_id", "=", "CPO"),
                                                      ("country_code", "=", "NL")])
            # no gap, no duplicate, every CDR read in its 2.3.0 form
            self.assertEqual(sorted(stored.mapped("ocpi_id")), sorted(c["id"] for c in cdrs))
            self.assertEqual(set(stored.mapped("ocpi_version")), {"2.3.0"})
            self.assertEqual(peer.answers, [(0, 200), (10, 200), (20, 500), (20, 500), (20, 200)])

            # the next window (from the last sync): a failure within the retries is retried in
            # the same run, which then completes
            peer.cdrs = cdrs + launcher.make_cdrs(3, prefix="NEW", start="2026-07-01T00:00:00")
            peer.fail_left = {0: 1}
            log3 = conn._pull_cdrs(commit=False, now=dt.datetime(2026, 8, 1))
            self.assertEqual(log3.outcome, "success", log3.message)
            self.assertEqual((log3.pages, log3.count_created, log3.count_duplicate), (1, 3, 0))
            self.assertEqual(peer.answers[-2:], [(0, 500), (0, 200)])
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(peer.requests[-1][1]).query)
            self.assertEqual((query["date_from"], query["date_to"]),
                             (["2026-05-31T23:55:00Z"], ["2026-07-31T23:55:00Z"]))
            self.assertEqual(len(stored.search([("party_id", "=", "CPO"),
                                                ("country_code", "=", "NL")])), 33)
