"""The batch ingestion (``clearing.cdr.ingest_ocpi_batch``: clearing_cdr_ingest_mixin.py and
tools/bulk_insert.py) stores exactly what the item-by-item ORM path (``ingest_ocpi``) stores,
and reports the same errors."""

import copy
from unittest.mock import patch

import psycopg2

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..clearing_core import ocpi
from ..tools.bulk_insert import stored_columns
from .ocpi_common import OcpiHttpCase, credit_cdr, launcher

VOLATILE = {"id", "create_date", "write_date", "create_uid", "write_uid", "priced_date",
            "display_name", "__last_update"}


@tagged("post_install", "-at_install")
class TestOcpiBatchIngest(OcpiHttpCase):
    """In OCPI 2.2.1; ``TestOcpiBatchIngest230`` runs every test again with 2.3.0 CDRs."""

    VERSION = ocpi.V221

    def make_cdrs(self, count, **kw):
        """``launcher.make_cdrs`` in the form of ``VERSION``."""
        return [ocpi.cdr_dict_to_version(c, self.VERSION)
                for c in launcher.make_cdrs(count, **kw)]

    def _items(self):
        cdrs = self.make_cdrs(6, prefix="EQ", step_seconds=5400)
        usd = dict(copy.deepcopy(cdrs[1]), id="EQ-USD", currency="USD")
        stranger = dict(copy.deepcopy(cdrs[2]), id="EQ-STR", country_code="BE", party_id="XXX")
        credit0 = credit_cdr(cdrs[0], self.VERSION, id="EQ000001-C")
        # a credit arriving before its original (same batch)
        credit5 = credit_cdr(cdrs[5], self.VERSION, id="EQ000006-C")
        bad = copy.deepcopy(cdrs[3])
        bad["cdr_location"].pop("evse_uid")
        bad["id"] = "EQ-BAD"
        weird_currency = dict(copy.deepcopy(cdrs[4]), id="EQ-XXX", currency="XTS")
        # characters the set-based storage (COPY text format) must escape
        cdrs[4]["remark"] = "\\N back\\slash\\t 'q' \"dq\" é €"
        cdrs[4]["cdr_location"]["name"] = "\\N"
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

    def _raw_rows(self, results):
        """Every column of the stored rows as PostgreSQL has them (NULL vs false, numeric
        scale, JSON): ids and dates that differ between two runs are replaced by whether
        they are set; references to other CDRs by the referenced CDR id."""
        ids = [r["record"].id for r in results if r["record"]]
        self.env.flush_all()
        self.env.cr.execute("SELECT * FROM clearing_cdr WHERE id = ANY(%s)", (ids,))
        names = [d[0] for d in self.env.cr.description]
        by_id = {row[names.index("id")]: dict(zip(names, row)) for row in self.env.cr.fetchall()}
        self.env.cr.execute("SELECT id, ocpi_id FROM clearing_cdr")
        ocpi_ids = dict(self.env.cr.fetchall())
        out = []
        for rid in ids:
            row = by_id[rid]
            for n in list(row):
                if n in ("credited_cdr_id",):
                    row[n] = ocpi_ids.get(row[n])
                elif n in VOLATILE or n in ("period_id", "carried_from_period_id"):
                    row[n] = row[n] is not None
            out.append(row)
        return out

    def test_batch_equals_item_by_item(self):
        self.env["res.currency"].with_context(active_test=False).search(
            [("name", "=", "USD")]).active = True
        items = self._items()
        # fleet terms: the token of cdrs[1] (by UID) and of cdrs[3] (by contract_id pattern)
        fleet = self.env["clearing.fleet"].create({
            "name": "VIP", "contract_id": self.contract.id, "token_uids": "tok00001",
            "contract_id_patterns": "DE-MSP-C00003*",
            "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.21})]})
        # eMSP hat: a resale grid, so both paths price every session with it too (flat fee
        # and a per-minute charging time with a step: rounding and the credit sign compared)
        self.contract.write({"resale_line_ids": [
            Command.create({"dimension": "FLAT", "price": 1.0, "resale": True}),
            Command.create({"dimension": "ENERGY", "price": 0.55, "resale": True}),
            Command.create({"dimension": "TIME", "price": 0.05, "time_unit": "minute",
                            "step_size": 300, "resale": True})]})
        model = self.env["clearing.cdr"]
        sp = self.env.cr.savepoint()
        slow = model._ingest_ocpi_each(copy.deepcopy(items), company=self.company)
        self.env.flush_all()
        for r in slow:  # links made later in the batch are read back from the database
            if r["record"]:
                r["record"].invalidate_recordset()
        expected = self._snapshot(slow)
        expected_raw = self._raw_rows(slow)
        sp.close(rollback=True)
        self.env.invalidate_all()
        self.assertFalse(model.search([("ocpi_id", "=like", "EQ%")]))
        fast = model.ingest_ocpi_batch(copy.deepcopy(items), company=self.company)
        self.env.flush_all()
        got = self._snapshot(fast)
        self.assertEqual(len(got), len(expected))
        for i, (g, e) in enumerate(zip(got, expected)):
            self.assertEqual(g, e, "item %d differs" % i)
        got_raw = self._raw_rows(fast)
        self.assertEqual(len(got_raw), len(expected_raw))
        for g, e in zip(got_raw, expected_raw):
            # the item-by-item path prices with a write after the create, and the ORM does not
            # write 0/false over an unset (NULL) number or flag: same value for the ORM and in
            # SUM(), so NULL = 0 = false here; anything else must be identical
            diff = {n: (g.get(n), e.get(n)) for n in set(g) | set(e)
                    if g.get(n) != e.get(n) and not (
                        {g.get(n), e.get(n)} <= {None, 0, False} and "" not in (g.get(n), e.get(n)))}
            self.assertFalse(diff, "stored row of %s differs (batch, item by item): %s"
                             % (e["ocpi_id"], diff))
        kinds = [k for k, _v in got]
        self.assertEqual(kinds.count("ok"), 10)
        credit = model.search([("ocpi_id", "=", "EQ000006-C")])
        self.assertEqual(credit.credited_cdr_id.ocpi_id, "EQ000006")
        self.assertEqual(model.search([("ocpi_id", "=", "EQ000001")]).state, "priced")
        self.assertEqual(set(model.search([("ocpi_id", "=like", "EQ%")]).mapped("ocpi_version")),
                         {self.VERSION})
        self.assertIn("USD", model.search([("ocpi_id", "=", "EQ-USD")]).unmatched_reason)
        # the resale amounts: priced on both paths (compared above), negative for a credit
        resale = {c.ocpi_id: c.resale_amount for c in model.search([("ocpi_id", "=like", "EQ%")])}
        self.assertGreater(resale["EQ000001"], 1.0)
        self.assertEqual(resale["EQ000001-C"], -resale["EQ000001"])
        self.assertEqual(resale["EQ-USD"], 0.0)  # unmatched: no resale
        fleet_cdrs = model.search([("fleet_id", "=", fleet.id)])
        self.assertEqual(sorted(fleet_cdrs.mapped("ocpi_id")), ["EQ000002", "EQ000004"])
        self.assertEqual(fleet_cdrs[0].applied_tariff["id"], "%s/VIP" % self.contract.name)

    def test_field_added_later_flows_through_the_batch_path(self):
        """A stored field added to clearing.cdr later -- as invoicing or another module would
        add it, here a manual field with a default -- is stored by the batch path as by
        ``create``, the bulk writer (tools/bulk_insert.py) unchanged: its default, or the
        ``default_*`` of the context, or the value given."""
        model = self.env["clearing.cdr"]
        self.env.cr.execute("ALTER TABLE clearing_cdr ADD COLUMN x_batch_probe varchar")
        field = fields.Char(string="Batch probe", default="from the field default")
        model._add_field("x_batch_probe", field)
        self.addCleanup(model._pop_field, "x_batch_probe")
        field.setup(model)
        self.assertIn(field, stored_columns(model))
        items = self.make_cdrs(4, prefix="NF", step_seconds=5400)
        batch = model.ingest_ocpi_batch(copy.deepcopy(items[:2]), company=self.company)
        item = model.ingest_ocpi(copy.deepcopy(items[2]), company=self.company)
        in_context = model.with_context(default_x_batch_probe="from the context")
        [from_context] = in_context.ingest_ocpi_batch([copy.deepcopy(items[3])],
                                                      company=self.company)
        records = [r["record"] for r in batch] + [item, from_context["record"]]
        self.assertTrue(all(records), [r["error"] for r in batch])
        self.env.flush_all()
        self.env.cr.execute("SELECT ocpi_id, x_batch_probe FROM clearing_cdr WHERE id = ANY(%s)",
                            [[r.id for r in records]])
        self.assertEqual(dict(self.env.cr.fetchall()), {
            "NF000001": "from the field default", "NF000002": "from the field default",
            "NF000003": "from the field default", "NF000004": "from the context"})
        # a value given by a _prepare_cdr_vals override is stored as given
        prepare = type(model)._prepare_cdr_vals

        def prepare_with_probe(self, *args, **kwargs):
            return dict(prepare(self, *args, **kwargs), x_batch_probe="given\tby a hook")

        more = self.make_cdrs(1, prefix="NG")
        with patch.object(type(model), "_prepare_cdr_vals", prepare_with_probe):
            [given] = model.ingest_ocpi_batch(copy.deepcopy(more), company=self.company)
        self.assertTrue(given["record"], given["error"])
        given["record"].invalidate_recordset()
        self.assertEqual(given["record"].x_batch_probe, "given\tby a hook")

    def test_one_cdr_per_id_and_sender_whatever_its_case(self):
        """The database keeps one CDR per (id, sender, company), the sender compared
        case-insensitively as every ingestion look-up compares it (OCPI CiString)."""
        model = self.env["clearing.cdr"]
        cdr = self.make_cdrs(1, prefix="CI")[0]
        first = model.ingest_ocpi_batch([copy.deepcopy(cdr)], company=self.company)[0]
        self.assertTrue(first["record"], first["error"])
        self.env.flush_all()
        cr = self.env.cr
        cr.execute("CREATE TEMP TABLE ci_copy AS SELECT * FROM clearing_cdr WHERE id = %s",
                   [first["record"].id])
        cr.execute("UPDATE ci_copy SET id = nextval('clearing_cdr_id_seq'), "
                   "country_code = lower(country_code), party_id = lower(party_id)")
        with self.assertRaises(psycopg2.errors.UniqueViolation), \
                mute_logger("odoo.sql_db"), cr.savepoint():
            cr.execute("INSERT INTO clearing_cdr SELECT * FROM ci_copy")
        # another id from the same sender, or the same id from another company, is a new CDR
        cr.execute("UPDATE ci_copy SET id = nextval('clearing_cdr_id_seq'), ocpi_id = 'CI-2'")
        cr.execute("INSERT INTO clearing_cdr SELECT * FROM ci_copy")
        other = self.env["res.company"].create({"name": "Other clearing company"})
        cr.execute("UPDATE ci_copy SET id = nextval('clearing_cdr_id_seq'), ocpi_id = %s, "
                   "company_id = %s", [cdr["id"], other.id])
        cr.execute("INSERT INTO clearing_cdr SELECT * FROM ci_copy")
        self.assertEqual(
            model.sudo().with_context(active_test=False).search_count(
                [("ocpi_id", "in", [cdr["id"], "CI-2"])]), 3)

    def test_sender_in_another_case_is_the_same_cdr(self):
        """A CDR received again with its sender in lower case is the same CDR, by every path,
        as the unique index says (no database error)."""
        model = self.env["clearing.cdr"]
        cdr = self.make_cdrs(1, prefix="LC")[0]
        self.assertTrue(model.ingest_ocpi_batch([copy.deepcopy(cdr)],
                                                 company=self.company)[0]["record"])
        lower = dict(copy.deepcopy(cdr), country_code=cdr["country_code"].lower(),
                     party_id=cdr["party_id"].lower())
        out = model.ingest_ocpi_batch([lower], company=self.company)[0]
        self.assertFalse(out["record"])
        self.assertIn("was already received", out["error"])
        with self.assertRaises(ValidationError):
            model.ingest_ocpi(copy.deepcopy(lower), company=self.company)
        self.assertEqual(model.search_count([("ocpi_id", "=", cdr["id"])]), 1)

    def test_concurrent_duplicate_keeps_the_reserved_ids(self):
        """A CDR stored by a concurrent call after the batch looked (here: a look-up that
        saw nothing) is refused alone; the others are stored under their reserved ids (the
        Locations the push queue answered with)."""
        model = self.env["clearing.cdr"]
        cdrs = self.make_cdrs(3, prefix="RC")
        self.assertTrue(model.ingest_ocpi_batch([copy.deepcopy(cdrs[1])],
                                                 company=self.company)[0]["record"])
        self.env.cr.execute("SELECT nextval('clearing_cdr_id_seq') FROM generate_series(1, 3)")
        reserved = [row[0] for row in self.env.cr.fetchall()]
        with patch.object(type(model), "_existing_keys", lambda self, company, keys: set()):
            out = model.ingest_ocpi_batch(copy.deepcopy(cdrs), company=self.company,
                                           ids=reserved)
        self.assertEqual([r["record"].id if r["record"] else None for r in out],
                         [reserved[0], None, reserved[2]])
        self.assertIn("was already received", out[1]["error"])
        self.assertEqual(model.browse(reserved[2]).ocpi_id, cdrs[2]["id"])


@tagged("post_install", "-at_install")
class TestOcpiBatchIngest230(TestOcpiBatchIngest):
    """Every test above with OCPI 2.3.0 CDRs (Price with taxes, stated taxes stored)."""

    VERSION = ocpi.V230
    allow_inherited_tests_method = True  # Odoo's loader: run the parent's tests here too
