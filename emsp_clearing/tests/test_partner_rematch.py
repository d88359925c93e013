"""A change of a partner's OCPI identity re-matches the CDRs of the contracts whose rule it
changes (the counterparty's, or ours for every contract of the company): those that no longer
fit leave, the unmatched ones of the new identity are matched; locked, excluded or disputed
CDRs never move: the change is refused before anything is written."""

from datetime import datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import make_ocpi_cdr
from .period_common import RematchCase


@tagged("post_install", "-at_install")
class TestPartnerRematch(RematchCase):
    """``cls.contract``: with ``cls.emsp`` (FR*TEM, a contact ``cls.billing_contact`` sharing
    the identity), our company FR*TST, EUR, from 2026-01-01, Europe/Paris, 0.30/kWh + 1.00 per
    session, 20 % VAT.

    Our side is changed on a second company of ours, FR*TSB (``cls.own``), with the same
    contract without VAT (``cls.contract_b``): the main company may hold demo contracts, whose
    locked CDRs refuse any change of its identity."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with freeze_time("2026-03-20 10:00:00"):
            # unmatched: no contract with FR*NEW; sent by FR*OWN, which is not us
            cls.token_new = cls._session("2026-03-12T10:00:00", issuer=("FR", "NEW"))
            cls.sent_own = cls._session("2026-03-13T10:00:00", sender=("FR", "OWN"))
        cls.cdrs = cls.march_10 | cls.march_11 | cls.april_5
        cls.unmatched = cls.token_new | cls.sent_own

        cls.company_b = cls.env["res.company"].create({
            "name": "Clearing Company B", "currency_id": cls.eur.id})
        cls.own = cls.company_b.partner_id
        cls.own.write({"ocpi_country_code": "FR", "ocpi_party_id": "TSB", "ocpi_is_cpo": True})
        cls.contract_b = cls._contract(
            company_id=cls.company_b.id, tax_ids=[],
            lines=[{"dimension": "ENERGY", "price": 0.30}, {"dimension": "FLAT", "price": 1.0}])
        with freeze_time("2026-03-20 10:00:00"):
            cls.b_march_10 = cls._session_b("2026-03-10T11:00:00")
            cls.b_april_5 = cls._session_b("2026-04-05T11:00:00")
            # unmatched: sent by FR*OWN, which is not us
            cls.b_sent_own = cls._session_b("2026-03-13T11:00:00", sender=("FR", "OWN"))
        cls.b_cdrs = cls.b_march_10 | cls.b_april_5

    @classmethod
    def _session_b(cls, end, sender=("FR", "TSB"), issuer=("FR", "TEM")):
        """A session of 10 kWh ingested by ``cls.company_b``."""
        cls._seq += 1
        end = datetime.fromisoformat(end)
        data = make_ocpi_cdr("B-%05d" % cls._seq, end - timedelta(hours=1),
                             [(0, {"ENERGY": 10.0, "TIME": 1.0})], end=end, sender=sender,
                             issuer=issuer)
        return cls.env["clearing.cdr"].ingest_ocpi(data, company=cls.company_b)

    def assertPriced(self, cdr, contract, amount_untaxed, vat=0.2):
        self.assertEqual(cdr.contract_id, contract)
        self.assertEqual(cdr.partner_id, contract.partner_id)
        self.assertEqual(cdr.match_state, "matched")
        self.assertEqual(cdr.state, "priced")
        self.assertFalse(cdr.unmatched_reason)
        self.assertEqual(cdr.period_id.contract_id, contract)
        self.assertAlmostEqual(cdr.amount_untaxed, amount_untaxed)
        self.assertAlmostEqual(cdr.amount_total, amount_untaxed * (1 + vat))
        self.assertTrue(cdr.priced_date)

    def test_set_up(self):
        self.assertEqual(self.cdrs.contract_id, self.contract)
        self.assertEqual(set(self.cdrs.mapped("state")), {"priced"})
        self.assertEqual(self.token_new.unmatched_reason, "no active contract with eMSP FR*NEW")
        self.assertEqual(self.sent_own.unmatched_reason, "CDR sent by FR*OWN for a token of "
                         "FR*TEM: neither is our identity FR*TST")
        self.assertEqual(self.billing_contact.ocpi_identity, "FR*TEM")
        self.assertEqual(self.b_cdrs.contract_id, self.contract_b)
        self.assertEqual(self.b_sent_own.unmatched_reason, "CDR sent by FR*OWN for a token of "
                         "FR*TEM: neither is our identity FR*TSB")

    def _ingest_batch(self, cdr_id, issuer):
        """One session ingested through the batch path (and its memo), 10 kWh, 1 h."""
        data = make_ocpi_cdr(cdr_id, datetime(2026, 3, 14, 9, 0),
                             [(0, {"ENERGY": 10.0, "TIME": 1.0})],
                             end=datetime(2026, 3, 14, 10, 0), issuer=issuer)
        with freeze_time("2026-03-20 10:00:00"):
            [result] = self.Cdr.ingest_ocpi_batch([data])
        self.assertFalse(result["error"])
        return result["record"]

    def test_counterparty_identity_change(self):
        self.assertFalse(self._ingest_batch("MEMO-1", ("FR", "NEW")).contract_id)
        self.emsp.write({"ocpi_party_id": " new "})
        self.assertEqual(self.emsp.ocpi_identity, "FR*NEW")
        self.assertEqual(self.billing_contact.ocpi_identity, "FR*NEW")  # shared
        for cdr in self.cdrs:
            self.assertDetached(cdr, "no active contract with eMSP FR*TEM")
            self.assertFalse(cdr.partner_id)  # nobody is FR*TEM any more
        # its contract of the other company too
        for cdr in self.b_cdrs:
            self.assertDetached(cdr, "no active contract with eMSP FR*TEM")
        # the unmatched CDRs of the new identity are matched and priced: 10 kWh x 0.30 + 1.00
        memo_1 = self.Cdr.search([("ocpi_id", "=", "MEMO-1")])
        self.assertPriced(self.token_new, self.contract, 4.0)
        self.assertPriced(memo_1, self.contract, 4.0)
        self.assertEqual(self.contract.cdr_ids, self.token_new | memo_1)
        self.assertEqual(self.sent_own.state, "unmatched")
        # the ingestion memo follows the new identity too
        self.assertPriced(self._ingest_batch("MEMO-2", ("FR", "NEW")), self.contract, 4.0)
        # and back: the same CDRs move again
        self.emsp.ocpi_party_id = "TEM"
        self.assertDetached(self.token_new, "no active contract with eMSP FR*NEW")
        self.assertPriced(self.april_5, self.contract, 4.0)
        self.assertEqual(self.contract.cdr_ids, self.cdrs)

    def test_closed_contract_follows_the_identity(self):
        self.contract.action_close()
        self.emsp.write({"ocpi_country_code": "BE", "ocpi_party_id": "TEM"})
        for cdr in self.cdrs:
            self.assertDetached(cdr, "no active contract with eMSP FR*TEM")
        # a closed contract matches no new CDR
        self.assertFalse(self.contract.cdr_ids)

    def test_identity_of_a_contract_party_cannot_be_removed(self):
        """A contract's counterparty and our company keep an identity: matching needs it, and
        the OCPI tariff of the grid names the CPO. It can change, not go."""
        before = self.snapshot(self.cdrs | self.unmatched | self.b_cdrs)
        with self.assertRaises(UserError) as caught:
            self.emsp.write({"ocpi_country_code": False, "ocpi_party_id": False})
        self.assertEqual(
            str(caught.exception),
            "The OCPI identity FR*TEM of %s cannot be removed: the clearing contracts %s match "
            "and price CDRs with it. Change it instead." % (
                self.emsp.display_name,
                ", ".join(sorted((self.contract | self.contract_b).mapped("name")))))
        with self.assertRaises(UserError) as caught:
            self.own.write({"ocpi_party_id": False, "ocpi_country_code": False})
        self.assertIn("The OCPI identity FR*TSB of %s cannot be removed: the clearing contracts "
                      "%s match" % (self.own.display_name, self.contract_b.name),
                      str(caught.exception))
        self.env.invalidate_all()
        self.assertEqual((self.emsp.ocpi_identity, self.billing_contact.ocpi_identity,
                          self.own.ocpi_identity), ("FR*TEM", "FR*TEM", "FR*TSB"))
        self.assertEqual(self.snapshot(self.cdrs | self.unmatched | self.b_cdrs), before)
        # a partner without contracts may lose it
        stranger = self.env["res.partner"].create({
            "name": "Stranger", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "STR"})
        stranger.write({"ocpi_country_code": False, "ocpi_party_id": False})
        self.assertFalse(stranger.ocpi_identity)

    def test_detached_cdrs_go_to_the_contract_that_fits(self):
        other = self.env["res.partner"].create({
            "name": "Other eMSP", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "OTH", "ocpi_is_emsp": True,
        })
        successor = self._contract(partner=other, lines=[{"dimension": "ENERGY", "price": 0.50}])
        # FR*TEM leaves the eMSP for the other one
        self.emsp.ocpi_party_id = "NEW"
        other.ocpi_party_id = "TEM"
        # priced with the successor's grid: 10 kWh x 0.50
        self.assertPriced(self.april_5, successor, 5.0)
        self.assertEqual(self.april_5.applied_tariff["id"], successor.name)
        self.assertEqual(successor.cdr_ids, self.cdrs)
        self.assertEqual(self.contract.cdr_ids, self.token_new)

    def test_our_identity_change(self):
        before = self.snapshot(self.cdrs | self.unmatched)
        self.own.write({"ocpi_party_id": "own"})
        self.assertEqual(self.own.ocpi_identity, "FR*OWN")
        for cdr in self.b_cdrs:
            self.assertDetached(cdr, "CDR sent by FR*TSB for a token of FR*TEM: neither is our "
                                "identity FR*OWN")
            self.assertFalse(cdr.partner_id)  # sent by FR*TSB, which is nobody now
        # sent by our new identity: matched and priced, 10 kWh x 0.30 + 1.00
        self.assertPriced(self.b_sent_own, self.contract_b, 4.0, vat=0)
        self.assertEqual(self.contract_b.cdr_ids, self.b_sent_own)
        # the other company's CDRs stay where they are, FR*OWN is not that company; its
        # unmatched CDR sent by FR*OWN names the partner that carries FR*OWN now, as a CDR
        # received now would
        after = self.snapshot(self.cdrs | self.unmatched)
        self.assertEqual(self.sent_own.partner_id, self.own)
        self.assertEqual(self.sent_own.match_state, "unmatched")
        self.assertFalse(before[self.sent_own.id][1])
        before[self.sent_own.id] = (before[self.sent_own.id][0], self.own,
                                    *before[self.sent_own.id][2:])
        self.assertEqual(after, before)

    def test_our_identity_change_moves_the_cdrs_of_every_contract(self):
        other = self.env["res.partner"].create({
            "name": "Other eMSP", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "OTH", "ocpi_is_emsp": True,
        })
        other_contract = self._contract(partner=other, company_id=self.company_b.id,
                                        tax_ids=[])
        with freeze_time("2026-03-20 10:00:00"):
            theirs = self._session_b("2026-03-15T10:00:00", issuer=("FR", "OTH"))
            theirs_own = self._session_b("2026-03-16T10:00:00", issuer=("FR", "OTH"),
                                         sender=("FR", "OWN"))
        self.assertEqual(theirs.contract_id, other_contract)
        self.own.write({"ocpi_country_code": "FR", "ocpi_party_id": "OWN"})
        self.assertEqual(self.contract_b.cdr_ids, self.b_sent_own)
        self.assertDetached(theirs, "CDR sent by FR*TSB for a token of FR*OTH: neither is our "
                            "identity FR*OWN")
        # 10 kWh x 0.30
        self.assertPriced(theirs_own, other_contract, 3.0, vat=0)
        self.assertEqual(other_contract.cdr_ids, theirs_own)

    def test_locked_cdrs_refuse_the_counterparty_change(self):
        self._lock_march(self.march_10)  # not company B's (the first contract checked)
        before = self.snapshot(self.cdrs | self.unmatched)
        with self.assertRaises(UserError) as caught:
            self.emsp.write({"ocpi_party_id": "NEW"})
        self.assertEqual(
            str(caught.exception),
            "Test eMSP cannot change its OCPI identity from FR*TEM to FR*NEW: 2 locked CDRs "
            "(first: %s, ended 2026-03-10) would no longer fit their contract %s. Locked CDRs "
            "cannot change contract. Keep this identity and give the new one to a new partner "
            "with its own contracts." % (self.march_10.ocpi_id, self.contract.name))
        self.env.invalidate_all()
        self.assertEqual(self.emsp.ocpi_identity, "FR*TEM")
        self.assertEqual(self.billing_contact.ocpi_identity, "FR*TEM")
        self.assertEqual(self.snapshot(self.cdrs | self.unmatched), before)

    def test_locked_cdrs_refuse_our_identity_change(self):
        self._lock_march()
        self.assertTrue(self.b_march_10.locked)
        before = self.snapshot(self.b_cdrs | self.b_sent_own)
        with self.assertRaises(UserError) as caught:
            self.own.write({"ocpi_country_code": "BE"})
        self.assertEqual(
            str(caught.exception),
            "Clearing Company B cannot change its OCPI identity from FR*TSB to BE*TSB: the "
            "locked CDR %s (ended 2026-03-10) would no longer fit its contract %s. Locked CDRs "
            "cannot change contract. Keep this identity." % (
                self.b_march_10.ocpi_id, self.contract_b.name))
        self.env.invalidate_all()
        self.assertEqual(self.own.ocpi_identity, "FR*TSB")
        self.assertEqual(self.snapshot(self.b_cdrs | self.b_sent_own), before)

    def test_disputed_cdr_refuses_the_change(self):
        with freeze_time("2026-04-02 10:00:00"):
            self.march_10.period_id._open_window()
        self.Dispute._raise(self.march_11, "wrong_energy", "Too much energy")
        before = self.snapshot(self.cdrs | self.unmatched)
        with self.assertRaises(UserError) as caught:
            self.emsp.write({"ocpi_party_id": "NEW"})
        self.assertEqual(
            str(caught.exception),
            "Test eMSP cannot change its OCPI identity from FR*TEM to FR*NEW: CDR %s "
            "(ended 2026-03-11), excluded from billing or disputed, would no longer fit its "
            "contract %s. Such a CDR cannot change contract. Keep this identity and give the "
            "new one to a new partner with its own contracts." % (
                self.march_11.ocpi_id, self.contract.name))
        self.env.invalidate_all()
        self.assertEqual(self.emsp.ocpi_identity, "FR*TEM")
        self.assertEqual(self.snapshot(self.cdrs | self.unmatched), before)

    def test_contact_follows_its_commercial_entity(self):
        """A partner given a parent takes the identity of its commercial entity (a nested
        write): the CDRs of its contracts follow. The identity a commercial entity passes on to
        its contacts is checked for their contracts too, before anything is written."""
        holding = self.env["res.partner"].create({
            "name": "Holding", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "HLD",
        })
        solo = self.env["res.partner"].create({
            "name": "Solo", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "SOL",
        })
        solo_contract = self._contract(partner=solo)
        with freeze_time("2026-03-20 10:00:00"):
            solo_cdr = self._session("2026-03-16T10:00:00", issuer=("FR", "SOL"))
            holding_cdr = self._session("2026-03-17T10:00:00", issuer=("FR", "HLD"))
            self.assertEqual(solo_cdr.contract_id, solo_contract)
            self.assertEqual(holding_cdr.partner_id, holding)
            self.assertFalse(holding_cdr.contract_id)
            solo.write({"is_company": False, "parent_id": holding.id})
        self.assertEqual(solo.ocpi_identity, "FR*HLD")
        self.assertDetached(solo_cdr, "no active contract with eMSP FR*SOL")
        # 10 kWh x 0.30
        self.assertPriced(holding_cdr, solo_contract, 3.0)
        self._lock_march()
        self.assertTrue(holding_cdr.locked)
        with self.assertRaises(UserError) as caught:
            holding.ocpi_party_id = "HLX"
        self.assertEqual(
            str(caught.exception),
            "Holding, Solo cannot change its OCPI identity from FR*HLD to FR*HLX: the locked "
            "CDR %s (ended 2026-03-17) would no longer fit its contract %s. Locked CDRs cannot "
            "change contract. Keep this identity and give the new one to a new partner with its "
            "own contracts." % (holding_cdr.ocpi_id, solo_contract.name))
        self.env.invalidate_all()
        self.assertEqual((holding | solo).mapped("ocpi_identity"), ["FR*HLD", "FR*HLD"])
        self.assertEqual(holding_cdr.contract_id, solo_contract)

    def test_contact_manager_without_clearing_rights(self):
        """Whoever may edit the partner changes the identity: the CDRs follow (checked and
        matched again as superuser); the context key of fixtures works for superuser only."""
        user = self.env["res.users"].create({
            "name": "Contact Manager", "login": "contact_mgr_p4",
            "groups_id": [Command.set([self.env.ref("base.group_user").id,
                                       self.env.ref("base.group_partner_manager").id])],
        })
        self.emsp.with_user(user).with_context(clearing_identity_keep_cdrs=True).write(
            {"ocpi_party_id": "NEW"})
        for cdr in self.cdrs:
            self.assertDetached(cdr, "no active contract with eMSP FR*TEM")
        self.assertPriced(self.token_new, self.contract, 4.0)
        # a fixture or a data fix (superuser): every CDR stays where it is
        before = self.snapshot(self.cdrs | self.unmatched)
        self.emsp.with_context(clearing_identity_keep_cdrs=True).ocpi_party_id = "TEM"
        self.assertEqual(self.snapshot(self.cdrs | self.unmatched), before)

    def test_unmatched_cdrs_follow_the_identity(self):
        """Unmatched CDRs name the partner that carries their identity, before and after a
        change of it, contracts or not."""
        stranger = self.env["res.partner"].create({
            "name": "Stranger", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "STR"})
        with freeze_time("2026-03-20 10:00:00"):
            cdr = self._session("2026-03-14T10:00:00", issuer=("FR", "STR"))
        self.assertEqual(cdr.match_state, "unmatched")
        self.assertEqual(cdr.partner_id, stranger)
        self.assertFalse(self.token_new.partner_id)
        stranger.write({"ocpi_party_id": "NEW"})
        self.assertFalse(cdr.partner_id)
        self.assertEqual(self.token_new.partner_id, stranger)
        self.assertEqual((cdr | self.token_new).mapped("match_state"), ["unmatched"] * 2)
        self.assertEqual(self.token_new.unmatched_reason, "no active contract with eMSP FR*NEW")

    def test_identity_neutral_writes_touch_nothing(self):
        before = self.snapshot(self.cdrs | self.unmatched | self.b_cdrs | self.b_sent_own)
        Contract = self.registry["clearing.contract"]
        with patch.object(Contract, "_identity_change_prepare",
                          side_effect=AssertionError("no identity changes")), \
                patch.object(self.registry["clearing.cdr"], "_match_and_price",
                             side_effect=AssertionError("nothing to match")):
            self.emsp.write({"phone": "+33 1 23 45 67 89", "ocpi_is_cpo": True})
            self.billing_contact.write({"email": "desk@tem.example"})
            self.own.write({"phone": "+33 9 87 65 43 21"})
            self.company.partner_id.write({"phone": "+33 9 87 65 43 22", "ocpi_is_emsp": True})
            # the identities they have already (written the way a user may type them)
            self.emsp.write({"ocpi_country_code": "fr", "ocpi_party_id": " tem"})
            self.own.write({"ocpi_country_code": "FR", "ocpi_party_id": "TSB"})
        self.assertEqual(
            self.snapshot(self.cdrs | self.unmatched | self.b_cdrs | self.b_sent_own), before)
        self.assertEqual(self.contract.cdr_ids, self.cdrs)
