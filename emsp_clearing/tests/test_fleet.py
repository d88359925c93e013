"""Fleet terms: the sessions of a fleet's tokens are priced under the fleet's grid, the others
under the contract's; fleet changes re-price set-based; locked sessions never change."""

from datetime import datetime

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import ClearingCase, make_ocpi_cdr


@tagged("post_install", "-at_install")
class TestFleet(ClearingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._contract(lines=[{"dimension": "ENERGY", "price": 0.30}])
        cls.fleet = cls.env["clearing.fleet"].create({
            "name": "VIP",
            "contract_id": cls.contract.id,
            "token_uids": "VIP-1\nvip-2",
            "contract_id_patterns": "FR-TEM-C0099*",
            "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.20})],
        })

    def _ingest(self, cdr_id, uid="04A1B2C3D4E5F6", contract_ref="FR-TEM-C00001234-X",
                day=10, kwh=10):
        data = make_ocpi_cdr(cdr_id, datetime(2026, 3, day, 10, 0), [(0, {"ENERGY": kwh})])
        data["cdr_token"].update(uid=uid, contract_id=contract_ref)
        return self.env["clearing.cdr"].ingest_ocpi(data)

    def test_fleet_token_priced_under_fleet_grid(self):
        by_uid = self._ingest("F-UID", uid="vip-1")
        by_pattern = self._ingest("F-PAT", contract_ref="fr-tem-c00991-x")
        other = self._ingest("F-OTHER")
        self.assertEqual(by_uid.fleet_id, self.fleet)
        self.assertEqual(by_uid.amount_energy, 2.0)
        self.assertEqual(by_uid.applied_tariff["id"], "%s/VIP" % self.contract.name)
        self.assertEqual(by_pattern.fleet_id, self.fleet)
        self.assertEqual(by_pattern.amount_untaxed, 2.0)
        self.assertFalse(other.fleet_id)
        self.assertEqual(other.amount_untaxed, 3.0)
        self.assertEqual(other.applied_tariff["id"], self.contract.name)
        # the contract's own grid does not show the fleet's lines
        self.assertEqual(self.contract.price_line_ids.mapped("price"), [0.30])
        self.assertEqual(self.fleet.cdr_count, 2)
        # the portal row (and so the XLSX line) names the grid
        self.assertEqual(by_uid._portal_row()["tariff"], "%s/VIP" % self.contract.name)

    def test_validity_dates(self):
        self.fleet.date_start = "2026-03-15"
        before = self._ingest("F-EARLY", uid="VIP-1", day=10)
        after = self._ingest("F-LATE", uid="VIP-1", day=20)
        self.assertFalse(before.fleet_id)
        self.assertEqual(after.fleet_id, self.fleet)

    def test_fleet_changes_reprice(self):
        cdr = self._ingest("F-CHG", uid="VIP-1")
        other = self._ingest("F-KEEP")
        other_date = other.priced_date
        self.fleet.price_line_ids.price = 0.25
        self.assertEqual(cdr.amount_untaxed, 2.5)
        self.fleet.token_uids = "VIP-9"
        self.assertFalse(cdr.fleet_id)
        self.assertEqual(cdr.amount_untaxed, 3.0)
        self.fleet.token_uids = "VIP-1"
        self.assertEqual(cdr.fleet_id, self.fleet)
        # a new fleet takes its sessions at once; deleting it gives them back
        extra = self.env["clearing.fleet"].create({
            "name": "Staff", "contract_id": self.contract.id, "token_uids": "04A1B2C3D4E5F6",
            "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.10})]})
        self.assertEqual(other.fleet_id, extra)
        self.assertEqual(other.amount_untaxed, 1.0)
        extra.unlink()
        self.assertFalse(other.fleet_id)
        self.assertEqual(other.amount_untaxed, 3.0)
        self.assertTrue(other_date)

    def test_locked_sessions_never_change(self):
        cdr = self._ingest("F-LOCK", uid="VIP-1")
        self.env.flush_all()
        self.env.cr.execute("UPDATE clearing_cdr SET locked = TRUE, state = 'locked' "
                            "WHERE id = %s", (cdr.id,))
        cdr.invalidate_recordset()
        with self.assertRaisesRegex(UserError, "F-LOCK"):
            self.fleet.token_uids = "VIP-9"
        with self.assertRaisesRegex(UserError, "F-LOCK"):
            self.fleet.unlink()
        # a new price for the fleet: the locked session keeps what it was billed
        self.fleet.price_line_ids.price = 0.50
        self.assertEqual(cdr.amount_untaxed, 2.0)
        self.assertEqual(cdr.fleet_id, self.fleet)
        self.assertEqual(self.fleet.token_uids, "VIP-1\nvip-2")

    def test_fleet_needs_tokens(self):
        with self.assertRaisesRegex(Exception, "token UID or contract ID pattern"):
            self.env["clearing.fleet"].create({"name": "Empty", "contract_id": self.contract.id})

    def test_sql_rule_is_the_python_rule(self):
        """The set-based re-pricing finds the sessions with SQL (LIKE patterns, ``_`` and ``%``
        taken literally) as the pricing chooses them in Python (``_fits``)."""
        literal = self._ingest("F-LIT", contract_ref="FR-TEM_C1%")
        other = self._ingest("F-ANY", contract_ref="FR-TEMXC1Z")
        fleet = self.env["clearing.fleet"].create({
            "name": "Literal", "contract_id": self.contract.id, "sequence": 1,
            "contract_id_patterns": "fr-tem_c1%*",
            "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.10})]})
        self.assertEqual(literal.fleet_id, fleet)
        self.assertFalse(other.fleet_id)
        fresh = self._ingest("F-LIT2", contract_ref="FR-TEM_C1%-2")
        self.assertEqual(fresh.fleet_id, fleet)
        self.assertFalse(self._ingest("F-ANY2", contract_ref="FR-TEMXC1%").fleet_id)
