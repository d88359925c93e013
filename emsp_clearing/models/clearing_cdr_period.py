"""clearing.cdr: clearing period, lock and disputes of a session."""

import logging

import psycopg2
import pytz

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL

from ..clearing_core import currencies
from .clearing_period import FIGURES

_logger = logging.getLogger(__name__)

DISPUTE_STATES = [
    ("none", "Not Disputed"),
    ("open", "Disputed"),
    ("info", "Information Requested"),
    ("accepted", "Dispute Accepted"),
    ("rejected", "Dispute Rejected"),
]


class ClearingCdr(models.Model):
    _inherit = "clearing.cdr"

    state = fields.Selection(
        selection_add=[("locked", "Locked"), ("excluded", "Excluded")],
        ondelete={"locked": "set default", "excluded": "set default"},
    )
    period_id = fields.Many2one(
        "clearing.period", string="Clearing Period", readonly=True, index=True,
        ondelete="restrict", copy=False,
    )
    period_state = fields.Selection(related="period_id.state", string="Period State")
    locked = fields.Boolean(
        readonly=True, copy=False,
        help="Set when the clearing period locks: the session is billable and can no "
        "longer be changed; corrections go through credit CDRs.",
    )
    is_late = fields.Boolean(
        "Late", readonly=True, copy=False,
        help="Received after the period of its end date was locked: billed in the next "
        "open period.",
    )
    carried_from_period_id = fields.Many2one(
        "clearing.period", string="Carried From", readonly=True, copy=False,
        help="Disputed at the lock of this period and carried to the next one.",
    )
    dispute_ids = fields.One2many("clearing.dispute", "cdr_id", string="Disputes", readonly=True)
    dispute_state = fields.Selection(
        DISPUTE_STATES, compute="_compute_dispute_state", store=True, index=True,
        string="Dispute",
    )
    dispute_credit = fields.Boolean(
        "Dispute Credit", readonly=True, copy=False,
        help="Credit CDR created by us to settle an accepted dispute.",
    )
    # Invoicing: the move that billed the session, the credit note that reversed it
    invoice_move_id = fields.Many2one(
        "account.move", string="Invoice", readonly=True, copy=False, index="btree_not_null",
        ondelete="restrict", help="The invoice, vendor bill or credit note that billed it.",
    )
    refund_move_id = fields.Many2one(
        "account.move", string="Credit Note", readonly=True, copy=False,
        index="btree_not_null", ondelete="restrict",
        help="The credit note that reversed this session.",
    )
    start_local = fields.Char("Start (local time)", compute="_compute_local_times")
    end_local = fields.Char("End (local time)", compute="_compute_local_times")
    duration_display = fields.Char("Duration", compute="_compute_local_times")

    def init(self):
        super().init()
        # the portal list of a period: WHERE period_id = x ORDER BY end_datetime DESC, id DESC
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS clearing_cdr_period_end_idx
                   ON clearing_cdr (period_id, end_datetime DESC, id DESC)"""
        )
        # the portal's "search in all": one trigram index over the identifiers people type
        # (session, CDR, EVSE, token). Needs PostgreSQL's pg_trgm; without it (no right to
        # create the extension) the search still works, by scanning the period.
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                self.env.cr.execute(SQL(
                    "CREATE INDEX IF NOT EXISTS clearing_cdr_identifiers_trgm_idx"
                    " ON clearing_cdr USING gin ((%s) gin_trgm_ops)", self._identifiers_sql()))
        except psycopg2.Error as error:
            _logger.info("clearing_cdr: no trigram index for the portal search (%s)",
                         str(error).strip())

    @api.model
    def _identifiers_sql(self, alias="clearing_cdr"):
        """Lower-cased session, CDR, EVSE and token ids of a row, as one text."""
        return SQL(
            "lower(coalesce(%s, '') || ' ' || coalesce(%s, '') || ' ' || coalesce(%s, '')"
            " || ' ' || coalesce(%s, ''))",
            *(SQL.identifier(alias, f) for f in ("session_id", "ocpi_id", "evse_id", "token_uid")),
        )

    @api.model
    def _identifiers_domain(self, search):
        """Domain: sessions whose session, CDR, EVSE or token id contains ``search``
        (case-insensitive), served by the trigram index."""
        escaped = search.lower()
        for char in ("\\", "%", "_"):  # LIKE wildcards, literally
            escaped = escaped.replace(char, "\\" + char)
        pattern = "%" + escaped + "%"
        return [("id", "in", SQL("(SELECT id FROM clearing_cdr WHERE %s LIKE %s)",
                                 self._identifiers_sql(), pattern))]

    @api.depends("dispute_ids.state")
    def _compute_dispute_state(self):
        for cdr in self:
            disputes = cdr.dispute_ids.sorted("id")
            cdr.dispute_state = disputes[-1].state if disputes else "none"

    @api.depends("start_datetime", "end_datetime", "contract_id.tz")
    def _compute_local_times(self):
        for cdr in self:
            tz = pytz.timezone(cdr.contract_id.sudo().tz or "UTC")

            def local(value):
                if not value:
                    return False
                return pytz.utc.localize(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

            cdr.start_local = local(cdr.start_datetime)
            cdr.end_local = local(cdr.end_datetime)
            if cdr.start_datetime and cdr.end_datetime:
                minutes = int((cdr.end_datetime - cdr.start_datetime).total_seconds() // 60)
                cdr.duration_display = "%d:%02d" % divmod(minutes, 60)
            else:
                cdr.duration_display = False

    # ------------------------------------------------------------------ lock
    def _check_not_locked(self):
        locked = self.filtered("locked")
        if locked:
            raise UserError(_(
                "CDR %s is locked: its clearing period is closed and it can no longer be "
                "changed. Settle any correction with a credit operation, which creates a "
                "new credit CDR.",
                locked[0].ocpi_id,
            ))

    def write(self, vals):
        self._check_not_locked()
        res = super().write(vals)
        if "contract_id" in vals:
            self._assign_period()
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_except_locked(self):
        self._check_not_locked()

    @api.model_create_multi
    def create(self, vals_list):
        # the period is part of the INSERT (no second write per session when ingesting)
        contracts = self.env["clearing.contract"]
        cache = {}
        for vals in vals_list:
            if vals.get("contract_id") and vals.get("end_datetime") and "period_id" not in vals:
                contract = contracts.browse(vals["contract_id"])
                end = fields.Datetime.to_datetime(vals["end_datetime"])
                vals["period_id"], vals["is_late"] = self._period_target(contract, end, cache)
        records = super().create(vals_list)
        records.filtered(lambda r: r.contract_id and not r.period_id)._assign_period()
        if cache:
            self._invalidate_period_figures()
        return records

    @api.model
    def _period_target(self, contract, end_datetime, cache):
        """``(period id, late)`` for a session of ``contract`` ending at ``end_datetime``
        (naive UTC); ``cache`` memoises per (contract, local day), and per period found: the
        other days of a period already looked up are answered without a query (sessions of
        past periods, whose target is found by stepping period by period, included)."""
        today_key = ("today", contract.id)
        if today_key not in cache:
            cache[today_key] = self.env["clearing.period"]._contract_today(contract)
        tz = pytz.timezone(contract.tz or "UTC")
        day = pytz.utc.localize(end_datetime).astimezone(tz).date()
        key = (contract.id, day)
        if key not in cache:
            # (first day, last day, target) of the periods of this contract looked up so far
            spans = cache.setdefault(("spans", contract.id), [])
            for first, last, target in spans:
                if first <= day <= last:
                    break
            else:
                Period = self.env["clearing.period"]
                holding = Period._get_or_create(contract, day)
                period, late = Period._target_for(contract, day, today=cache[today_key],
                                                  period=holding)
                target = (period.id, late)
                spans.append((holding.date_start, holding.date_end, target))
            cache[key] = target
        return cache[key]

    def _repriceable(self):
        return super()._repriceable().filtered(lambda c: not c.dispute_credit)

    @api.model
    def _contract_movable_domain(self):
        # locked (billable), disputed (the counterparty disputed it under its contract) and our
        # dispute credits keep their contract
        return expression.AND([super()._contract_movable_domain(), [
            ("locked", "=", False), ("dispute_credit", "=", False),
            ("dispute_state", "in", ("none", False))]])

    def _local_end_day(self):
        self.ensure_one()
        tz = pytz.timezone(self.contract_id.tz or "UTC")
        return pytz.utc.localize(self.end_datetime).astimezone(tz).date()

    def _assign_period(self):
        """Put each session in the period of its (local) end date, or -- received after that
        period locked -- in the next open period, flagged late."""
        groups = {}
        cache = {}
        for cdr in self:
            if cdr.locked:
                continue
            contract = cdr.contract_id
            if not contract:
                if cdr.period_id:
                    groups.setdefault((False, False), self.browse())
                    groups[(False, False)] |= cdr
                continue
            # one lookup per (contract, local day), not per CDR (batch ingestion)
            period_id, late = self._period_target(contract, cdr.end_datetime, cache)
            if cdr.period_id.id == period_id and cdr.is_late == late:
                continue
            groups.setdefault((period_id, late), self.browse())
            groups[(period_id, late)] |= cdr
        for (period_id, late), cdrs in groups.items():
            super(ClearingCdr, cdrs).write({"period_id": period_id, "is_late": late})
        if groups:
            self._invalidate_period_figures()

    def _invalidate_period_figures(self):
        self.env["clearing.period"].invalidate_model(list(FIGURES))

    # ------------------------------------------------------------------ credits
    def _create_dispute_credit(self, amount_untaxed=None):
        """New credit CDR settling this session: the full amounts (``amount_untaxed`` None)
        or ``amount_untaxed`` excl. VAT (tax at the contract rate). It lands in the session's
        period while that one is not locked, else in the next open period (late)."""
        self.ensure_one()
        code = self.currency_id.name
        count = self.with_context(active_test=False).search_count(
            [("credited_cdr_id", "=", self.id)])
        vals = {
            "ocpi_id": "%s-CR%d" % (self.ocpi_id, count + 1),
            "country_code": self.country_code,
            "party_id": self.party_id,
            "session_id": self.session_id,
            "token_uid": self.token_uid,
            "token_type": self.token_type,
            "token_contract_id": self.token_contract_id,
            "token_country_code": self.token_country_code,
            "token_party_id": self.token_party_id,
            "location_id": self.location_id,
            "location_name": self.location_name,
            "evse_uid": self.evse_uid,
            "evse_id": self.evse_id,
            "start_datetime": self.start_datetime,
            "end_datetime": self.end_datetime,
            "currency_id": self.currency_id.id,
            "company_id": self.company_id.id,
            "credit": True,
            "credit_reference_id": self.ocpi_id,
            "credited_cdr_id": self.id,
            "dispute_credit": True,
            "applied_tariff": self.applied_tariff,
            "raw_json": {},
        }
        if amount_untaxed is None:
            for fname in ("amount_fixed", "amount_energy", "amount_time", "amount_parking",
                          "amount_reservation", "amount_adjustment", "amount_untaxed",
                          "amount_tax", "amount_total", "energy_kwh", "duration_hours",
                          "parking_hours"):
                vals[fname] = -self[fname]
        else:
            rate = self.contract_id.vat_rate or 0.0
            untaxed = currencies.round_money(-self._json_number(amount_untaxed), code)
            tax = currencies.round_money(untaxed * self._json_number(rate) / 100, code)
            vals.update(amount_adjustment=float(untaxed), amount_untaxed=float(untaxed),
                        amount_tax=float(tax), amount_total=float(untaxed + tax))
        credit = self.sudo().create(vals)
        # matched and priced as the original; written as a fresh record, so not locked
        super(ClearingCdr, credit).write({
            "contract_id": self.contract_id.id,
            "partner_id": self.partner_id.id,
            "match_state": "matched",
            "state": "priced",
            "priced_date": fields.Datetime.now(),
        })
        credit._assign_period()
        return credit.sudo(False)

    def _exclude_from_billing(self):
        """Invalidate sessions that are not locked yet (accepted dispute)."""
        self._check_not_locked()
        super(ClearingCdr, self).write({"state": "excluded"})
        self._invalidate_period_figures()

    # ------------------------------------------------------------------ portal
    TOTAL_FIELDS = ("energy_kwh", "amount_untaxed", "amount_tax", "amount_total")

    @api.model
    def _portal_page(self, domain, order, limit, offset, narrow=False):
        """One page of sessions with the count and billable totals of all the matching ones.

        Record rules apply. A page costs at most two statements whatever the number of
        sessions: an aggregate (count + sums, excluded sessions left out of the sums) and the
        page itself (served by the (period_id, end_datetime) index in the default order).
        With ``narrow`` (a search or filter that keeps few rows) both come from a single scan
        with window aggregates. Returns ``(records, count, totals)``.
        """
        self.flush_model()
        table = self._table

        def sums(window):
            over = SQL(" OVER ()") if window else SQL()
            return [
                SQL("coalesce(sum(CASE WHEN %s != 'excluded' THEN %s END)%s, 0)",
                    SQL.identifier(table, "state"), SQL.identifier(table, fname), over)
                for fname in self.TOTAL_FIELDS
            ]

        if narrow:
            query = self._search(domain, offset=offset, limit=limit, order=order)
            rows = self.env.execute_query(query.select(
                SQL.identifier(table, "id"), SQL("count(*) OVER ()"), *sums(True)))
            if rows:
                totals = dict(zip(self.TOTAL_FIELDS, (float(v) for v in rows[0][2:])))
                return self.browse([row[0] for row in rows]), rows[0][1], totals
        query = self._search(domain)
        [row] = self.env.execute_query(query.select(SQL("count(*)"), *sums(False)))
        totals = dict(zip(self.TOTAL_FIELDS, (float(v) for v in row[1:])))
        records = self.search(domain, order=order, limit=limit, offset=offset) if row[0] else self
        return records, row[0], totals

    def _portal_row(self):
        """Plain dict of one session for the XLSX breakdown."""
        self.ensure_one()
        tariff = self.applied_tariff or {}
        tz = pytz.timezone(self.contract_id.sudo().tz or "UTC")
        end = pytz.utc.localize(self.end_datetime).astimezone(tz).replace(tzinfo=None)
        dims = self.amount_energy + self.amount_time + self.amount_parking + self.amount_fixed
        return {
            "date": end,
            "evse": self.evse_id or self.evse_uid or "",
            "session": self.session_id or "",
            "cdr": self.ocpi_id,
            "kwh": self.energy_kwh,
            "duration_hours": self.duration_hours,
            "tariff": tariff.get("id") or "",
            "amount_energy": self.amount_energy,
            "amount_time": self.amount_time,
            "amount_parking": self.amount_parking,
            "amount_fixed": self.amount_fixed,
            "amount_other": round(self.amount_untaxed - dims, 6),
            "amount_untaxed": self.amount_untaxed,
            "amount_tax": self.amount_tax,
            "amount_total": self.amount_total,
        }
