"""A change of a contract's matching rule moves the CDRs that no longer fit it (and only
those); locked, excluded or disputed CDRs never move: the change is refused."""

from datetime import datetime

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import make_ocpi_cdr
from .period_common import RematchCase


@tagged("post_install", "-at_install")
class TestContractRematch(RematchCase):
    """``cls.contract``: FR*TEM, EUR, from 2026-01-01 (open-ended), Europe/Paris, 0.30/kWh +
    1.00 per session, 20 % VAT."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with freeze_time("2026-03-20 10:00:00"):
            # 22:30 UTC on March 31st is 00:30 on April 1st in Paris
            cls.april_1 = cls._session("2026-03-31T22:30:00", kwh=10.0)
        cls.cdrs = cls.march_10 | cls.march_11 | cls.april_1 | cls.april_5

    def assertDetached(self, cdr, reason):
        super().assertDetached(cdr, reason)
        self.assertEqual(cdr.partner_id, self.emsp)  # still known for follow-up

    def test_priced_under_the_contract(self):
        self.assertEqual(self.cdrs.contract_id, self.contract)
        self.assertEqual(set(self.cdrs.mapped("state")), {"priced"})
        self.assertAlmostEqual(self.april_5.amount_untaxed, 4.0)  # 10 kWh x 0.30 + 1.00

    def test_shorter_end_detaches_the_cdrs_after_it(self):
        kept = self.snapshot(self.march_10 | self.march_11)
        with freeze_time("2026-03-25 09:00:00"):
            self.contract.date_end = "2026-03-31"
        # April 1st in the contract time zone, although March 31st in UTC
        for cdr in self.april_1 | self.april_5:
            self.assertDetached(cdr, "CDR ended %s, outside contract %s validity "
                                "2026-01-01..2026-03-31" % (
                                    "2026-04-01" if cdr == self.april_1 else "2026-04-05",
                                    self.contract.name))
        # the others keep their contract, period and price: not priced again
        self.assertEqual(self.snapshot(self.march_10 | self.march_11), kept)
        self.assertEqual(self.contract.cdr_count, 2)

    def test_dates_still_covering_the_cdrs_touch_nothing(self):
        before = self.snapshot(self.cdrs)
        with freeze_time("2026-03-25 09:00:00"):
            self.contract.write({"date_start": "2026-03-10", "date_end": "2026-04-05"})
        self.assertEqual(self.snapshot(self.cdrs), before)
        self.assertEqual(self.cdrs.contract_id, self.contract)

    def test_detached_cdrs_go_to_the_contract_that_fits(self):
        successor = self._contract(date_start="2026-04-01",
                                   lines=[{"dimension": "ENERGY", "price": 0.50}])
        self.assertEqual(self.april_5.contract_id, self.contract)  # attached ones stay
        self.contract.date_end = "2026-03-31"
        for cdr in self.april_1 | self.april_5:
            self.assertEqual(cdr.contract_id, successor)
            self.assertEqual(cdr.match_state, "matched")
            self.assertEqual(cdr.state, "priced")
            self.assertEqual(cdr.period_id.contract_id, successor)
            # priced with the successor's grid: 10 kWh x 0.50, 20 % VAT
            self.assertAlmostEqual(cdr.amount_untaxed, 5.0)
            self.assertAlmostEqual(cdr.amount_total, 6.0)
            self.assertEqual(cdr.applied_tariff["id"], successor.name)
        self.assertEqual((self.march_10 | self.march_11).contract_id, self.contract)

    def test_currency_change_detaches_every_cdr(self):
        self.usd.active = True
        self.contract.action_reset_to_draft()
        self.assertEqual(self.cdrs.contract_id, self.contract)
        self.contract.currency_id = self.usd
        for cdr in self.cdrs:
            self.assertDetached(cdr, "no active contract with eMSP FR*TEM")
        self.contract.action_activate()
        self.assertEqual(self.march_10.unmatched_reason, "contract %s is in USD, CDR in EUR"
                         % self.contract.name)

    def test_counterparty_change(self):
        other = self.env["res.partner"].create({
            "name": "Other eMSP", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "OTH", "ocpi_is_emsp": True,
        })
        with freeze_time("2026-03-20 10:00:00"):
            theirs = self._session("2026-03-12T10:00:00", issuer=("FR", "OTH"))
        self.assertEqual(theirs.state, "unmatched")
        self.contract.partner_id = other
        for cdr in self.cdrs:
            self.assertDetached(cdr, "no active contract with eMSP FR*TEM")
        # the unmatched CDRs of the new counterparty are matched, as before
        self.assertEqual(theirs.contract_id, self.contract)
        self.assertEqual(theirs.state, "priced")
        self.assertEqual(self.contract.cdr_ids, theirs)

    def test_role_change(self):
        self.contract.action_reset_to_draft()
        self.contract.write({"role": "emsp", "tax_ids": [(5, 0, 0)]})
        self.assertFalse(self.cdrs.contract_id)
        self.assertEqual(set(self.cdrs.mapped("state")), {"unmatched"})

    def test_time_zone_change(self):
        self.contract.date_end = "2026-03-31"
        self.assertFalse(self.april_1.contract_id)
        # in UTC the session ended on March 31st: it fits again (unmatched CDRs follow a new
        # time zone as they follow new dates)
        self.contract.tz = "UTC"
        self.assertEqual(self.april_1.contract_id, self.contract)
        self.assertAlmostEqual(self.april_1.amount_untaxed, 4.0)
        # and back: it leaves again
        self.contract.tz = "Europe/Paris"
        self.assertFalse(self.april_1.contract_id)
        self.assertEqual(self.march_11.contract_id, self.contract)

    def test_close_and_draft_keep_the_cdrs(self):
        before = self.snapshot(self.cdrs)
        self.contract.action_close()
        self.assertEqual(self.snapshot(self.cdrs), before)
        self.contract.action_reset_to_draft()
        self.assertEqual(self.snapshot(self.cdrs), before)
        self.contract.action_activate()
        self.assertEqual(self.snapshot(self.cdrs), before)
        self.assertEqual(self.contract.cdr_count, 4)

    def test_closed_contract_still_follows_its_dates(self):
        self.contract.action_close()
        self.contract.date_end = "2026-03-31"
        self.assertEqual((self.march_10 | self.march_11).contract_id, self.contract)
        self.assertFalse((self.april_1 | self.april_5).contract_id)
        # a closed contract matches no new CDR
        self.assertIn("no active contract", self.april_5.unmatched_reason)

    def test_locked_cdrs_outside_refuse_the_change(self):
        self._lock_march()
        before = self.snapshot(self.cdrs)
        with self.assertRaises(UserError) as caught:
            self.contract.write({"date_end": "2026-03-05"})
        self.assertEqual(
            str(caught.exception),
            "Contract %s: 2 locked CDRs (first: %s, ended 2026-03-10) no longer fit the new "
            "validity dates. Locked CDRs cannot change contract; close this contract and "
            "create a new one instead." % (self.contract.name, self.march_10.ocpi_id))
        self.env.invalidate_all()
        self.assertFalse(self.contract.date_end)
        self.assertEqual(self.snapshot(self.cdrs), before)
        # the same refusal in the other direction, for one locked CDR
        with self.assertRaises(UserError) as caught:
            self.contract.date_start = "2026-03-11"
        self.assertEqual(
            str(caught.exception),
            "Contract %s: the locked CDR %s (ended 2026-03-10) no longer fits the new validity "
            "dates. Locked CDRs cannot change contract; close this contract and create a new "
            "one instead." % (self.contract.name, self.march_10.ocpi_id))
        self.env.invalidate_all()
        self.assertEqual(str(self.contract.date_start), "2026-01-01")
        self.assertEqual(self.snapshot(self.cdrs), before)
        # a change that leaves the locked CDRs inside still moves the others
        self.contract.date_end = "2026-03-31"
        self.assertFalse(self.april_5.contract_id)
        self.assertEqual((self.march_10 | self.march_11).contract_id, self.contract)

    def test_locked_cdrs_refuse_a_currency_change(self):
        self._lock_march()
        self.usd.active = True
        with self.assertRaises(UserError) as caught:
            self.contract.currency_id = self.usd
        self.assertIn("2 locked CDRs (first: %s, ended 2026-03-10) no longer fit the new "
                      "currency." % self.march_10.ocpi_id, str(caught.exception))
        self.env.invalidate_all()
        self.assertEqual(self.contract.currency_id, self.eur)
        self.assertEqual(self.cdrs.contract_id, self.contract)

    def test_disputed_cdr_refuses_the_change(self):
        with freeze_time("2026-04-02 10:00:00"):
            self.march_10.period_id._open_window()
        self.Dispute._raise(self.march_11, "wrong_energy", "Too much energy")
        before = self.snapshot(self.cdrs)
        # the undisputed CDR of March 10th could move, not the disputed one
        with self.assertRaises(UserError) as caught:
            self.contract.date_start = "2026-03-12"
        self.assertEqual(
            str(caught.exception),
            "Contract %s: CDR %s (ended 2026-03-11), excluded from billing or disputed, no "
            "longer fits the new validity dates. Such a CDR cannot change contract; close this "
            "contract and create a new one instead." % (self.contract.name,
                                                        self.march_11.ocpi_id))
        self.env.invalidate_all()
        self.assertEqual(self.snapshot(self.cdrs), before)

    def test_ingestion_memo_follows_the_new_rule(self):
        def ingest(cdr_id):
            data = make_ocpi_cdr(cdr_id, datetime(2026, 4, 20, 8, 0), [(0, {"ENERGY": 5.0})],
                                 end=datetime(2026, 4, 20, 9, 0))
            [result] = self.Cdr.ingest_ocpi_batch([data])
            self.assertFalse(result["error"])
            return result["record"]

        self.assertEqual(ingest("MEMO-1").contract_id, self.contract)
        self.contract.date_end = "2026-03-31"
        # same sender, issuer, currency and end: the memo of the first answer is gone
        late = ingest("MEMO-2")
        self.assertFalse(late.contract_id)
        self.assertIn("outside contract %s" % self.contract.name, late.unmatched_reason)
