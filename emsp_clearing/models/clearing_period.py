"""Clearing periods: the control window before a statement and the lock at its date."""

import logging
from datetime import datetime, time, timedelta

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools.period import lock_date_for, period_bounds

_logger = logging.getLogger(__name__)

PERIOD_STATES = [
    ("open", "Open"),
    ("control", "In Control"),
    ("locked", "Locked"),
    ("invoiced", "Invoiced"),
]
# Fields a locked period still accepts: the portal access token (technical).
LOCKED_WRITABLE = {"access_token"}
# Figures computed from the sessions in SQL (not stored, not cached across changes).
FIGURES = (
    "cdr_count", "billable_count", "excluded_count", "late_count", "disputed_count",
    "open_dispute_count", "energy_kwh", "amount_untaxed", "amount_tax", "amount_total",
)


class ClearingPeriod(models.Model):
    _name = "clearing.period"
    _description = "Clearing Period"
    _inherit = ["portal.mixin", "mail.thread", "mail.activity.mixin"]
    _order = "date_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    contract_id = fields.Many2one(
        "clearing.contract", required=True, readonly=True, index=True, ondelete="restrict",
        check_company=True,
    )
    contract_name = fields.Char(related="contract_id.name", string="Contract Reference")
    contract_role = fields.Selection(related="contract_id.role", store=True, string="Role")
    contract_tz = fields.Selection(related="contract_id.tz", string="Time Zone")
    partner_id = fields.Many2one(
        related="contract_id.partner_id", store=True, index=True, string="Counterparty"
    )
    company_id = fields.Many2one(related="contract_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="contract_id.currency_id", string="Currency")
    date_start = fields.Date("Period Start", required=True, readonly=True)
    date_end = fields.Date("Period End", required=True, readonly=True)
    window_date = fields.Date(
        "Control Window Opens", required=True, readonly=True,
        help="Statement date minus the control window of the contract: from this day the "
        "counterparty sees the sessions of the period on the portal and may dispute them.",
    )
    lock_date = fields.Date(
        "Lock / Statement Date", required=True, readonly=True, index=True,
        help="The period is locked on this day: its sessions become billable and can no "
        "longer change.",
    )
    state = fields.Selection(
        PERIOD_STATES, default="open", required=True, readonly=True, index=True, tracking=True
    )
    locked_on = fields.Datetime("Locked On", readonly=True)
    window_notified = fields.Boolean("Window Opening Notified", readonly=True)
    cdr_ids = fields.One2many("clearing.cdr", "period_id", string="CDRs", readonly=True)
    dispute_ids = fields.One2many("clearing.dispute", "period_id", string="Disputes", readonly=True)
    cdr_count = fields.Integer("Sessions", compute="_compute_figures")
    billable_count = fields.Integer("Billable Sessions", compute="_compute_figures")
    excluded_count = fields.Integer("Excluded Sessions", compute="_compute_figures")
    late_count = fields.Integer("Late Sessions", compute="_compute_figures")
    disputed_count = fields.Integer("Disputed Sessions", compute="_compute_figures")
    open_dispute_count = fields.Integer("Open Disputes", compute="_compute_figures")
    energy_kwh = fields.Float("Energy (kWh)", digits=(16, 3), compute="_compute_figures")
    amount_untaxed = fields.Monetary("Untaxed Amount", compute="_compute_figures")
    amount_tax = fields.Monetary("Tax", compute="_compute_figures")
    amount_total = fields.Monetary("Total", compute="_compute_figures")
    cost_amount = fields.Monetary(
        "Costs", compute="_compute_margin",
        help="CPO hat: the sessions' costs and the fixed monthly costs over the period's days "
        "(clearing.contract.cost, else the company defaults).")
    margin = fields.Monetary(
        compute="_compute_margin",
        help="CPO hat: billable untaxed amount of the sessions (excluded ones out) minus costs.")

    _sql_constraints = [
        ("contract_start_uniq", "unique(contract_id, date_start)",
         "There is already a clearing period starting on this day for this contract."),
    ]

    # ------------------------------------------------------------------ computes
    @api.depends("contract_id.name", "date_start", "date_end")
    def _compute_name(self):
        for period in self:
            if not period.date_start:
                period.name = False
                continue
            period.name = "%s %s → %s" % (
                period.contract_id.name or "",
                period.date_start.isoformat(),
                period.date_end.isoformat() if period.date_end else "",
            )

    def _compute_access_url(self):
        super()._compute_access_url()
        for period in self:
            period.access_url = "/my/clearing/periods/%s" % period.id

    def _figures(self):
        """{period id: figures} computed in SQL (one aggregate, whatever the CDR count)."""
        result = {pid: dict.fromkeys(
            ("cdr_count", "billable_count", "excluded_count", "late_count", "disputed_count",
             "energy_kwh", "amount_untaxed", "amount_tax", "amount_total"), 0)
            for pid in self.ids}
        if not self.ids:
            return result
        self.env["clearing.cdr"].flush_model(
            ["period_id", "state", "is_late", "dispute_state", "energy_kwh", "amount_untaxed",
             "amount_tax", "amount_total"]
        )
        self.env.cr.execute(
            """
            SELECT period_id,
                   count(*),
                   count(*) FILTER (WHERE state != 'excluded'),
                   count(*) FILTER (WHERE state = 'excluded'),
                   count(*) FILTER (WHERE is_late),
                   count(*) FILTER (WHERE dispute_state IS NOT NULL AND dispute_state != 'none'),
                   coalesce(sum(energy_kwh) FILTER (WHERE state != 'excluded'), 0),
                   coalesce(sum(amount_untaxed) FILTER (WHERE state != 'excluded'), 0),
                   coalesce(sum(amount_tax) FILTER (WHERE state != 'excluded'), 0),
                   coalesce(sum(amount_total) FILTER (WHERE state != 'excluded'), 0)
              FROM clearing_cdr
             WHERE period_id = ANY(%s)
             GROUP BY period_id
            """,
            [self.ids],
        )
        for row in self.env.cr.fetchall():
            result[row[0]].update(zip(
                ("cdr_count", "billable_count", "excluded_count", "late_count",
                 "disputed_count", "energy_kwh", "amount_untaxed", "amount_tax",
                 "amount_total"), row[1:]))
        return result

    def _compute_margin(self):
        """One query for all the periods: their sessions' revenue and costs
        (``clearing.contract._session_costs_sql``) and the fixed costs of their days."""
        real = self.filtered(lambda p: p.id and p.contract_id.role == "cpo")
        figures = {}
        if real:
            self.env["clearing.contract"]._flush_for_costs()
            contract_model = self.env["clearing.contract"]
            rows = self.env.execute_query(SQL(
                """SELECT period.id,
                          coalesce((SELECT sum(sess.revenue) FROM (%(rev)s) sess), 0),
                          coalesce((SELECT sum(sess.cost) FROM (%(cost)s) sess), 0)
                          + %(fixed)s
                     FROM clearing_period period WHERE period.id = ANY(%(ids)s)""",
                rev=SQL("SELECT revenue FROM (%s) s",
                        contract_model._session_costs_sql(SQL("cdr.period_id = period.id"))),
                cost=SQL("SELECT cost FROM (%s) s",
                         contract_model._session_costs_sql(SQL("cdr.period_id = period.id"))),
                fixed=contract_model._fixed_cost_sql(SQL("period.contract_id"),
                                                     SQL("period.date_start"),
                                                     SQL("period.date_end")),
                ids=real.ids))
            figures = {pid: (revenue, cost) for pid, revenue, cost in rows}
        for period in self:
            revenue, cost = figures.get(period.id, (0, 0))
            cost = period.currency_id.round(float(cost))
            period.cost_amount = cost
            period.margin = float(revenue) - cost

    def _compute_figures(self):
        real = self.filtered("id")
        figures = real._figures()
        open_disputes = dict(
            self.env["clearing.dispute"].sudo()._read_group(
                [("cdr_id.period_id", "in", real.ids), ("state", "in", ("open", "info"))],
                ["cdr_id"], ["__count"],
            )
        ) if real else {}
        per_period = {}
        for cdr, count in open_disputes.items():
            per_period[cdr.period_id.id] = per_period.get(cdr.period_id.id, 0) + count
        for period in self:
            vals = figures.get(period.id) or dict.fromkeys(
                ("cdr_count", "billable_count", "excluded_count", "late_count",
                 "disputed_count", "energy_kwh", "amount_untaxed", "amount_tax",
                 "amount_total"), 0)
            for fname, value in vals.items():
                period[fname] = value
            period.open_dispute_count = per_period.get(period.id, 0)

    # ------------------------------------------------------------------ protection
    def write(self, vals):
        frozen = self.filtered(lambda p: p.state in ("locked", "invoiced"))
        if frozen and set(vals) - LOCKED_WRITABLE:
            if not (set(vals) == {"state"} and vals["state"] == "invoiced"
                    and all(p.state == "locked" for p in frozen)):
                raise UserError(_(
                    "Clearing period %s is locked: it can no longer be changed. Corrections "
                    "go through credit operations in a later period.",
                    frozen[0].display_name,
                ))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_locked_or_used(self):
        for period in self:
            if period.state in ("locked", "invoiced"):
                raise UserError(_("Clearing period %s is locked: it cannot be deleted.",
                                  period.display_name))
            if period.cdr_ids:
                raise UserError(_("Clearing period %s holds sessions: it cannot be deleted.",
                                  period.display_name))

    # ------------------------------------------------------------------ calendar
    @api.model
    def _contract_today(self, contract):
        """Today in the contract's time zone: the day the period rules (late sessions, window
        opening, lock) are applied on. The context key ``clearing_today`` (a date) stands in
        for it when sessions of the past are loaded as they arrived back then (demo data)."""
        forced = self.env.context.get("clearing_today")
        if forced:
            return fields.Date.to_date(forced)
        tz = pytz.timezone(contract.tz or "UTC")
        return datetime.now(pytz.utc).astimezone(tz).date()

    @api.model
    def _period_vals(self, contract, day):
        start, end = period_bounds(contract.billing_frequency, day)
        lock = lock_date_for(contract.billing_frequency, contract.billing_day,
                             contract.control_window_days, end)
        return {
            "contract_id": contract.id,
            "date_start": start,
            "date_end": end,
            "window_date": lock - timedelta(days=contract.control_window_days),
            "lock_date": lock,
        }

    @api.model
    def _get_or_create(self, contract, day):
        """The period of ``contract`` holding ``day`` (created when missing)."""
        vals = self._period_vals(contract, day)
        period = self.search([("contract_id", "=", contract.id),
                              ("date_start", "<=", day), ("date_end", ">=", day)], limit=1)
        if not period:
            period = self.sudo().create(vals).sudo(False)
        return period

    @api.model
    def _target_for(self, contract, day, today=None, period=None):
        """Period that receives a session of ``contract`` ending on local day ``day``.

        Returns ``(period, late)``: the period holding ``day`` (``period`` when the caller
        has it already), or -- when that one is locked or past its lock date -- the next
        period still open, with ``late`` True.
        """
        today = today or self._contract_today(contract)
        period = period or self._get_or_create(contract, day)
        late = False
        while period.state in ("locked", "invoiced") or period.lock_date <= today:
            late = True
            period = self._get_or_create(contract, period.date_end + timedelta(days=1))
        return period, late

    def _next_open(self):
        """The next period of the same contract that is not locked (created when missing)."""
        self.ensure_one()
        period, _late = self._target_for(self.contract_id, self.date_end + timedelta(days=1))
        return period

    def _utc_bounds(self):
        """Naive UTC datetimes [start, end) of the period in the contract's time zone."""
        self.ensure_one()
        tz = pytz.timezone(self.contract_id.tz or "UTC")

        def to_utc(day):
            return tz.localize(datetime.combine(day, time.min)).astimezone(pytz.utc).replace(
                tzinfo=None)

        return to_utc(self.date_start), to_utc(self.date_end + timedelta(days=1))

    # ------------------------------------------------------------------ crons
    @api.model
    def _cron_open_periods(self):
        """Create the current period of each active contract; open due control windows."""
        # every company: scheduled actions must not depend on the companies of their user
        contracts = self.env["clearing.contract"].sudo().search([("state", "=", "active")])
        for contract in contracts:
            today = self._contract_today(contract)
            if contract.date_start > today or (contract.date_end and contract.date_end < today):
                continue
            self.sudo()._get_or_create(contract, today)
        due = self.sudo().search([("state", "=", "open")])
        for period in due:
            if period.window_date <= self._contract_today(period.contract_id) < period.lock_date:
                period._open_window()
        return True

    def _open_window(self):
        for period in self.filtered(lambda p: p.state == "open"):
            period.state = "control"
            period._notify_window_open()

    def _billing_recipients(self):
        self.ensure_one()
        partner = self.partner_id.commercial_partner_id
        contacts = partner.clearing_billing_contact_ids
        if not contacts and partner.email:
            contacts = partner
        return contacts

    def _notify_window_open(self):
        template = self.env.ref("emsp_clearing.mail_template_period_window_open",
                                raise_if_not_found=False)
        for period in self:
            recipients = period._billing_recipients()
            if not recipients:
                _logger.info("Clearing period %s: no billing contact to notify.", period.name)
                continue
            period._portal_ensure_token()
            if template:
                period.message_post_with_source(
                    template, subtype_xmlid="mail.mt_comment", message_type="comment",
                    partner_ids=recipients.ids,
                )
            period.window_notified = True

    @api.model
    def _cron_lock_periods(self):
        """Lock every period whose statement date has come (set-based, any CDR count)."""
        due = self.sudo().search([("state", "in", ("open", "control"))])
        due = due.filtered(lambda p: p.lock_date <= self._contract_today(p.contract_id))
        due._lock()
        return True

    def _lock(self):
        """Lock the periods: disputed sessions follow the contract's policy, the others
        become billable and read-only. Plain SQL, so 100k sessions lock in seconds."""
        periods = self.filtered(lambda p: p.state in ("open", "control")).sorted("date_start")
        if not periods:
            return
        cdr_model = self.env["clearing.cdr"]
        cdr_model.flush_model()
        self.env["clearing.dispute"].flush_model()
        cr = self.env.cr
        for period in periods:
            if period.contract_id.open_dispute_policy == "carry":
                cr.execute(
                    """SELECT 1 FROM clearing_cdr
                        WHERE period_id = %s AND dispute_state IN ('open', 'info') LIMIT 1""",
                    [period.id],
                )
                if cr.fetchone():
                    # the next period must exist and stay open: created before the lock
                    target = self._get_or_create(
                        period.contract_id, period.date_end + timedelta(days=1))
                    while target.state in ("locked", "invoiced"):
                        target = self._get_or_create(
                            period.contract_id, target.date_end + timedelta(days=1))
                    cr.execute(
                        """UPDATE clearing_cdr
                              SET period_id = %s, carried_from_period_id = %s,
                                  write_date = now() at time zone 'UTC', write_uid = %s
                            WHERE period_id = %s AND dispute_state IN ('open', 'info')""",
                        [target.id, period.id, self.env.uid, period.id],
                    )
            cr.execute(
                """UPDATE clearing_cdr
                      SET locked = TRUE,
                          state = CASE WHEN state = 'priced' THEN 'locked' ELSE state END,
                          write_date = now() at time zone 'UTC', write_uid = %s
                    WHERE period_id = %s AND NOT coalesce(locked, FALSE)""",
                [self.env.uid, period.id],
            )
            _logger.info("Clearing period %s locked (%s sessions).", period.id, cr.rowcount)
        cdr_model.invalidate_model()
        self.env["clearing.period"].invalidate_model(list(FIGURES))
        periods.write({"state": "locked", "locked_on": fields.Datetime.now()})

    # ------------------------------------------------------------------ actions
    def action_open_window(self):
        """Open the control window now (before its date) and notify the counterparty."""
        if not self.env.user.has_group("emsp_clearing.group_clearing_manager"):
            raise UserError(_("Only clearing managers can open a control window early."))
        if self.filtered(lambda p: p.state != "open"):
            raise UserError(_("Only open periods can enter their control window."))
        self._open_window()
        return True

    def action_lock(self):
        """Lock now (before the statement date)."""
        if not self.env.user.has_group("emsp_clearing.group_clearing_manager"):
            raise UserError(_("Only clearing managers can lock a period."))
        if self.filtered(lambda p: p.state not in ("open", "control")):
            raise UserError(_("This period is already locked."))
        self._lock()
        return True

    def action_view_cdrs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_cdr")
        action["domain"] = [("period_id", "=", self.id)]
        action["context"] = {}
        return action

    def action_view_disputes(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_dispute")
        action["domain"] = [("period_id", "=", self.id)]
        return action
