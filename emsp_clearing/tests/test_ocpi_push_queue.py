"""The OCPI push queue and the cross-request memo behind it (models/clearing_cdr_inbox.py,
models/clearing_ingest_cache.py): what is acknowledged is stored under its Location, and every
change of a contract, grid, tax, partner identity or connection reaches the next push."""

import copy
import json

from odoo.tests import tagged

from ..clearing_core import ocpi
from .ocpi_common import OcpiPushCase, credit_cdr


@tagged("post_install", "-at_install")
class TestOcpiPushQueue(OcpiPushCase):

    def stored(self, cdr):
        return self.env["clearing.cdr"].search([("ocpi_id", "=", cdr["id"])])

    def energy_price(self, cdr):
        record = self.stored(cdr)
        return record.amount_untaxed / record.energy_kwh

    def test_grid_and_tax_changes_reach_the_next_push(self):
        r, _p = self.push(self.cdrs[0])
        self.assertEqual(r.status_code, 201)
        self.drain()
        self.assertAlmostEqual(self.energy_price(self.cdrs[0]), 0.30, places=3)
        self.assertEqual(self.stored(self.cdrs[0]).ocpi_version, self.VERSION)
        # the grid line itself (not through the contract form)
        self.contract.price_line_ids.write({"price": 0.45})
        self.push(self.cdrs[1])
        self.drain()
        self.assertAlmostEqual(self.energy_price(self.cdrs[1]), 0.45, places=3)
        # the VAT rate of the contract's tax
        self.contract.tax_ids.write({"amount": 10.0})
        self.push(self.cdrs[2])
        self.drain()
        cdr = self.stored(self.cdrs[2])
        self.assertAlmostEqual(cdr.amount_tax, cdr.amount_untaxed * 0.10, delta=0.011)

    def test_closed_contract_unmatches_the_next_push(self):
        self.push(self.cdrs[0])
        self.drain()
        self.assertEqual(self.stored(self.cdrs[0]).contract_id, self.contract)
        self.contract.write({"state": "closed"})
        self.push(self.cdrs[1])
        self.drain()
        cdr = self.stored(self.cdrs[1])
        self.assertFalse(cdr.contract_id)
        self.assertEqual(cdr.match_state, "unmatched")
        self.assertIn("NL*CPO", cdr.unmatched_reason)

    def test_revoked_token_and_changed_identity_refused_at_once(self):
        r, _p = self.push(self.cdrs[0])
        self.assertEqual(r.status_code, 201)
        # the partner's OCPI identity changes: CDRs of the old one are no longer its own
        self.cpo.write({"ocpi_party_id": "CPX"})
        r, p = self.push(self.cdrs[1])
        self.assertEqual(p["status_code"], 2001, p)
        self.assertEqual(p["data"]["path"], "$.party_id")
        # ... but the CDR acknowledged before the change is still stored: an acknowledgement
        # is not undone by a later change of the connection
        self.assertEqual(self.drain(), 1)
        self.assertEqual(len(self.stored(self.cdrs[0])), 1)
        self.cpo.write({"ocpi_party_id": "CPO"})
        r, p = self.push(self.cdrs[1])
        self.assertEqual(r.status_code, 201, p)
        # a new Token C: the old one is refused on the next call
        self.conn.sudo().write({"token_c_hash": "0" * 64})
        r, p = self.push(self.cdrs[2])
        self.assertEqual(r.status_code, 401)
        self.conn.sudo().write({"active": False})
        self.assertEqual(self.push(self.cdrs[2])[0].status_code, 401)

    def test_queued_cdr_imported_meanwhile_is_not_stored_twice(self):
        r, _p = self.push(self.cdrs[0])
        location = r.headers["Location"]
        # the same CDR arrives by the file import before the queue stores the push
        log = self.env["clearing.ingestion.log"].create({
            "channel": "file", "company_id": self.company.id, "partner_id": self.cpo.id})
        log._ingest_cdrs([copy.deepcopy(self.cdrs[0])], company=self.company)
        imported = self.stored(self.cdrs[0])
        self.assertEqual(len(imported), 1)
        # the queued JSON, as the queue's form shows it
        queued = self.env["clearing.cdr.inbox"].search([("ocpi_id", "=", self.cdrs[0]["id"])])
        self.assertEqual(json.loads(queued.raw_json_text), self.cdrs[0])
        self.drain()
        row = self.env["clearing.cdr.inbox"].search([("ocpi_id", "=", self.cdrs[0]["id"])])
        self.assertEqual((row.state, row.cdr_id), ("duplicate", imported))
        self.assertEqual(len(self.stored(self.cdrs[0])), 1)
        self.assertEqual((row.log_id.count_created, row.log_id.count_duplicate,
                          row.log_id.outcome), (0, 1, "success"))
        # the Location answered to the push still serves the CDR (stored under another id)
        r, p = self.ocpi("GET", location[len(self.base_url()):], self.token_c)
        self.assertEqual((r.status_code, p["data"]), (200, self.cdrs[0]))

    def test_queue_stores_under_the_answered_numbers_with_credit_links(self):
        original = self.cdrs[3]
        credit = credit_cdr(original, self.VERSION, id=original["id"] + "-C")
        # the credit is pushed first: it waits for its original, linked when that one lands
        refs = []
        for cdr in (credit, original, self.cdrs[4]):
            r, p = self.push(cdr)
            self.assertEqual(r.status_code, 201, p)
            refs.append(int(r.headers["Location"].rsplit("/", 1)[1]))
        self.assertEqual(self.drain(), 3)
        self.assertEqual(self.stored(credit).credited_cdr_id, self.stored(original))
        self.assertEqual([self.stored(c).id for c in (credit, original, self.cdrs[4])], refs)
        queue_log = self.last_log(channel="queue")
        self.assertEqual((queue_log.count_received, queue_log.count_created), (3, 3))
        self.assertEqual(self.drain(), 0)  # nothing left

    def test_get_of_a_queued_cdr_respects_the_connection(self):
        r, _p = self.push(self.cdrs[5])
        path = r.headers["Location"][len(self.base_url()):]
        other, token_other = self._connection(partner=self.env["res.partner"].create({
            "name": "Other CPO", "ocpi_country_code": "BE", "ocpi_party_id": "OTH"}))
        self.assertEqual(self.ocpi("GET", path, token_other)[0].status_code, 404)
        self.assertEqual(self.ocpi("GET", path, self.token_c)[0].status_code, 200)

    def test_statistics_refreshed_after_bulk_changes(self):
        """analyze_if_stale: ANALYZE only past the threshold (decision checked on a recording
        cursor), and the real statement works on the real table."""
        from ..tools.bulk_insert import _ANALYZED_AT, analyze_if_stale

        class Recorder:
            dbname = "recorder"

            def __init__(self, row):
                self.row, self.sql = row, []

            def execute(self, query):
                self.sql.append(query.code)

            def fetchone(self):
                return self.row

        for (n_mod, reltuples), expected in [((5000, -1), True), ((999, -1), False),
                                             ((3000, 10000), True), ((1500, 10000), False),
                                             ((0, 0), False)]:
            _ANALYZED_AT.clear()
            cr = Recorder((n_mod, reltuples))
            self.assertEqual(analyze_if_stale(cr, "clearing_cdr", ["ocpi_id"]), expected)
            self.assertEqual(any(q.startswith("ANALYZE") for q in cr.sql), expected,
                             (n_mod, reltuples))
        # the count at our last ANALYZE is the new origin (a partial ANALYZE keeps the counter)
        _ANALYZED_AT.clear()
        self.assertTrue(analyze_if_stale(Recorder((5000, 10000)), "clearing_cdr", ["ocpi_id"]))
        self.assertFalse(analyze_if_stale(Recorder((6000, 10000)), "clearing_cdr", ["ocpi_id"]))
        self.assertTrue(analyze_if_stale(Recorder((7500, 10000)), "clearing_cdr", ["ocpi_id"]))
        # after a full ANALYZE elsewhere (counter reset), counted from zero again
        self.assertFalse(analyze_if_stale(Recorder((1500, 10000)), "clearing_cdr", ["ocpi_id"]))
        _ANALYZED_AT.clear()
        # the statement it builds is valid on the real table
        rec = Recorder((5000, -1))
        analyze_if_stale(rec, "clearing_cdr", ["ocpi_id", "company_id", "credit_reference_id"])
        self.env.cr.execute(rec.sql[-1])
        _ANALYZED_AT.clear()


@tagged("post_install", "-at_install")
class TestOcpiPushQueue230(TestOcpiPushQueue):
    """Every test above through our OCPI 2.3.0 CDRs receiver, with 2.3.0 CDRs."""

    VERSION = ocpi.V230
    allow_inherited_tests_method = True  # Odoo's loader: run the parent's tests here too
