"""eMSP hat, live: every session of an eMSP contract with a resale grid is also priced with
that grid by the engine (``clearing.cdr.resale_amount``, what our drivers pay), on every
pricing path; the margin (resale minus what the CPO bills us) per session, period, month, on
the overview card and in the reporting.

The figures, by hand. The CPO's grid (what it bills us): 0.80 per session + 0.40 per kWh.
Our resale grid (what our drivers pay): 1.00 per session + 0.55 per kWh. Each component is
rounded to the cent, the untaxed amount is their sum (``_priced_amounts``):

====  ===========  ==========  ======================  ========================  ======
CDR   end (UTC)    kWh         billed by the CPO       resale                    margin
====  ===========  ==========  ======================  ========================  ======
A     2026-01-05   12.345      0.80 + 4.938 -> 4.94    1.00 + 6.78975 -> 6.79    2.05
                               = 5.74                  = 7.79
B     2026-01-06   20          0.80 + 8.00 = 8.80      1.00 + 11.00 = 12.00      3.20
C     2026-02-05   10          0.80 + 4.00 = 4.80      1.00 + 5.50 = 6.50        1.70
D     2026-02-06   5           0.80 + 2.00 = 2.80      1.00 + 2.75 = 3.75        0.95
====  ===========  ==========  ======================  ========================  ======

January: resale 7.79 + 12.00 = 19.79, billed 5.74 + 8.80 = 14.54, margin 5.25.
February: resale 6.50 + 3.75 = 10.25, billed 4.80 + 2.80 = 7.60, margin 2.65.

The company's CPO costs (0.10/kWh, 0.50/session, 31.00/month) never apply to these eMSP rows.
"""

from datetime import date, datetime
from unittest.mock import patch

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged
from odoo.tools import SQL

from .common import ClearingCase, make_ocpi_cdr

CPO_GRID = [{"sequence": 10, "dimension": "FLAT", "price": 0.80},
            {"sequence": 20, "dimension": "ENERGY", "price": 0.40}]
RESALE_GRID = [{"sequence": 10, "dimension": "FLAT", "price": 1.00, "resale": True},
               {"sequence": 20, "dimension": "ENERGY", "price": 0.55, "resale": True}]
JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


@tagged("post_install", "-at_install")
class TestResale(ClearingCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.write({"clearing_energy_cost": 0.10, "clearing_session_cost": 0.50,
                           "clearing_monthly_cost": 31.0})
        cls.contract = cls._contract(
            partner=cls.cpo, role="emsp", lines=CPO_GRID,
            resale_line_ids=[Command.create(line) for line in RESALE_GRID])
        cls.sessions = {}
        for name, end, kwh in (("A", datetime(2026, 1, 5, 10), 12.345),
                               ("B", datetime(2026, 1, 6, 10), 20.0),
                               ("C", datetime(2026, 2, 5, 10), 10.0),
                               ("D", datetime(2026, 2, 6, 10), 5.0)):
            # received the next day: in the period of its end, not late
            with freeze_time(end.replace(day=end.day + 1)):
                cls.sessions[name] = cls._emsp_session("RS-" + name, end, kwh)

    @classmethod
    def _emsp_cdr(cls, ocpi_id, end, kwh, **extra):
        return make_ocpi_cdr(ocpi_id, end.replace(hour=end.hour - 1), [(0, {"ENERGY": kwh})],
                             end=end, sender=("DE", "CPX"), issuer=("FR", "TST"), **extra)

    @classmethod
    def _emsp_session(cls, ocpi_id, end, kwh, **extra):
        return cls.env["clearing.cdr"].ingest_ocpi(cls._emsp_cdr(ocpi_id, end, kwh, **extra))

    def _amounts(self, field):
        self.env.invalidate_all()
        return {name: cdr[field] for name, cdr in self.sessions.items()}

    def _card(self, contract, day):
        with freeze_time(day):
            self.env.invalidate_all()
            return contract.web_read({"overview_margin_month": {}})[0]["overview_margin_month"]

    def _report(self, contract):
        return {month.date() if hasattr(month, "date") else month: (resale, revenue, cost, margin)
                for month, resale, revenue, cost, margin in
                self.env["clearing.contract.report"]._read_group(
                    [("contract_id", "=", contract.id)], ["day:month"],
                    ["resale:sum", "revenue:sum", "cost:sum", "margin:sum"])}

    # ------------------------------------------------------------------ per session
    def test_session_resale_amount_and_margin(self):
        self.assertTrue(self.contract.has_resale_grid)
        self.assertEqual(self._amounts("amount_untaxed"),
                         {"A": 5.74, "B": 8.80, "C": 4.80, "D": 2.80})
        self.assertEqual(self._amounts("resale_amount"),
                         {"A": 7.79, "B": 12.00, "C": 6.50, "D": 3.75})
        # eMSP hat: the cost is what the CPO bills us, the margin what our drivers pay more
        self.assertEqual(self._amounts("cost_amount"),
                         {"A": 5.74, "B": 8.80, "C": 4.80, "D": 2.80})
        margins = self._amounts("margin")
        self.assertEqual({name: round(value, 2) for name, value in margins.items()},
                         {"A": 2.05, "B": 3.20, "C": 1.70, "D": 0.95})
        tariff = self.contract.to_ocpi_resale_tariff()
        self.assertEqual(tariff["id"], "%s/resale" % self.contract.name)
        self.assertEqual([e["price_components"][0]["price"] for e in tariff["elements"]],
                         [1.0, 0.55])

    def test_resale_and_margin_are_ours(self):
        """The counterparty's portal users see neither the resale amount nor the margins."""
        portal = self.env["res.users"].create({
            "name": "Resale portal", "login": "resale_portal",
            "groups_id": [Command.set([self.env.ref("base.group_portal").id])]})
        for model, fnames in (("clearing.cdr", {"resale_amount", "cost_amount", "margin"}),
                              ("clearing.period", {"cost_amount", "margin"})):
            self.assertFalse(fnames & set(self.env[model].with_user(portal).fields_get()),
                             model)
            self.assertEqual(fnames & set(self.env[model].fields_get()), fnames, model)

    def test_credit_cdr_is_negative(self):
        """A credit CDR of B: both its billed and its resale amount are negative."""
        credit = self._emsp_session("RS-B-C", datetime(2026, 1, 6, 10), 20.0, credit=True,
                                    credit_reference_id="RS-B")
        self.assertEqual((credit.amount_untaxed, credit.resale_amount), (-8.80, -12.00))
        self.assertAlmostEqual(credit.margin, -3.20)

    def test_batch_and_orm_paths_agree(self):
        """The batch path (one COPY) stores the resale amount the ORM path stores."""
        items = [self._emsp_cdr("RS-BATCH-%d" % k, datetime(2026, 1, 7, 10), 12.345)
                 for k in range(2)]
        items.append(self._emsp_cdr("RS-BATCH-CR", datetime(2026, 1, 7, 10), 12.345,
                                    credit=True, credit_reference_id="RS-BATCH-0"))
        results = self.env["clearing.cdr"].ingest_ocpi_batch(items)
        self.assertEqual([r["error"] for r in results], [None, None, None])
        self.assertEqual([r["record"].resale_amount for r in results], [7.79, 7.79, -7.79])
        orm = self._emsp_session("RS-ORM", datetime(2026, 1, 7, 10), 12.345)
        self.assertEqual(orm.resale_amount, results[0]["record"].resale_amount)

    # ------------------------------------------------------------------ per period, month
    def test_figures_period_card_report(self):
        a, c = self.sessions["A"], self.sessions["C"]
        period = a.period_id
        self.assertEqual(self.sessions["B"].period_id, period)
        self.assertNotEqual(c.period_id, period)
        self.assertAlmostEqual(period.cost_amount, 14.54)
        self.assertAlmostEqual(period.margin, 5.25)
        figures = self.contract._figures_by_month()
        jan, feb = figures[(self.contract.id, JAN)], figures[(self.contract.id, FEB)]
        self.assertEqual((jan["resale"], jan["revenue"], jan["cost"], jan["fixed_cost"],
                          jan["margin"]),
                         tuple(map(self._dec, ("19.79", "14.54", "14.54", "0", "5.25"))))
        self.assertEqual((feb["resale"], feb["cost"], feb["margin"]),
                         tuple(map(self._dec, ("10.25", "7.60", "2.65"))))
        html = self.contract.figures_html
        self.assertIn("Resale (excl. VAT)", html)
        self.assertNotIn("Fixed costs", html)
        for amount in ("19.79", "5.25", "10.25", "2.65"):
            self.assertIn(amount, html)
        self.assertAlmostEqual(self._card(self.contract, "2026-01-20 10:00:00"), 5.25)
        self.assertAlmostEqual(self._card(self.contract, "2026-02-20 10:00:00"), 2.65)
        report = self._report(self.contract)
        self.assertEqual({month: tuple(round(v, 2) for v in row)
                          for month, row in report.items()},
                         {JAN: (19.79, 14.54, 14.54, 5.25), FEB: (10.25, 7.60, 7.60, 2.65)})
        # the figures rebuilt from the sessions are the live ones
        self.env["clearing.contract.day"].rebuild_figures(self.contract)
        self.assertEqual(self.contract._figures_by_month(), figures)
        # the what-if with the resale grid simulates what the live figures show
        action = self.contract.action_resale_margin()
        wizard = self.env["clearing.whatif"].with_context(action["context"]).create(
            {"date_from": "2026-01-01", "date_to": "2026-01-31"})
        wizard.action_simulate()
        self.assertAlmostEqual(wizard.simulated_untaxed, 19.79)
        self.assertAlmostEqual(wizard.difference_untaxed, 5.25)

    @staticmethod
    def _dec(text):
        from decimal import Decimal
        return Decimal(text)

    def test_emsp_rows_get_no_cpo_costs(self):
        """The company's CPO costs (per kWh, per session, per month) are 0 for an eMSP
        contract; a CPO contract keeps them (its figures as before)."""
        cpo = self._contract(resale_line_ids=[Command.create(RESALE_GRID[0])])
        self.assertFalse(cpo.has_resale_grid)
        with freeze_time("2026-01-06"):
            cpo_cdr = self.env["clearing.cdr"].ingest_ocpi(make_ocpi_cdr(
                "RS-CPO", datetime(2026, 1, 5, 10), [(0, {"ENERGY": 10})]))
        self.assertEqual((cpo_cdr.amount_untaxed, cpo_cdr.resale_amount), (3.0, 0.0))
        # 10 kWh x 0.10 + 0.50
        self.assertAlmostEqual(cpo_cdr.cost_amount, 1.50)
        self.assertAlmostEqual(cpo_cdr.margin, 1.50)
        Contract = self.env["clearing.contract"]
        Contract._flush_for_costs()
        fixed = dict(self.env.execute_query(SQL(
            "SELECT contract.id, %s FROM clearing_contract contract WHERE contract.id IN %s",
            Contract._fixed_cost_sql(SQL("contract.id"), "2026-01-01", "2026-01-31"),
            (cpo.id, self.contract.id))))
        self.assertEqual({cid: float(v) for cid, v in fixed.items()},
                         {cpo.id: 31.0, self.contract.id: 0.0})
        joins, cost = self.env["clearing.contract.day"]._cost_sql()
        costs = dict(self.env.execute_query(SQL(
            "SELECT d.contract_id, sum(%s) FROM clearing_contract_day d %s"
            " WHERE d.contract_id IN %s GROUP BY 1", cost, joins, (cpo.id, self.contract.id))))
        self.assertEqual({cid: float(v) for cid, v in costs.items()},
                         {cpo.id: 1.5, self.contract.id: 0.0})
        jan = cpo._figures_by_month()[(cpo.id, JAN)]
        self.assertEqual((float(jan["revenue"]), float(jan["resale"]), float(jan["cost"]),
                          float(jan["fixed_cost"]), float(jan["margin"])),
                         (3.0, 0.0, 1.5, 31.0, 3.0 - 1.5 - 31.0))
        self.assertIn("Fixed costs", cpo.figures_html)
        self.assertNotIn("Resale (excl. VAT)", cpo.figures_html)
        self.assertEqual(self._report(cpo)[JAN][2:], (1.5, 1.5))

    # ------------------------------------------------------------------ grid changes
    def test_resale_flag_written_on_lines(self):
        """The lines leave the resale grid by a write of their flag (not an unlink): the
        contract has no resale grid any more and its sessions resell for 0; flagged again,
        the grid and the amounts are back."""
        self.contract.resale_line_ids.write({"resale": False})
        self.assertFalse(self.contract.resale_line_ids)
        self.assertFalse(self.contract.has_resale_grid)
        self.assertEqual(self._amounts("resale_amount"),
                         {"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.0})
        lines = self.contract.price_line_ids.filtered(lambda l: l.price in (1.00, 0.55))
        self.assertEqual(len(lines), 2)
        lines.write({"resale": True})
        self.assertTrue(self.contract.has_resale_grid)
        self.assertEqual(self._amounts("resale_amount"),
                         {"A": 7.79, "B": 12.00, "C": 6.50, "D": 3.75})

    def test_resale_line_change_reprices_unlocked_sessions(self):
        """B and C are re-priced; A (locked) and D (disputed) keep what they were. Chunks of
        one session: one UPDATE each, still the same result."""
        a, d = self.sessions["A"], self.sessions["D"]
        self.env.flush_all()
        self.env.cr.execute("UPDATE clearing_cdr SET locked = TRUE, state = 'locked' "
                            "WHERE id = %s", (a.id,))
        self.env.cr.execute("UPDATE clearing_cdr SET dispute_state = 'open' WHERE id = %s",
                            (d.id,))
        self.env.invalidate_all()
        energy = self.contract.resale_line_ids.filtered(lambda l: l.dimension == "ENERGY")
        with patch("odoo.addons.emsp_clearing.models.clearing_contract.RESALE_CHUNK", 1):
            energy.price = 0.60
        # B: 1.00 + 20 x 0.60 = 13.00; C: 1.00 + 10 x 0.60 = 7.00
        self.assertEqual(self._amounts("resale_amount"),
                         {"A": 7.79, "B": 13.00, "C": 7.00, "D": 3.75})
        figures = self.contract._figures_by_month()
        # January 7.79 + 13.00 = 20.79 - 14.54; February 7.00 + 3.75 = 10.75 - 7.60
        self.assertEqual((figures[(self.contract.id, JAN)]["resale"],
                          figures[(self.contract.id, JAN)]["margin"],
                          figures[(self.contract.id, FEB)]["resale"],
                          figures[(self.contract.id, FEB)]["margin"]),
                         tuple(map(self._dec, ("20.79", "6.25", "10.75", "3.15"))))
        # a change of the CPO's grid leaves the resale amounts alone
        Contract = type(self.env["clearing.contract"])
        with patch.object(Contract, "_reprice_resale", autospec=True) as reprice:
            self.contract.price_line_ids[:1].price = 0.85
        reprice.assert_called_once()
        self.assertFalse(reprice.call_args.args[0])  # an empty recordset: nothing done
        # no resale grid any more: no margin; the unlocked sessions resell for 0
        self.contract.resale_line_ids.unlink()
        self.assertFalse(self.contract.has_resale_grid)
        self.assertEqual(self._amounts("resale_amount"),
                         {"A": 7.79, "B": 0.0, "C": 0.0, "D": 3.75})
        self.assertEqual(self._amounts("margin"), {"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.0})
        self.assertIsNone(self.contract._figures_by_month()[(self.contract.id, JAN)]["margin"])
        self.assertNotIn("Resale (excl. VAT)", self.contract.figures_html)
        self.assertEqual(self._card(self.contract, "2026-01-20 10:00:00"), 0.0)
        # NULL in the report (read as False), not a 0 margin
        for value in self._report(self.contract)[JAN][2:]:
            self.assertIs(value, False)
