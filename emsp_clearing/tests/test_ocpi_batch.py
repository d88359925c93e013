"""The batch ingestion (models/clearing_cdr_ingest.py) stores exactly what the item-by-item
``_ingest_ocpi`` path stores, and reports the same errors."""

import copy

from odoo.tests import tagged

from ..models.clearing_cdr_ingest import ClearingCdr as BatchIngest
from .ocpi_common import OcpiHttpCase, launcher

VOLATILE = {"id", "create_date", "write_date", "create_uid", "write_uid", "priced_date",
            "display_name", "__last_update"}


@tagged("post_install", "-at_install")
class TestOcpiBatchIngest(OcpiHttpCase):

    def _items(self):
        cdrs = launcher.make_cdrs(6, prefix="EQ", step_seconds=5400)
        usd = dict(copy.deepcopy(cdrs[1]), id="EQ-USD", currency="USD")
        stranger = dict(copy.deepcopy(cdrs[2]), id="EQ-STR", country_code="BE", party_id="XXX")
        credit0 = dict(copy.deepcopy(cdrs[0]), id="EQ000001-C", credit=True,
                       credit_reference_id="EQ000001",
                       total_cost={k: -v for k, v in cdrs[0]["total_cost"].items()})
        # a credit arriving before its original (same batch)
        credit5 = dict(copy.deepcopy(cdrs[5]), id="EQ000006-C", credit=True,
                       credit_reference_id="EQ000006",
                       total_cost={k: -v for k, v in cdrs[5]["total_cost"].items()})
        bad = copy.deepcopy(cdrs[3])
        bad["cdr_location"].pop("evse_uid")
        bad["id"] = "EQ-BAD"
        weird_currency = dict(copy.deepcopy(cdrs[4]), id="EQ-XXX", currency="XTS")
        return [cdrs[0], credit0, usd, stranger, credit5, cdrs[1], cdrs[2], bad, cdrs[3],
                cdrs[3], "nope", weird_currency, cdrs[4], cdrs[5]]

    def _snapshot(self, results):
        model = self.env["clearing.cdr"]
        names = [n for n, f in model._fields.items() if f.store and n not in VOLATILE
                 and not n.startswith(("message_", "activity_", "website_message"))]
        out = []
        for r in results:
            if not r["record"]:
                out.append(("error", r["error"]))
                continue
            rec = r["record"]
            row = {}
            for n in names:
                f = model._fields[n]
                v = rec[n]
                if f.type == "many2one":
                    v = (v.ocpi_id if f.comodel_name == "clearing.cdr"
                         else v.id if f.comodel_name in ("res.partner", "res.currency",
                                                         "clearing.contract", "res.company")
                         else v.display_name)
                elif f.type in ("one2many", "many2many"):
                    v = sorted(v.mapped("display_name"))
                row[n] = v
            out.append(("ok", row))
        return out

    def test_batch_equals_item_by_item(self):
        self.env["res.currency"].with_context(active_test=False).search(
            [("name", "=", "USD")]).active = True
        items = self._items()
        model = self.env["clearing.cdr"]
        sp = self.env.cr.savepoint()
        slow = super(BatchIngest, model)._ingest_ocpi_batch(copy.deepcopy(items), company=self.company)
        self.env.flush_all()
        for r in slow:  # links made later in the batch are read back from the database
            if r["record"]:
                r["record"].invalidate_recordset()
        expected = self._snapshot(slow)
        sp.close(rollback=True)
        self.env.invalidate_all()
        self.assertFalse(model.search([("ocpi_id", "=like", "EQ%")]))
        fast = model._ingest_ocpi_batch(copy.deepcopy(items), company=self.company)
        self.env.flush_all()
        got = self._snapshot(fast)
        self.assertEqual(len(got), len(expected))
        for i, (g, e) in enumerate(zip(got, expected)):
            self.assertEqual(g, e, "item %d differs" % i)
        kinds = [k for k, _v in got]
        self.assertEqual(kinds.count("ok"), 10)
        credit = model.search([("ocpi_id", "=", "EQ000006-C")])
        self.assertEqual(credit.credited_cdr_id.ocpi_id, "EQ000006")
        self.assertEqual(model.search([("ocpi_id", "=", "EQ000001")]).state, "priced")
        self.assertIn("USD", model.search([("ocpi_id", "=", "EQ-USD")]).unmatched_reason)
