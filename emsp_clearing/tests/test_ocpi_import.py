"""File import wizard (OCPI JSON array / CSV): same validation and idempotency as OCPI, every
rejection logged with its row/column or JSON path; cron entry point."""

import base64
import copy
import json

from odoo.exceptions import UserError
from odoo.tests import tagged

from ..clearing_core.formats import cdr_csv
from .ocpi_common import OcpiHttpCase, launcher


def _csv(cdrs, extra_rows=()):
    """CSV text for OCPI CDR dicts made by launcher.make_cdrs (one charging period)."""
    cols = list(cdr_csv.REQUIRED) + ["session_id", "location_name", "location_postal_code",
                                     "total_cost_incl_vat"]
    lines = [",".join(cols)]
    for c in cdrs:
        loc, tok = c["cdr_location"], c["cdr_token"]
        row = {
            "country_code": c["country_code"], "party_id": c["party_id"], "id": c["id"],
            "start_date_time": c["start_date_time"], "end_date_time": c["end_date_time"],
            "token_uid": tok["uid"], "token_type": tok["type"],
            "token_contract_id": tok["contract_id"], "token_country_code": tok["country_code"],
            "token_party_id": tok["party_id"], "auth_method": c["auth_method"],
            "location_id": loc["id"], "location_address": loc["address"], "location_city": loc["city"],
            "location_country": loc["country"], "location_latitude": loc["coordinates"]["latitude"],
            "location_longitude": loc["coordinates"]["longitude"], "evse_uid": loc["evse_uid"],
            "evse_id": loc["evse_id"], "connector_id": loc["connector_id"],
            "connector_standard": loc["connector_standard"],
            "connector_format": loc["connector_format"],
            "connector_power_type": loc["connector_power_type"], "currency": c["currency"],
            "total_cost_excl_vat": c["total_cost"]["excl_vat"], "total_energy": c["total_energy"],
            "total_time": c["total_time"], "session_id": c["session_id"],
            "location_name": loc["name"], "location_postal_code": loc["postal_code"],
            "total_cost_incl_vat": c["total_cost"]["incl_vat"],
        }
        lines.append(",".join('"%s"' % row[k] for k in cols))
    lines.extend(extra_rows)
    return "\n".join(lines) + "\n"


@tagged("post_install", "-at_install")
class TestCdrImport(OcpiHttpCase):

    def _import(self, content, filename):
        wiz = self.env["clearing.cdr.import"].create({
            "file": base64.b64encode(content.encode() if isinstance(content, str) else content),
            "filename": filename, "partner_id": self.cpo.id})
        action = wiz.action_import()
        log = self.env["clearing.ingestion.log"].browse(action["res_id"])
        self.assertEqual(log.channel, "file")
        return log

    def test_json_array_with_one_bad_cdr_and_reimport(self):
        cdrs = launcher.make_cdrs(4, prefix="JS")
        bad = copy.deepcopy(cdrs[1])
        bad["currency"] = "EURO"
        data = [cdrs[0], bad, cdrs[2], cdrs[3], "not an object"]
        log = self._import(json.dumps(data), "cdrs.json")
        self.assertEqual((log.count_received, log.count_created, log.count_rejected), (5, 3, 2))
        self.assertEqual(log.outcome, "partial")
        by_pos = {line.position: line for line in log.line_ids}
        self.assertEqual(by_pos["#2"].json_path, "$.currency")
        self.assertEqual(by_pos["#2"].cdr_ocpi_id, bad["id"])
        self.assertEqual(by_pos["#5"].json_path, "$")
        self.assertEqual(self.cdr_count(), 3)
        # the same file again: replays, nothing new; a changed CDR is refused
        changed = dict(cdrs[0], total_energy=99.0)
        log2 = self._import(json.dumps([cdrs[0], cdrs[2], changed]), "again.json")
        self.assertEqual((log2.count_created, log2.count_duplicate, log2.count_rejected), (0, 2, 1))
        self.assertEqual(log2.line_ids.json_path, "$.id")
        self.assertEqual(self.cdr_count(), 3)

    def test_json_same_cdr_twice_in_one_file(self):
        c = launcher.make_cdrs(1, prefix="TW")[0]
        log = self._import(json.dumps([c, c]), "twice.json")
        self.assertEqual((log.count_created, log.count_duplicate), (1, 1))
        self.assertEqual(self.cdr_count(ocpi_id=c["id"]), 1)

    def test_unreadable_json_file(self):
        log = self._import("[{", "broken.json")
        self.assertEqual(log.outcome, "rejected")
        self.assertIn("not valid JSON", log.line_ids.reason)

    def test_csv_rows_and_columns(self):
        cdrs = launcher.make_cdrs(3, prefix="CS")
        text = _csv(cdrs)
        lines = text.splitlines()
        # row 3 gets a bad number, and a row 5 with a bad token type (found by OCPI validation)
        bad_row = lines[2].replace('"%s"' % cdrs[1]["total_energy"], '"12,5"', 1)
        wrong_type = lines[3].replace('"RFID"', '"BADGE"').replace(cdrs[2]["id"], "CS-TYPE")
        content = "\n".join([lines[0], lines[1], bad_row, lines[3], wrong_type]) + "\n"
        log = self._import(content, "cdrs.csv")
        self.assertEqual((log.count_received, log.count_created, log.count_rejected), (4, 2, 2))
        lines_by_pos = {line.position: line for line in log.line_ids}
        self.assertEqual(lines_by_pos["row 3"].column, "total_energy")
        self.assertEqual(lines_by_pos["row 5"].column, "token_type")
        self.assertEqual(lines_by_pos["row 5"].json_path, "$.cdr_token.type")
        stored = self.env["clearing.cdr"].search([("ocpi_id", "=", cdrs[0]["id"])])
        self.assertEqual(stored.contract_id, self.contract)
        self.assertEqual(stored.evse_uid, cdrs[0]["cdr_location"]["evse_uid"])
        # importing the same CSV again stores nothing twice
        log2 = self._import(content, "cdrs.csv")
        self.assertEqual((log2.count_created, log2.count_duplicate), (0, 2))

    def test_import_into_a_company_of_another_user_refused(self):
        other = self.env["res.company"].create({"name": "Not mine"})
        user = self.env["res.users"].create({
            "name": "Clearing clerk", "login": "clerk_ocpi_import",
            "groups_id": [(6, 0, [self.env.ref("emsp_clearing.group_clearing_user").id])]})
        wiz = self.env["clearing.cdr.import"].with_user(user).create({
            "file": base64.b64encode(b"[]"), "filename": "x.json", "company_id": other.id})
        with self.assertRaises(UserError):
            wiz.action_import()

    def test_csv_header_error(self):
        log = self._import("id,colour\nX,red\n", "x.csv")
        self.assertEqual(log.count_created, 0)
        self.assertTrue(log.line_ids.filtered(lambda l: l.column == "colour"))
        self.assertTrue(log.line_ids.filtered(lambda l: l.column == "currency"))

    def test_cron_pulls_registered_connections_only(self):
        conn, _token = self._connection(pull_enabled=True)
        # no CDRs sender endpoint: the cron leaves it alone
        self.env["clearing.ocpi.connection"]._cron_pull()
        self.assertFalse(self.env["clearing.ingestion.log"].search([("connection_id", "=", conn.id)]))
        cron = self.env.ref("emsp_clearing.ir_cron_ocpi_pull_cdrs")
        self.assertEqual(cron.code.strip(), "model._cron_pull()")
