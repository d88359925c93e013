from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import ClearingCase


@tagged("post_install", "-at_install")
class TestPartnerIdentity(ClearingCase):
    def test_identity_is_upper_cased(self):
        partner = self.env["res.partner"].create(
            {"name": "Lower", "is_company": True, "ocpi_country_code": " be ",
             "ocpi_party_id": "x1z"}
        )
        self.assertEqual(partner.ocpi_country_code, "BE")
        self.assertEqual(partner.ocpi_party_id, "X1Z")
        self.assertEqual(partner.ocpi_identity, "BE*X1Z")

    def test_bad_country_code(self):
        with self.assertRaisesRegex(ValidationError, "must be two letters"):
            self.env["res.partner"].create(
                {"name": "Bad", "ocpi_country_code": "F1", "ocpi_party_id": "ABC"}
            )

    def test_bad_party_id(self):
        with self.assertRaisesRegex(ValidationError, "exactly three letters or digits"):
            self.env["res.partner"].create(
                {"name": "Bad", "ocpi_country_code": "FR", "ocpi_party_id": "A-C"}
            )

    def test_identity_needs_both_parts(self):
        with self.assertRaisesRegex(ValidationError, "needs both a country code"):
            self.env["res.partner"].create({"name": "Half", "ocpi_party_id": "ABC"})

    def test_identity_unique_among_commercial_partners(self):
        with self.assertRaisesRegex(ValidationError, "FR\\*TEM is already used by Test eMSP"):
            self.env["res.partner"].create(
                {"name": "Clone", "is_company": True, "ocpi_country_code": "FR",
                 "ocpi_party_id": "TEM"}
            )

    def test_contacts_inherit_identity(self):
        contact = self.env["res.partner"].create(
            {"name": "Billing Desk", "parent_id": self.emsp.id, "type": "invoice"}
        )
        self.assertEqual(contact.ocpi_identity, "FR*TEM")
        self.emsp.clearing_billing_contact_ids = contact
        self.assertEqual(self.emsp.clearing_billing_contact_ids, contact)

    def test_find_by_identity(self):
        found = self.env["res.partner"]._find_by_ocpi_identity("fr", "tem", self.company)
        self.assertEqual(found, self.emsp)
