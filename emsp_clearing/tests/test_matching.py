from odoo.tests import tagged

from .common import ClearingCase


@tagged("post_install", "-at_install")
class TestMatching(ClearingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # we are the CPO billing FR*TEM
        cls.cpo_contract = cls._contract(date_start="2026-04-01", date_end="2026-06-30")
        # we are the eMSP billed by DE*CPX
        cls.emsp_contract = cls._contract(partner=cls.cpo, role="emsp",
                                          date_start="2026-01-01")

    def _match(self, cdr):
        cdr._match()
        return cdr

    def test_role_cpo_matches_token_issuer(self):
        cdr = self._match(self._raw_cdr("C1", "2026-04-10 12:00:00"))
        self.assertEqual(cdr.match_state, "matched")
        self.assertEqual(cdr.contract_id, self.cpo_contract)
        self.assertEqual(cdr.partner_id, self.emsp)
        self.assertFalse(cdr.unmatched_reason)

    def test_role_emsp_matches_sender(self):
        cdr = self._match(
            self._raw_cdr("C2", "2026-02-10 12:00:00", sender=("DE", "CPX"),
                          issuer=("FR", "TST"))
        )
        self.assertEqual(cdr.contract_id, self.emsp_contract)
        self.assertEqual(cdr.partner_id, self.cpo)

    def test_unknown_emsp(self):
        cdr = self._match(self._raw_cdr("C3", "2026-04-10 12:00:00", issuer=("FR", "ABC")))
        self.assertEqual(cdr.match_state, "unmatched")
        self.assertFalse(cdr.contract_id)
        self.assertEqual(cdr.unmatched_reason, "no active contract with eMSP FR*ABC")

    def test_unknown_cpo(self):
        cdr = self._match(
            self._raw_cdr("C3b", "2026-04-10 12:00:00", sender=("NL", "XYZ"),
                          issuer=("FR", "TST"))
        )
        self.assertEqual(cdr.unmatched_reason, "no active contract with CPO NL*XYZ")

    def test_neither_party_is_us(self):
        cdr = self._match(
            self._raw_cdr("C4", "2026-04-10 12:00:00", sender=("DE", "CPX"),
                          issuer=("FR", "TEM"))
        )
        self.assertEqual(
            cdr.unmatched_reason,
            "CDR sent by DE*CPX for a token of FR*TEM: neither is our identity FR*TST",
        )
        # the counterparty is still resolved from the identity for follow-up
        self.assertEqual(cdr.partner_id, self.cpo)

    def test_currency_mismatch(self):
        cdr = self._match(self._raw_cdr("C5", "2026-04-10 12:00:00", currency=self.usd))
        self.assertEqual(
            cdr.unmatched_reason,
            "contract %s is in EUR, CDR in USD" % self.cpo_contract.name,
        )

    def test_outside_validity(self):
        cdr = self._match(self._raw_cdr("C6", "2026-03-02 10:00:00"))
        self.assertEqual(
            cdr.unmatched_reason,
            "CDR ended 2026-03-02, outside contract %s validity 2026-04-01..2026-06-30"
            % self.cpo_contract.name,
        )

    def test_validity_uses_contract_time_zone(self):
        # 22:30 UTC on March 31st is 00:30 on April 1st in Paris (UTC+2)
        cdr = self._match(self._raw_cdr("C7", "2026-03-31 22:30:00"))
        self.assertEqual(cdr.contract_id, self.cpo_contract)
        # 22:30 UTC on June 30th is already July 1st in Paris
        cdr = self._match(self._raw_cdr("C8", "2026-06-30 22:30:00"))
        self.assertEqual(cdr.match_state, "unmatched")
        self.assertIn("CDR ended 2026-07-01", cdr.unmatched_reason)

    def test_draft_and_closed_contracts_do_not_match(self):
        self.cpo_contract.action_close()
        cdr = self._match(self._raw_cdr("C9", "2026-04-10 12:00:00"))
        self.assertEqual(cdr.unmatched_reason, "no active contract with eMSP FR*TEM")

    def test_ambiguous(self):
        other = self._contract(date_start="2026-04-05")
        cdr = self._match(self._raw_cdr("C10", "2026-04-10 12:00:00"))
        self.assertEqual(cdr.match_state, "unmatched")
        names = sorted([self.cpo_contract.name, other.name])
        self.assertEqual(cdr.unmatched_reason, "ambiguous: contracts %s, %s" % tuple(names))
