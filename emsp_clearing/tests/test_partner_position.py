"""Net position of a partner on both sides: what they owe us minus what we owe them."""

from odoo import Command
from odoo.tests import tagged

from .common import ClearingCase


@tagged("post_install", "-at_install")
class TestPartnerPosition(ClearingCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # one company, both roles: it roams our network (we bill it as a CPO) and runs its own
        # charge points our drivers use (it bills us)
        cls.both = cls.env["res.partner"].create({
            "name": "Both Hats SAS", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "BTH", "ocpi_is_emsp": True, "ocpi_is_cpo": True,
        })
        cls.accounting = cls.env["res.partner"].create({
            "name": "Both Hats accounting", "type": "invoice", "parent_id": cls.both.id})
        cls._contract(partner=cls.both, role="cpo")
        cls._contract(partner=cls.both, role="emsp")
        cls.stranger = cls.env["res.partner"].create({"name": "Not a clearing partner"})
        cls.Position = cls.env["clearing.partner.position"]

    def _move(self, move_type, partner, amount, currency=None):
        move = self.env["account.move"].create({
            "move_type": move_type, "partner_id": partner.id, "invoice_date": "2026-03-31",
            "currency_id": (currency or self.company.currency_id).id,
            "invoice_line_ids": [Command.create({
                "name": "Charging sessions", "quantity": 1, "price_unit": amount,
                "tax_ids": [Command.clear()]})],
        })
        move.action_post()
        return move

    def _position(self, partner, currency=None):
        return self.Position.search([("partner_id", "=", partner.id),
                                     ("company_id", "=", self.company.id),
                                     ("currency_id", "=", (currency or self.company.currency_id).id)])

    def test_net_position_on_both_sides(self):
        currency = self.company.currency_id
        self._move("out_invoice", self.both, 1000.0)
        self._move("out_invoice", self.accounting, 250.5)   # the invoice address counts too
        self._move("out_refund", self.both, 50.25)
        bill = self._move("in_invoice", self.both, 400.0)
        self._move("in_invoice", self.stranger, 99.0)
        self.env.flush_all()
        position = self._position(self.both)
        self.assertEqual(len(position), 1)
        self.assertAlmostEqual(position.receivable_open, 1200.25)
        self.assertAlmostEqual(position.payable_open, 400.0)
        self.assertAlmostEqual(position.net, 800.25)
        self.assertTrue(position.both_sides)
        self.assertEqual((position.receivable_count, position.payable_count), (3, 1))
        self.assertFalse(self.Position.search([("partner_id", "=", self.stranger.id)]))
        # we pay their bill: only the receivable is left, the partner owes us more net
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=bill.ids).create({})._create_payments()
        self.env.flush_all()
        self.env.invalidate_all()
        position = self._position(self.both)
        self.assertAlmostEqual(position.payable_open, 0.0)
        self.assertAlmostEqual(position.net, 1200.25)
        self.assertFalse(position.both_sides)
        # the smart button of the partner form, from the contact too
        self.assertAlmostEqual(self.accounting.clearing_position_net, 1200.25)
        self.assertEqual(self.both.clearing_position_currency_id, currency)
        action = self.both.action_view_clearing_position()
        self.assertEqual(self.Position.search(action["domain"]), position)
        items = self.env["account.move.line"].search(position.action_open_items()["domain"])
        self.assertEqual(len(items), 3)
        self.assertAlmostEqual(sum(items.mapped("amount_residual")), 1200.25)

    def test_each_currency_its_own_line(self):
        other = self.usd if self.company.currency_id == self.eur else self.eur
        other.active = True
        self._move("out_invoice", self.both, 100.0)
        self._move("in_invoice", self.both, 30.0, currency=other)
        self.env.flush_all()
        own_line = self._position(self.both)
        other_line = self._position(self.both, other)
        self.assertAlmostEqual(own_line.net, 100.0)
        self.assertAlmostEqual(other_line.net, -30.0)  # in its own currency
        self.assertAlmostEqual(other_line.payable_open, 30.0)
        self.assertFalse(own_line.both_sides or other_line.both_sides)
        self.assertEqual(self.both.clearing_position_count, 2)
