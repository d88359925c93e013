"""Fleet terms shown: the invoice lines, the XLSX and the portal say which grid priced each
session; the XLSX also carries the taxes a 2.3.0 sender stated, one column per tax name."""

import io
from datetime import datetime, timedelta
from decimal import Decimal

import openpyxl
from freezegun import freeze_time

from odoo import Command
from odoo.tests import HttpCase, tagged

from .common import make_ocpi_cdr
from .period_common import PeriodCase

LOCK_DAY = "2026-04-08 06:00:00"


def money(value):
    return Decimal(str(value)).quantize(Decimal("0.01"))


@tagged("post_install", "-at_install")
class TestFleetDocuments(HttpCase, PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        bank = cls.env["res.partner.bank"].create({
            "acc_number": "FR7630004000031234567890143",
            "partner_id": cls.company.partner_id.id,
        })
        cls.contract.invoice_journal_id = cls.env["account.journal"].create({
            "name": "Clearing Sales", "code": "CLFD", "type": "sale",
            "company_id": cls.company.id, "bank_account_id": bank.id,
        })
        cls.fleet = cls.env["clearing.fleet"].create({
            "name": "Taxis VIP", "contract_id": cls.contract.id, "token_uids": "VIP-1",
            "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.20})],
        })
        cls.portal_user = cls.env["res.users"].create({
            "name": "Portal Fleet", "login": "portal_fleet", "password": "portal_fleet",
            "partner_id": cls.billing_contact.id,
            "groups_id": [Command.set(cls.env.ref("base.group_portal").ids)],
        })
        with freeze_time("2026-03-20 10:00:00"):
            cls.contract_cdrs = cls.Cdr
            for day, kwh in ((3, 10.0), (4, 12.5), (5, 7.777)):
                cls.contract_cdrs |= cls._fleet_session("FD-C%s" % day, day, kwh, "04A1B2C3")
            cls.fleet_cdr = cls._fleet_session("FD-F6", 6, 10.0, "VIP-1")
            # a 2.3.0 CDR of the fleet, stating two taxes (one of them twice)
            cls.stated = cls._fleet_session("FD-F7", 7, 5.5, "VIP-1", total_cost={
                "before_taxes": 1.10, "taxes": [
                    {"name": "VAT", "percentage": 20, "amount": 0.20},
                    {"name": "City tax", "amount": 0.05},
                    {"name": "VAT", "percentage": 20, "amount": 0.02}]})

    @classmethod
    def _fleet_session(cls, cdr_id, day, kwh, uid, **extra):
        start = datetime(2026, 3, day, 9, 0)
        data = make_ocpi_cdr(cdr_id, start, [(0, {"ENERGY": kwh, "TIME": 1})],
                             end=start + timedelta(hours=1), **extra)
        data["cdr_token"]["uid"] = uid
        return cls.Cdr.ingest_ocpi(data)

    def _invoice(self):
        with freeze_time(LOCK_DAY):
            self.Period._cron_lock_periods()
            self.Period._cron_invoice_periods()
        return self.fleet_cdr.period_id.invoice_id

    def _xlsx(self, content):
        rows = list(openpyxl.load_workbook(io.BytesIO(content), data_only=True)["Sessions"]
                    .iter_rows(values_only=True))
        header = next(i for i, row in enumerate(rows) if row[0] == "Date")
        return rows[header], rows[header + 1:-1], rows[-1]

    def test_sessions_name_their_grid(self):
        self.assertEqual(self.fleet_cdr.fleet_id, self.fleet)
        self.assertEqual(self.stated.ocpi_version, "2.3.0")
        self.assertEqual(self.fleet_cdr.price_grid, "Fleet grid Taxis VIP")
        self.assertEqual(set(self.contract_cdrs.mapped("price_grid")), {"Contract grid"})

    def test_batch_ingestion_names_the_grid_too(self):
        start = datetime(2026, 3, 8, 9, 0)
        items = []
        for cdr_id, uid in (("FD-B1", "vip-1"), ("FD-B2", "04A1B2C3")):
            data = make_ocpi_cdr(cdr_id, start, [(0, {"ENERGY": 4.0})],
                                 end=start + timedelta(hours=1))
            data["cdr_token"]["uid"] = uid
            items.append(data)
        with freeze_time("2026-03-20 10:00:00"):
            results = self.Cdr.ingest_ocpi_batch(items)
        fleet_cdr, other = (result["record"] for result in results)
        self.assertEqual(fleet_cdr.fleet_id, self.fleet)
        self.assertEqual(fleet_cdr.price_grid, "Fleet grid Taxis VIP")
        self.assertEqual(fleet_cdr.amount_untaxed, 0.80)
        self.assertEqual(other.price_grid, "Contract grid")

    def test_invoice_lines_per_grid_exact(self):
        move = self._invoice()
        self.assertEqual(move.state, "posted")
        sessions = self.contract_cdrs | self.fleet_cdr | self.stated
        self.assertEqual(money(move.amount_untaxed), money(sum(sessions.mapped("amount_untaxed"))))
        lines = {line.name: line for line in move.invoice_line_ids}
        fleet_lines = [line for name, line in lines.items()
                       if name.startswith("Fleet grid Taxis VIP: ")]
        contract_lines = [line for name, line in lines.items()
                          if name.startswith("Contract grid: ")]
        self.assertEqual(len(fleet_lines) + len(contract_lines), len(lines), list(lines))
        # the fleet's sessions on the fleet's line at its price: 10 + 5.5 kWh x 0.20
        [fleet_energy] = fleet_lines
        self.assertEqual(fleet_energy.price_unit, 0.20)
        self.assertEqual(money(fleet_energy.price_subtotal), Decimal("3.10"))
        self.assertIn("2 sessions", fleet_energy.name)
        # the contract's sessions: energy at 0.30 (30.277 kWh, each session rounded) and fees
        self.assertEqual(
            money(sum(line.price_subtotal for line in contract_lines)),
            money(sum(self.contract_cdrs.mapped("amount_untaxed"))))
        self.assertEqual(sorted(line.price_unit for line in contract_lines), [0.30, 1.0])
        # contract lines first, then the fleet's
        names = move.invoice_line_ids.sorted("sequence").mapped("name")
        self.assertTrue(names[-1].startswith("Fleet grid"), names)

    def test_invoice_without_fleet_sessions_keeps_plain_labels(self):
        with freeze_time("2026-03-21 10:00:00"):  # the fleet's sessions go back to the contract grid
            self.fleet.token_uids = "VIP-NOBODY"
        self.assertFalse(self.fleet_cdr.fleet_id)
        move = self._invoice()
        self.assertTrue(move.invoice_line_ids)
        self.assertFalse([n for n in move.invoice_line_ids.mapped("name") if "grid" in n])

    def test_xlsx_grid_and_stated_taxes(self):
        move = self._invoice()
        _name, content = move.clearing_period_id.get_breakdown_xlsx(move)
        header, data, total = self._xlsx(content)
        col = {name: header.index(name) for name in header if name}
        by_cdr = {row[col["CDR"]]: row for row in data}
        self.assertEqual(len(data), 5)
        self.assertEqual(by_cdr["FD-F6"][col["Price grid"]], "Fleet grid Taxis VIP")
        self.assertEqual(by_cdr["FD-F7"][col["Price grid"]], "Fleet grid Taxis VIP")
        self.assertEqual(by_cdr["FD-C3"][col["Price grid"]], "Contract grid")
        # one column per tax name stated in the file, after the sheet's own columns
        self.assertEqual(header[-2:], ("Stated tax: City tax", "Stated tax: VAT"))
        self.assertEqual(money(by_cdr["FD-F7"][col["Stated tax: VAT"]]), Decimal("0.22"))
        self.assertEqual(money(by_cdr["FD-F7"][col["Stated tax: City tax"]]), Decimal("0.05"))
        self.assertEqual(money(by_cdr["FD-C3"][col["Stated tax: VAT"]]), Decimal("0"))
        self.assertEqual(money(total[col["Stated tax: VAT"]]), Decimal("0.22"))
        # still the invoice's totals
        self.assertEqual(money(total[col["Excl. VAT"]]), money(move.amount_untaxed))
        self.assertEqual(money(total[col["Incl. VAT"]]), money(move.amount_total))
        # the period's own breakdown (no move) says the same
        _name, content = move.clearing_period_id.get_breakdown_xlsx()
        header, data, _total = self._xlsx(content)
        self.assertEqual(header[-2:], ("Stated tax: City tax", "Stated tax: VAT"))
        self.assertEqual(len(data), 5)

    def test_portal_list_and_session_say_the_grid(self):
        period = self.fleet_cdr.period_id
        period._open_window()
        self.authenticate("portal_fleet", "portal_fleet")
        page = self.url_open("/my/clearing/periods/%s" % period.id)
        self.assertEqual(page.status_code, 200)
        self.assertIn("Price grid", page.text)
        self.assertEqual(page.text.count("Fleet grid Taxis VIP"), 2)
        self.assertEqual(page.text.count("Contract grid"), 3)
        session = self.url_open("/my/clearing/cdr/%s" % self.fleet_cdr.id)
        self.assertIn("Fleet grid Taxis VIP", session.text)
