"""Re-matching and re-pricing stored CDRs set-based (``clearing.cdr._match_and_price``) stores
exactly what the CDR-by-CDR path (``match_and_price_itemwise`` below, the code before it went
set-based) stores, with the same chatter tracking, through contract changes, partner identity
changes and "Re-price"."""

from datetime import datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import make_ocpi_cdr
from .period_common import PeriodCase

def match_and_price_itemwise(cdrs, tariff_cache=None, parsed=None):
    """The reference: ``clearing.cdr._match_and_price`` CDR by CDR, each CDR matched with
    ``clearing.contract._find_for_cdr`` and written on its own."""
    contract_model = cdrs.env["clearing.contract"]
    partner_model = cdrs.env["res.partner"]
    for cdr in cdrs:
        contract, reason = contract_model._find_for_cdr(cdr)
        if contract:
            cdr.write({"contract_id": contract.id, "partner_id": contract.partner_id.id,
                       "match_state": "matched", "unmatched_reason": False})
            continue
        own = cdr.company_id.partner_id
        if (cdr.country_code, cdr.party_id) == (own.ocpi_country_code, own.ocpi_party_id):
            partner = partner_model._find_by_ocpi_identity(
                cdr.token_country_code, cdr.token_party_id, cdr.company_id)
        else:
            partner = partner_model._find_by_ocpi_identity(
                cdr.country_code, cdr.party_id, cdr.company_id)
        cdr.write({"contract_id": False, "partner_id": partner.id, "match_state": "unmatched",
                   "unmatched_reason": reason})
    matched = cdrs.filtered(lambda c: c.match_state == "matched")
    for cdr in cdrs - matched:
        cdr.write(cdr._prepare_empty_pricing_vals())
    tariff_cache = {} if tariff_cache is None else tariff_cache
    for cdr in matched:
        cdr.write(cdr._priced_vals(tariff_cache, parsed or {}))


VOLATILE = {"id", "create_date", "write_date", "create_uid", "write_uid", "display_name",
            "__last_update"}


@tagged("post_install", "-at_install")
class TestRematchBatch(PeriodCase):
    """``cls.contract``: FR*TEM (we are the CPO), EUR, Europe/Paris, from 2026-01-01; a contract
    with the CPO DE*CPX (we are the eMSP) in USD, America/New_York; sessions of both, of
    strangers, in the wrong currency, before the contracts, credits, lower-case identities."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.usd.active = True
        cls.cpo_contract = cls._contract(
            partner=cls.cpo, role="emsp", currency_id=cls.usd.id, tz="America/New_York",
            name="CTR-CPX", lines=[{"dimension": "ENERGY", "price": 0.25},
                                   {"dimension": "TIME", "price": 2.0}])
        cls.contract.name = "CTR-TEM-1"
        cls.seq = 0
        with freeze_time("2026-03-20 10:00:00"):
            cdrs = [
                cls._cdr("2026-01-05T10:00:00", 10.0),
                cls._cdr("2026-02-10T08:00:00", 22.5, mismatch=True),
                cls._cdr("2026-02-28T23:30:00", 7.25),  # March 1st in Paris
                cls._cdr("2026-03-10T10:00:00", 12.0),
                cls._cdr("2026-03-15T18:00:00", 31.0, issuer=("fr", "tem")),  # CiString
                cls._cdr("2026-03-16T10:00:00", 5.0, currency="USD"),
                cls._cdr("2025-12-20T10:00:00", 9.0),  # before the contract
                cls._cdr("2026-03-12T10:00:00", 8.0, sender=("BE", "XXX")),  # not ours
                cls._cdr("2026-03-12T11:00:00", 8.0, issuer=("FR", "UNK")),  # no contract
                # we are the eMSP: the CPO's sessions, in USD, late evening in New York
                cls._cdr("2026-03-01T03:30:00", 15.0, sender=("DE", "CPX"),
                         issuer=("FR", "TST"), currency="USD"),
                cls._cdr("2026-03-11T14:00:00", 40.0, sender=("DE", "CPX"),
                         issuer=("FR", "TST"), currency="USD", mismatch=True),
                cls._cdr("2026-03-12T15:00:00", 3.0, sender=("de", "cpx"),
                         issuer=("FR", "TST"), currency="USD"),
            ]
            # credits: of a matched session, and of the one in the wrong currency
            cdrs.append(cls._cdr("2026-03-10T10:00:00", 12.0, credit_of=cdrs[3]))
            cdrs.append(cls._cdr("2026-03-16T10:00:00", 5.0, currency="USD",
                                 credit_of=cdrs[5]))
        cls.cdrs = cls.env["clearing.cdr"].browse([c.id for c in cdrs])

    @classmethod
    def _cdr(cls, end, kwh, sender=("FR", "TST"), issuer=("FR", "TEM"), currency="EUR",
             mismatch=False, credit_of=None):
        cls.seq += 1
        end = datetime.fromisoformat(end)
        start = end - timedelta(minutes=50 + cls.seq)
        hours = (50 + cls.seq) / 60
        extra = {}
        stated = round(kwh * 0.30 + 1.0, 2) + (5 if mismatch else 0)
        if credit_of:
            extra = {"credit": True, "credit_reference_id": credit_of.ocpi_id}
            stated = -stated
        data = make_ocpi_cdr(
            "RB-%03d" % cls.seq, start, [(0, {"ENERGY": kwh, "TIME": hours}),
                                         (30, {"PARKING_TIME": 0.1})],
            end=end, sender=sender, issuer=issuer, currency=currency,
            total_cost={"excl_vat": stated, "incl_vat": round(stated * 1.2, 2)}, **extra)
        return cls.env["clearing.cdr"].ingest_ocpi(data)

    # ------------------------------------------------------------------ snapshots
    def _rows(self):
        """Every column of every CDR as PostgreSQL stores it, by CDR id: the other records
        by something both runs share (the clearing period by contract and dates, contracts by
        name); the write date and author aside."""
        self.env.flush_all()
        cr = self.env.cr
        cr.execute("SELECT id, contract_id, date_start, date_end FROM clearing_period")
        periods = {row[0]: row[1:] for row in cr.fetchall()}
        cr.execute("SELECT id, name FROM clearing_contract")
        contracts = dict(cr.fetchall())
        cr.execute("SELECT * FROM clearing_cdr WHERE id = ANY(%s) ORDER BY id",
                   [self.cdrs.ids])
        names = [d[0] for d in cr.description]
        out = {}
        for values in cr.fetchall():
            row = dict(zip(names, values))
            for fname in ("period_id", "carried_from_period_id"):
                period = periods.get(row[fname])
                row[fname] = period and (contracts[period[0]], *period[1:])
            row["contract_id"] = contracts.get(row["contract_id"])
            for fname in VOLATILE - {"id"}:
                row.pop(fname, None)
            out[row["ocpi_id"]] = row
        return out

    def _fields(self):
        """Every stored field of every CDR as the ORM reads it."""
        model = self.env["clearing.cdr"]
        names = [n for n, f in model._fields.items() if f.store and n not in VOLATILE
                 and not n.startswith(("message_", "activity_", "website_message"))]
        self.env.invalidate_all()
        out = {}
        for cdr in self.cdrs:
            row = {}
            for name in names:
                field, value = model._fields[name], cdr[name]
                if field.type == "many2one":
                    value = (value.ocpi_id if field.comodel_name == "clearing.cdr"
                             else value.display_name)
                elif field.type in ("one2many", "many2many"):
                    value = sorted(value.mapped("display_name"))
                row[name] = value
            out[cdr.ocpi_id] = row
        return out

    def _tracking(self):
        """The chatter tracking of the CDRs: (CDR, field, old, new) of every tracked change."""
        self.env.flush_all()
        self.env.cr.precommit.run()  # mail.thread writes its tracking messages here
        values = self.env["mail.tracking.value"].sudo().search([
            ("mail_message_id.model", "=", "clearing.cdr"),
            ("mail_message_id.res_id", "in", self.cdrs.ids)])
        by_id = dict(zip(self.cdrs.ids, self.cdrs.mapped("ocpi_id")))
        return sorted(
            (by_id[v.mail_message_id.res_id], v.field_id.name, v.old_value_char or "",
             v.new_value_char or "", v.old_value_integer and 1, v.new_value_integer and 1)
            for v in values)

    def _snapshot(self):
        return {"rows": self._rows(), "fields": self._fields(), "tracking": self._tracking(),
                "periods": self._periods()}

    def _periods(self):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT c.name, p.date_start, p.date_end, p.state FROM clearing_period p "
            "JOIN clearing_contract c ON c.id = p.contract_id ORDER BY 1, 2")
        return self.env.cr.fetchall()

    # ------------------------------------------------------------------ scenario
    def _scenario(self):
        """Contract and partner changes, then "Re-price": a snapshot after each."""
        env = self.env(context=dict(self.env.context, tracking_disable=False))
        contract = self.contract.with_env(env)
        snapshots = []
        self._tracking()  # what setUpClass left pending
        with freeze_time("2026-03-25 09:00:00"):
            # March leaves (unmatched: outside the validity)
            contract.write({"date_end": "2026-02-28"})
            snapshots.append(self._snapshot())
            # a successor takes them (re-match of the unmatched CDRs when it is activated)
            successor = self._contract(name="CTR-TEM-2", date_start="2026-03-01",
                                       lines=[{"dimension": "ENERGY", "price": 0.40}],
                                       activate=False).with_env(env)
            successor.action_activate()
            snapshots.append(self._snapshot())
            # the first contract covers March again: nothing leaves (the 2025 session comes
            # in), but re-priced, March is ambiguous -> unmatched
            contract.write({"date_end": False, "date_start": "2025-12-01"})
            cdrs = self.cdrs.with_env(env)
            cdrs._repriceable().action_reprice()
            snapshots.append(self._snapshot())
            # the successor is closed, the grid changes, then Re-price: back to the first one
            successor.action_close()
            contract.write({"price_line_ids": [Command.create(
                {"dimension": "FLAT", "price": 0.5})], "price_tolerance": 0.5})
            cdrs._repriceable().action_reprice()
            snapshots.append(self._snapshot())
            # the CPO's identity changes: its CDRs leave (their sender is nobody now)
            self.cpo.with_env(env).write({"ocpi_party_id": "CPY"})
            snapshots.append(self._snapshot())
            # its contract moves to New Zealand time, the identity comes back: the sessions
            # return, the one of February 28th in New York now in March
            self.cpo_contract.with_env(env).write({"tz": "Pacific/Auckland"})
            self.cpo.with_env(env).write({"ocpi_party_id": "CPX"})
            snapshots.append(self._snapshot())
            cdrs.action_reprice()
            snapshots.append(self._snapshot())
        return snapshots

    def _compare(self, got, expected):
        self.assertEqual(len(got), len(expected))
        for step, (g, e) in enumerate(zip(got, expected)):
            self.assertEqual(g["periods"], e["periods"], "step %d: periods differ" % step)
            self.assertEqual(g["tracking"], e["tracking"], "step %d: tracking differs" % step)
            self.assertEqual(set(g["rows"]), set(e["rows"]))
            for key in e["rows"]:
                diff = {n: (g["rows"][key].get(n), e["rows"][key].get(n))
                        for n in set(g["rows"][key]) | set(e["rows"][key])
                        if g["rows"][key].get(n) != e["rows"][key].get(n)}
                self.assertFalse(diff, "step %d: stored row of %s differs (set-based, "
                                 "CDR by CDR): %s" % (step, key, diff))
            self.assertEqual(g["fields"], e["fields"], "step %d: fields differ" % step)

    def test_set_based_equals_cdr_by_cdr(self):
        cdr_class = self.registry["clearing.cdr"]
        sp = self.env.cr.savepoint()
        with patch.object(cdr_class, "_match_and_price", match_and_price_itemwise):
            expected = self._scenario()
        sp.close(rollback=True)
        self.env.invalidate_all()
        self.env.registry.clear_cache()
        got = self._scenario()
        self._compare(got, expected)
        # the scenario went through what it is meant to
        reasons = {r["unmatched_reason"] or "" for s in expected for r in s["rows"].values()}
        for part in ("outside contract", "ambiguous", " is in ", "neither is our identity",
                     "no active contract with eMSP FR*UNK",
                     "no active contract with CPO DE*CPX"):
            self.assertTrue(any(part in r for r in reasons), part)
        rows = expected[-1]["rows"]
        self.assertTrue(any(r["price_mismatch"] for r in rows.values()))
        self.assertTrue(any(r["credit"] and r["amount_total"] < 0 for r in rows.values()))
        self.assertTrue(any(r["credit"] and not r["contract_id"] and r["energy_kwh"] < 0
                            for r in rows.values()))
        moved = {r["ocpi_id"] for s in expected for r in s["rows"].values()
                 if r["contract_id"] == "CTR-TEM-2"}
        self.assertTrue(moved)
        self.assertTrue(expected[0]["tracking"])

    def test_locked_or_unpriceable_cdr_refuses_both_ways(self):
        """A CDR that cannot be priced, or a locked one, refuses the call the same way."""
        broken = self._raw_cdr("RB-RAW", "2026-03-18 10:00:00")  # no OCPI JSON
        cdrs = self.cdrs | broken
        errors = []
        for method in (match_and_price_itemwise, type(cdrs)._match_and_price):
            with self.assertRaises(ValidationError) as caught, self.env.cr.savepoint():
                method(cdrs)
            errors.append(str(caught.exception))
        self.assertEqual(errors[0], errors[1])
        self.assertIn("Invalid OCPI CDR", errors[0])
        with freeze_time("2026-04-08 06:00:00"):
            self.Period._cron_lock_periods()
        locked = self.cdrs.filtered("locked")
        self.assertTrue(locked)
        errors = []
        for method in (match_and_price_itemwise, type(self.cdrs)._match_and_price):
            with self.assertRaises(UserError) as caught, self.env.cr.savepoint():
                method(self.cdrs.sorted("end_datetime"))
            errors.append(str(caught.exception))
        self.assertEqual(errors[0], errors[1])
        self.assertIn(locked.sorted("end_datetime")[0].ocpi_id, errors[0])
