"""OCPI endpoints against the real HTTP stack: tokens, envelope, CDR receiver rules -- in 2.2.1
(``TestOcpiEndpoints``) and, every test again, in 2.3.0 (``TestOcpiEndpoints230``)."""

import copy

from odoo.tests import tagged

from ..clearing_core import ocpi
from ..clearing_core.transport import envelope as ot
from .ocpi_common import OcpiPushCase, spec_example


@tagged("post_install", "-at_install")
class TestOcpiEndpoints(OcpiPushCase):

    def assertEnvelope(self, payload, status_code):
        self.assertIsInstance(payload, dict)
        self.assertEqual(payload["status_code"], status_code, payload)
        self.assertRegex(payload["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    # ------------------------------------------------------------------ tokens
    def test_versions_and_details_with_token_a_and_c(self):
        conn_a, _ = self._connection(registered=False)
        token_a = conn_a._new_token_a()
        for token in (token_a, self.token_c):
            r, p = self.ocpi("GET", "/ocpi/versions", token)
            self.assertEqual(r.status_code, 200)
            self.assertEnvelope(p, 1000)
            self.assertEqual(p["data"], [
                {"version": "2.2.1", "url": self.base_url() + "/ocpi/2.2.1"},
                {"version": "2.3.0", "url": self.base_url() + "/ocpi/2.3.0"}])
            r, p = self.ocpi("GET", self.V, token)
            self.assertEqual(r.status_code, 200)
            eps = {(e["identifier"], e["role"]): e["url"] for e in p["data"]["endpoints"]
                   if e["identifier"] != "invoicereconciliation"}  # 2.3.0: test_invoice_reconciliation
            self.assertEqual(eps, {
                ("credentials", "SENDER"): self.base_url() + self.V + "/credentials",
                ("cdrs", "RECEIVER"): self.base_url() + self.V + "/cdrs"})
        self.assertEqual(self.last_log(channel="versions").connection_id, self.conn)

    def test_missing_unknown_malformed_token_401(self):
        for headers_token, raw in ((None, False), ("not-a-known-token", False),
                                   (self.token_c, True)):  # raw token on a base64 connection
            r, p = self.ocpi("GET", "/ocpi/versions", headers_token, raw_token=raw)
            self.assertEqual(r.status_code, 401, headers_token)
            self.assertEnvelope(p, 2000)
        r, p = self.ocpi("GET", "/ocpi/versions", headers={"Authorization": "Bearer xyz"})
        self.assertEqual(r.status_code, 401)
        log = self.last_log(channel="versions")
        self.assertEqual(log.outcome, "unauthorized")
        self.assertFalse(log.connection_id)
        r, p = self.ocpi("POST", self.V + "/cdrs", "unknown", body=self.cdrs[0])
        self.assertEqual(r.status_code, 401)
        self.assertEqual(self.cdr_count(), 0)

    def test_raw_token_option(self):
        conn, token = self._connection(partner=self.env["res.partner"].create({
            "name": "Legacy CPO", "ocpi_country_code": "NL", "ocpi_party_id": "LEG"}),
            raw_token=True)
        r, p = self.ocpi("GET", "/ocpi/versions", token, raw_token=True)
        self.assertEqual(r.status_code, 200)
        r, p = self.ocpi("GET", "/ocpi/versions", token)  # base64 still accepted
        self.assertEqual(r.status_code, 200)
        self.assertEqual(self.last_log(channel="versions").connection_id, conn)

    def test_token_a_outside_credentials_and_versions_401(self):
        conn_a, _ = self._connection(registered=False)
        token_a = conn_a._new_token_a()
        r, p = self.ocpi("POST", self.V + "/cdrs", token_a, body=self.cdrs[0])
        self.assertEqual(r.status_code, 401)
        self.assertIn("Token A", p["status_message"])
        r, p = self.ocpi("GET", self.V + "/cdrs/1", token_a)
        self.assertEqual(r.status_code, 401)
        self.assertEqual(self.cdr_count(), 0)
        # tokens are stored as digests only
        self.assertNotIn(token_a, str(conn_a.sudo().read()[0]))
        self.assertEqual(conn_a.sudo().token_a_hash, ot.hash_token(token_a))

    def test_request_and_correlation_ids_echoed(self):
        r, _p = self.ocpi("GET", "/ocpi/versions", self.token_c,
                          headers={"X-Request-ID": "req-123", "X-Correlation-ID": "corr-456"})
        self.assertEqual(r.headers["X-Request-ID"], "req-123")
        self.assertEqual(r.headers["X-Correlation-ID"], "corr-456")
        log = self.last_log(channel="versions")
        self.assertEqual((log.request_id, log.correlation_id), ("req-123", "corr-456"))
        r, _p = self.ocpi("GET", "/ocpi/versions", "unknown-token",
                          headers={"X-Request-ID": "req-401"})
        self.assertEqual(r.headers["X-Request-ID"], "req-401")
        self.assertTrue(r.headers["X-Correlation-ID"])  # generated when missing

    # ------------------------------------------------------------------ CDR receiver
    def test_post_cdr_201_location_and_get(self):
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=self.cdrs[0],
                         headers={"X-Request-ID": "r1"})
        self.assertEqual(r.status_code, 201, p)
        self.assertEnvelope(p, 1000)
        self.assertEqual(r.headers["X-Request-ID"], "r1")
        location = r.headers["Location"]
        self.assertRegex(location, r"^%s%s/cdrs/\d+$" % (self.base_url(), self.V))
        # acknowledged and queued: the Location already answers, from the queue
        queued = self.env["clearing.cdr.inbox"].search([("ocpi_id", "=", self.cdrs[0]["id"])])
        self.assertEqual((queued.state, queued.request_id), ("queued", "r1"))
        self.assertFalse(queued.log_id)  # the call's log row comes with the stored CDR
        self.assertEqual(self.cdr_count(ocpi_id=self.cdrs[0]["id"]), 0)
        r, p = self.ocpi("GET", location[len(self.base_url()):], self.token_c)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(p["data"], self.cdrs[0])
        # stored by the queue under the id of its Location, matched and priced like any CDR
        self.assertEqual(self.drain(), 1)
        cdr = self.env["clearing.cdr"].search([("ocpi_id", "=", self.cdrs[0]["id"])])
        self.assertEqual(len(cdr), 1)
        self.assertEqual(location, "%s%s/cdrs/%d" % (self.base_url(), self.V, cdr.id))
        self.assertEqual(cdr.contract_id, self.contract)
        self.assertEqual(cdr.state, "priced")
        self.assertEqual((queued.state, queued.cdr_id), ("done", cdr))
        self.assertFalse(queued.raw_json)  # the stored CDR holds it now
        queue_log = self.last_log(channel="queue")
        self.assertEqual((queue_log.outcome, queue_log.count_created), ("success", 1))
        log = self.last_log(channel="push")
        self.assertEqual(queued.log_id, log)
        self.assertEqual((log.outcome, log.count_received, log.count_created, log.http_status,
                          log.ocpi_status_code, log.request_id, log.connection_id,
                          log.partner_id, log.endpoint),
                         ("success", 1, 1, 201, 1000, "r1", self.conn, self.cpo,
                          "POST %s/cdrs" % self.V))
        self.assertGreater(log.duration, 0)
        r, p = self.ocpi("GET", location[len(self.base_url()):], self.token_c)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(p["data"], self.cdrs[0])
        # another partner's connection cannot read it
        other, token_other = self._connection(partner=self.env["res.partner"].create({
            "name": "Other CPO", "ocpi_country_code": "BE", "ocpi_party_id": "OTH"}))
        r, p = self.ocpi("GET", self.V + "/cdrs/%d" % cdr.id, token_other)
        self.assertEqual(r.status_code, 404)
        r, p = self.ocpi("GET", self.V + "/cdrs/999999999", self.token_c)
        self.assertEqual(r.status_code, 404)

    def test_unparseable_json_400(self):
        for raw in ('{"id": "x",', "", "\xff"):
            r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, raw_body=raw.encode("latin-1"))
            self.assertEqual(r.status_code, 400, raw)
            self.assertEnvelope(p, 2000)
            self.assertNotIn("data", p)
        self.assertEqual(self.last_log(channel="push").outcome, "rejected")
        self.assertEqual(self.cdr_count(), 0)

    def test_schema_error_names_json_path(self):
        bad = copy.deepcopy(self.cdrs[0])
        del bad["cdr_token"]["uid"]
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=bad)
        self.assertEqual(r.status_code, 200)  # reached the OCPI layer: no HTTP error
        self.assertEnvelope(p, 2001)
        self.assertIn("$.cdr_token.uid", p["status_message"])
        self.assertEqual(p["data"]["path"], "$.cdr_token.uid")
        bad2 = dict(self.cdrs[1], charging_periods=[{"start_date_time": self.cdrs[1]["start_date_time"],
                                                     "dimensions": [{"type": "ENERGY", "volume": -1}]}])
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=bad2)
        self.assertEqual(p["data"]["path"], "$.charging_periods[0].dimensions[0].volume")
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=[self.cdrs[2]])
        self.assertEnvelope(p, 2001)
        self.assertEqual(self.cdr_count(), 0)  # nothing partial stored
        log = self.last_log(channel="push")
        self.assertEqual(log.outcome, "rejected")
        line = self.env["clearing.ingestion.log.line"].search(
            [("log_id.connection_id", "=", self.conn.id), ("cdr_ocpi_id", "=", self.cdrs[0]["id"])])
        self.assertEqual(line.json_path, "$.cdr_token.uid")
        self.assertIn("missing", line.reason)

    def test_cdr_of_another_party_refused(self):
        other = dict(self.cdrs[0], party_id="XYZ")
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=other)
        self.assertEnvelope(p, 2001)
        self.assertEqual(p["data"]["path"], "$.party_id")
        self.assertEqual(self.cdr_count(), 0)

    def test_duplicate_replay_is_success_without_new_row(self):
        r1, p1 = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=self.cdrs[0])
        self.assertEqual(r1.status_code, 201)
        # a re-serialising peer: nulls added, 2.0 for 2 — still the same CDR
        replay = dict(copy.deepcopy(self.cdrs[0]), remark=None, meter_id=None)
        r2, p2 = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=replay)
        self.assertEqual(r2.status_code, 200)
        self.assertEnvelope(p2, 1000)
        self.assertEqual(r2.headers["Location"], r1.headers["Location"])
        log = self.last_log(channel="push")
        self.assertEqual((log.count_created, log.count_duplicate, log.outcome, log.http_status),
                         (0, 1, "success", 200))
        self.drain()
        self.assertEqual(self.cdr_count(ocpi_id=self.cdrs[0]["id"]), 1)
        # once stored, a replay is still recognised (against the stored CDR)
        r3, p3 = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=replay)
        self.assertEqual((r3.status_code, p3["status_code"]), (200, 1000))
        self.assertEqual(r3.headers["Location"], r1.headers["Location"])
        self.assertEqual(self.cdr_count(ocpi_id=self.cdrs[0]["id"]), 1)

    def test_conflicting_duplicate_refused(self):
        self.ocpi("POST", self.V + "/cdrs", self.token_c, body=self.cdrs[0])
        changed = copy.deepcopy(self.cdrs[0])
        changed["total_cost"] = self.price(99.0, 119.79)
        for drained in (False, True):  # refused while queued and once stored
            if drained:
                self.drain()
            r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=changed)
            self.assertEqual(r.status_code, 200)
            self.assertEnvelope(p, 2001)
            self.assertEqual(p["data"]["path"], "$.id")
            self.assertIn("credit", p["status_message"])
            log = self.last_log(channel="push")
            self.assertEqual((log.outcome, log.count_received, log.count_created,
                              log.count_rejected), ("rejected", 1, 0, 1))
            self.assertEqual(log.line_ids.json_path, "$.id")
        cdr = self.env["clearing.cdr"].search([("ocpi_id", "=", self.cdrs[0]["id"])])
        self.assertEqual(len(cdr), 1)
        self.assertEqual(cdr.raw_json["total_cost"], self.cdrs[0]["total_cost"])

    def test_credit_cdr_linked(self):
        original = self.cdrs[0]
        original_cost = ocpi.read_price(original["total_cost"])
        credit = copy.deepcopy(original)
        credit.update(id=original["id"] + "-C", credit=True, credit_reference_id=original["id"],
                      total_cost=self.price(-float(original_cost.excl_vat), -float(original_cost.incl_vat)))
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=original)
        self.assertEqual(r.status_code, 201)
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=credit)
        self.assertEqual(r.status_code, 201, p)
        self.drain()
        orig = self.env["clearing.cdr"].search([("ocpi_id", "=", original["id"])])
        cred = self.env["clearing.cdr"].search([("ocpi_id", "=", credit["id"])])
        self.assertTrue(cred.credit)
        self.assertEqual(cred.credited_cdr_id, orig)

    def test_spec_cdr_example_accepted_as_is(self):
        example = spec_example("cdr_example.json", self.VERSION)
        bec = self.env["res.partner"].create({"name": "BeCharged", "ocpi_country_code": "BE",
                                              "ocpi_party_id": "BEC", "ocpi_is_cpo": True})
        _conn, token = self._connection(partner=bec)
        r, p = self.ocpi("POST", self.V + "/cdrs", token, body=example)
        self.assertEqual(r.status_code, 201, p)
        self.drain()
        cdr = self.env["clearing.cdr"].search([("ocpi_id", "=", "12345"), ("party_id", "=", "BEC")])
        self.assertEqual(cdr.raw_json, example)
        r, p = self.ocpi("GET", r.headers["Location"][len(self.base_url()):], token)
        self.assertEqual(p["data"], example)

    def assertOcpiReply(self, response, payload, http_status, status_code):
        self.assertEqual(response.status_code, http_status, response.text[:300])
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.assertEnvelope(payload, status_code)
        self.assertNotIn("<html", response.text.lower())

    def test_unsupported_methods(self):
        """GET/PUT/DELETE on the CDRs receiver: a 405 envelope (Allow: POST), 401 first."""
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            for path in (self.V + "/cdrs", self.V + "/cdrs/"):
                r, p = self.ocpi(method, path, self.token_c, body=self.cdrs[0])
                self.assertOcpiReply(r, p, 405, 2000)
                self.assertEqual(r.headers["Allow"], "POST")
                self.assertIn("Method not allowed", p["status_message"])
                r, p = self.ocpi(method, path, "not-a-known-token")
                self.assertOcpiReply(r, p, 401, 2000)
        log = self.last_log(channel="other")
        self.assertEqual((log.http_status, log.outcome), (401, "unauthorized"))
        # the other endpoints too
        for method, path, allowed in (("POST", "/ocpi/versions", "GET"),
                                      ("DELETE", self.V, "GET"),
                                      ("PATCH", self.V + "/credentials",
                                       "GET, POST, PUT, DELETE"),
                                      ("DELETE", self.V + "/cdrs/1", "GET")):
            r, p = self.ocpi(method, path, self.token_c)
            self.assertOcpiReply(r, p, 405, 2000)
            self.assertEqual(r.headers["Allow"], allowed)
            r, p = self.ocpi(method, path, None)
            self.assertOcpiReply(r, p, 401, 2000)
        self.assertEqual(self.cdr_count(), 0)

    def test_cdr_id_not_a_number(self):
        """GET /cdrs/<anything that is not one of our ids>: an OCPI 404, 401 first."""
        for ref in ("abc", "12x", "-1", "0", "1.5", "99999999999999999999", "%C3%A9"):
            path = self.V + "/cdrs/%s" % ref
            r, p = self.ocpi("GET", path, self.token_c)
            self.assertOcpiReply(r, p, 404, 2000)
            self.assertEqual(p["status_message"], "Unknown CDR")
            r, p = self.ocpi("GET", path, "not-a-known-token")
            self.assertOcpiReply(r, p, 401, 2000)
            r, p = self.ocpi("GET", path, None)
            self.assertOcpiReply(r, p, 401, 2000)
        log = self.last_log(channel="cdr_get")
        self.assertEqual((log.http_status, log.outcome), (401, "unauthorized"))

    def test_unknown_paths_answer_an_envelope(self):
        """Any other path under /ocpi/: 401 for an unknown token, else an OCPI 404."""
        conn_a, _ = self._connection(registered=False)
        token_a = conn_a._new_token_a()
        for method, path in (("GET", "/ocpi"), ("GET", "/ocpi/"), ("GET", "/ocpi/2.1.1"),
                             ("GET", self.V + "/locations"), ("PUT", self.V + "/tariffs/x"),
                             ("GET", self.V + "/cdrs/1/extra"), ("DELETE", "/ocpi/x/y/z")):
            r, p = self.ocpi(method, path, "not-a-known-token")
            self.assertOcpiReply(r, p, 401, 2000)
            r, p = self.ocpi(method, path, None)
            self.assertOcpiReply(r, p, 401, 2000)
            for token in (self.token_c, token_a):
                r, p = self.ocpi(method, path, token)
                self.assertOcpiReply(r, p, 404, 2000)
                self.assertIn("Unknown OCPI endpoint", p["status_message"])
        log = self.last_log(channel="other")
        self.assertEqual((log.http_status, log.outcome, log.endpoint),
                         (404, "rejected", "DELETE /ocpi/x/y/z"))
        self.assertEqual(self.cdr_count(), 0)

    # ------------------------------------------------------------------ credentials (no peer)
    def test_credentials_get_post_put_delete_rules(self):
        r, p = self.ocpi("GET", self.V + "/credentials", self.token_c)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(p["data"]["token"], self.token_c)
        self.assertEqual(p["data"]["url"], self.base_url() + "/ocpi/versions")
        self.assertEqual(p["data"]["roles"][0]["role"], "EMSP")
        self.assertEqual((p["data"]["roles"][0]["country_code"], p["data"]["roles"][0]["party_id"]),
                         ("DE", "MSP"))
        creds = spec_example("credentials_example.json")
        # second POST (already registered) -> 405
        r, p = self.ocpi("POST", self.V + "/credentials", self.token_c, body=creds)
        self.assertEqual(r.status_code, 405)
        # PUT / DELETE before registration (Token A) -> 405
        conn_a, _ = self._connection(registered=False)
        token_a = conn_a._new_token_a()
        for method in ("PUT", "DELETE"):
            r, p = self.ocpi(method, self.V + "/credentials", token_a, body=creds)
            self.assertEqual(r.status_code, 405, method)
        # invalid credentials object -> 2001 with path; nothing registered
        bad = dict(creds, roles=[dict(creds["roles"][0], party_id="TOOLONG")])
        r, p = self.ocpi("POST", self.V + "/credentials", token_a, body=bad)
        self.assertEqual(r.status_code, 200)
        self.assertEnvelope(p, 2001)
        self.assertEqual(p["data"]["path"], "$.roles[0].party_id")
        # unreachable partner versions URL -> 3001; Token A still valid, nothing stored
        r, p = self.ocpi("POST", self.V + "/credentials", token_a,
                         body=dict(creds, url="http://127.0.0.1:9/ocpi/versions"))
        self.assertEnvelope(p, 3001)
        conn_a.invalidate_recordset()
        self.assertEqual(conn_a.state, "new")
        self.assertFalse(conn_a.sudo().token_b)
        # DELETE with Token C unregisters; the token is then unknown
        r, p = self.ocpi("DELETE", self.V + "/credentials", self.token_c)
        self.assertEqual(r.status_code, 200)
        self.assertEnvelope(p, 1000)
        self.conn.invalidate_recordset()
        self.assertEqual(self.conn.state, "unregistered")
        r, p = self.ocpi("GET", "/ocpi/versions", self.token_c)
        self.assertEqual(r.status_code, 401)

    # ------------------------------------------------------------------ token memo
    def connection_memo_keys(self):
        """Keys of the connection model's entries in Odoo's shared 'default' ormcache."""
        cache = self.env.registry._Registry__caches["default"]
        return [key for key in list(cache.d) if key[0] == "clearing.ocpi.connection"]

    def test_unknown_tokens_do_not_grow_the_shared_cache(self):
        r, _p = self.ocpi("GET", "/ocpi/versions", self.token_c)
        self.assertEqual(r.status_code, 200)
        before = self.connection_memo_keys()
        self.assertTrue(before)  # the known token answered from the memo
        for n in range(20):  # a scanner: base64 and raw tokens nobody issued
            r, p = self.ocpi("GET", "/ocpi/versions", "scanner-%d" % n, raw_token=bool(n % 2))
            self.assertEqual(r.status_code, 401)
            self.assertEnvelope(p, 2000)
        self.assertEqual(self.connection_memo_keys(), before)
        log = self.last_log(channel="versions")
        self.assertEqual(log.outcome, "unauthorized")
        self.assertFalse(log.connection_id)
        r, _p = self.ocpi("GET", "/ocpi/versions", self.token_c)
        self.assertEqual(r.status_code, 200)

    def test_token_memo_follows_connection_changes(self):
        r, _p = self.ocpi("GET", "/ocpi/versions", self.token_c)
        self.assertEqual(r.status_code, 200)  # the memo is filled
        # a connection created after it: its token is known on the next call
        conn2, token2 = self._connection(partner=self.env["res.partner"].create({
            "name": "Second CPO", "ocpi_country_code": "NL", "ocpi_party_id": "SEC"}))
        r, _p = self.ocpi("GET", "/ocpi/versions", token2)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(self.last_log(channel="versions").connection_id, conn2)
        self.assertEqual(conn2._allowed_parties(), frozenset({("NL", "SEC")}))
        # raw tokens accepted once the connection allows them
        r, _p = self.ocpi("GET", "/ocpi/versions", token2, raw_token=True)
        self.assertEqual(r.status_code, 401)
        conn2.raw_token = True
        r, _p = self.ocpi("GET", "/ocpi/versions", token2, raw_token=True)
        self.assertEqual(r.status_code, 200)
        # the partner's identity and roles change the allowed parties
        conn2.partner_id.write({"ocpi_party_id": "SED"})
        self.assertEqual(conn2._allowed_parties(), frozenset({("NL", "SED")}))
        conn2.sudo().write({"partner_roles": [{"role": "CPO", "country_code": "be",
                                               "party_id": "abc"}]})
        self.assertEqual(conn2._allowed_parties(), frozenset({("NL", "SED"), ("BE", "ABC")}))
        # archived: refused at once; its parties are still read (pull of an archived one)
        conn2.active = False
        r, _p = self.ocpi("GET", "/ocpi/versions", token2, raw_token=True)
        self.assertEqual(r.status_code, 401)
        self.assertEqual(conn2._allowed_parties(), frozenset({("NL", "SED"), ("BE", "ABC")}))
        # Token A on a Token C route: refused, logged against its connection
        conn_a, _c = self._connection(registered=False)
        token_a = conn_a._new_token_a()
        r, _p = self.ocpi("GET", self.V + "/cdrs/1", token_a)
        self.assertEqual(r.status_code, 401)
        log = self.last_log(channel="cdr_get")
        self.assertEqual((log.outcome, log.connection_id, log.partner_id, log.company_id),
                         ("unauthorized", conn_a, conn_a.partner_id, conn_a.company_id))


@tagged("post_install", "-at_install")
class TestOcpiEndpoints230(TestOcpiEndpoints):
    """Every test above against our OCPI 2.3.0 endpoints, with 2.3.0 CDRs."""

    VERSION = ocpi.V230
    allow_inherited_tests_method = True  # Odoo's loader: run the parent's tests here too

    def test_230_price_refusal_names_the_json_path(self):
        bad = copy.deepcopy(self.cdrs[0])
        bad["total_cost"] = {"excl_vat": 1, "incl_vat": 1.21}  # the 2.2.1 Price
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=bad)
        self.assertEnvelope(p, 2001)
        self.assertEqual(p["data"]["path"], "$.total_cost.before_taxes")
        bad["total_cost"] = {"before_taxes": 1, "taxes": [{"name": "VAT", "amount": "0.21"}]}
        r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=bad)
        self.assertEqual(p["data"]["path"], "$.total_cost.taxes[0].amount")
        self.assertEqual(self.cdr_count(), 0)

    def test_230_taxes_stored_and_compared_by_tax(self):
        # 0.30/kWh, our contract VAT 21 %; the sender states 21 % right on one CDR, wrong on another
        good, wrong = copy.deepcopy(self.cdrs[0]), copy.deepcopy(self.cdrs[1])
        kwh = good["total_energy"]
        good["total_cost"] = {"before_taxes": round(kwh * 0.3, 2), "taxes": [
            {"name": "BTW", "percentage": 21, "amount": round(kwh * 0.3 * 0.21, 2),
             "account_number": "NL000099998B57"}]}
        kwh2 = wrong["total_energy"]
        wrong["total_cost"] = {"before_taxes": round(kwh2 * 0.3, 2), "taxes": [
            {"name": "BTW", "percentage": 21, "amount": round(kwh2 * 0.3 * 0.21 + 0.5, 2)}]}
        for cdr in (good, wrong):
            r, p = self.ocpi("POST", self.V + "/cdrs", self.token_c, body=cdr)
            self.assertEqual(r.status_code, 201, p)
        self.drain()
        stored = self.env["clearing.cdr"].search([("ocpi_id", "=", good["id"])])
        self.assertEqual(stored.ocpi_version, "2.3.0")
        self.assertEqual(stored.stated_taxes, good["total_cost"]["taxes"])
        self.assertAlmostEqual(stored.stated_total_cost_incl,
                               good["total_cost"]["before_taxes"] + good["total_cost"]["taxes"][0]["amount"])
        self.assertEqual(len(stored.tax_comparison), 1)
        row = stored.tax_comparison[0]
        self.assertEqual((row["name"], row["percentage"], row["mismatch"]), ("BTW", "21", False))
        self.assertFalse(stored.price_mismatch)
        self.assertIn("BTW", stored.tax_comparison_html)
        other = self.env["clearing.cdr"].search([("ocpi_id", "=", wrong["id"])])
        self.assertTrue(other.tax_comparison[0]["mismatch"])
        self.assertTrue(other.price_mismatch)  # the totals before taxes agree, the tax does not
        self.assertLessEqual(abs(other.price_difference), other.contract_id.price_tolerance)
        self.assertAlmostEqual(float(other.tax_comparison[0]["difference"]), 0.5)
