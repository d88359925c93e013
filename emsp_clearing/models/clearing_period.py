"""Clearing periods: the control window before a statement and the lock at its date."""

import logging
from datetime import datetime, time, timedelta

import pytz

import psycopg2

from odoo import Command, _, api, fields, models, modules
from odoo.exceptions import UserError
from odoo.tools import SQL, config, float_compare, formatLang

from ..clearing_core import invoice_lines

from ..tools import demo
from ..tools.period import lock_date_for, period_bounds

_logger = logging.getLogger(__name__)

PERIOD_STATES = [
    ("open", "Open"),
    ("control", "In Control"),
    ("locked", "Locked"),
    ("invoiced", "Invoiced"),
    ("nothing", "Nothing to Invoice"),
    ("paid", "Paid"),
]
# States of a period whose sessions are final (a locked period never reopens).
FROZEN_STATES = ("locked", "invoiced", "nothing", "paid")
# The only state changes a frozen period accepts: invoicing (an invoice, or nothing to
# invoice), then its invoice paid (and unpaid again when a payment is undone).
FROZEN_TRANSITIONS = {("locked", "invoiced"), ("locked", "nothing"), ("invoiced", "paid"),
                      ("paid", "invoiced")}
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
    _inherit = ["portal.mixin", "mail.thread", "mail.activity.mixin",
                "clearing.period.documents.mixin"]
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
    # ours alone: not for the counterparty's portal users
    cost_amount = fields.Monetary(
        "Costs", compute="_compute_margin", groups="emsp_clearing.group_clearing_user",
        help="CPO hat: the sessions' costs and the fixed monthly costs over the period's days "
        "(clearing.contract.cost, else the company defaults). eMSP hat with a resale grid: "
        "what the CPO bills us for the sessions (excl. VAT).")
    margin = fields.Monetary(
        compute="_compute_margin", groups="emsp_clearing.group_clearing_user",
        help="CPO hat: billable untaxed amount of the sessions (excluded ones out) minus costs. "
        "eMSP hat with a resale grid: what our drivers pay for them (resale grid) minus what "
        "the CPO bills us.")

    # ---------------------------------------------------------------- Invoicing
    move_ids = fields.One2many(
        "account.move", "clearing_period_id", string="Invoice and Credit Notes", readonly=True)
    invoice_id = fields.Many2one(
        "account.move", string="Invoice", compute="_compute_invoice", compute_sudo=True,
        help="The invoice (CPO role) or vendor bill (eMSP role) of the period.")
    invoice_count = fields.Integer(compute="_compute_invoice", compute_sudo=True)
    refund_count = fields.Integer("Credit Notes", compute="_compute_invoice", compute_sudo=True)
    invoice_vendor_mismatch = fields.Boolean(
        "CPO Invoice Differs", compute="_compute_invoice", compute_sudo=True,
        help="The CPO's own invoice, recorded on the vendor bill, differs from our total.")

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
        (``clearing.contract._session_costs_sql``) and the fixed costs of their days. eMSP
        hat: with a resale grid, what our drivers pay minus what the CPO bills us; without
        one, no margin."""
        real = self.filtered(lambda p: p.id and (p.contract_id.role == "cpo"
                                                 or p.contract_id.has_resale_grid))
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
        frozen = self.filtered(lambda p: p.state in FROZEN_STATES)
        if frozen and set(vals) - LOCKED_WRITABLE:
            if not (set(vals) == {"state"}
                    and all((p.state, vals["state"]) in FROZEN_TRANSITIONS for p in frozen)):
                raise UserError(_(
                    "Clearing period %s is locked: it can no longer be changed. Corrections "
                    "go through credit operations in a later period.",
                    frozen[0].display_name,
                ))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_locked_or_used(self):
        for period in self:
            if period.state in FROZEN_STATES:
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
        while period.state in FROZEN_STATES or period.lock_date <= today:
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
        if due:  # Invoicing: the moves of the periods locked today, right after the lock
            self.env.ref("emsp_clearing.ir_cron_clearing_period_invoice")._trigger()
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
                    while target.state in FROZEN_STATES:
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

    # ------------------------------------------------------------------ Invoicing
    # One move per locked period (an invoice when we are the CPO, a vendor bill when we are the
    # eMSP), built from the billable sessions by _prepare_invoice_vals/_prepare_invoice_lines,
    # posted and handed to account.move.send; credit notes for credits of billed sessions.
    _INVOICE_ROW_COLUMNS = (
        "id", "is_late", "credit", "dispute_credit", "amount_fixed", "amount_energy",
        "amount_time", "amount_parking", "amount_reservation", "amount_adjustment",
        "amount_untaxed", "price_breakdown", "fleet_id")

    @api.depends("move_ids.move_type", "move_ids.clearing_vendor_mismatch")
    def _compute_invoice(self):
        for period in self:
            invoices = period.move_ids.filtered(
                lambda m: m.move_type in ("out_invoice", "in_invoice"))
            period.invoice_id = invoices[:1]
            period.invoice_count = len(invoices)
            period.refund_count = len(period.move_ids - invoices)
            period.invoice_vendor_mismatch = bool(invoices.filtered("clearing_vendor_mismatch"))

    def _invoice_rows(self, refund_of=None):
        """Sessions to bill, as dicts of ``_INVOICE_ROW_COLUMNS``: the period's billable
        sessions not billed yet (excluded ones never; credits of a session already billed go
        to a credit note instead) -- or, with ``refund_of`` (an invoice), the credits not
        billed yet of the sessions that invoice billed."""
        self.env["clearing.cdr"].flush_model()
        columns = ", ".join("c.%s" % col for col in self._INVOICE_ROW_COLUMNS)
        if refund_of:
            where, params = "o.invoice_move_id = %s", [refund_of.id]
        else:
            self.ensure_one()
            where = "c.period_id = %s AND (o.id IS NULL OR o.invoice_move_id IS NULL)"
            params = [self.id]
        self.env.cr.execute(
            f"""SELECT {columns}
                  FROM clearing_cdr c
                  LEFT JOIN clearing_cdr o ON o.id = c.credited_cdr_id
                 WHERE {where}
                   AND c.invoice_move_id IS NULL AND c.state != 'excluded'
                   AND c.contract_id IS NOT NULL
                 ORDER BY c.id""",
            params,
        )
        rows = [dict(zip(self._INVOICE_ROW_COLUMNS, row)) for row in self.env.cr.fetchall()]
        for row in rows:
            row["grid"] = row["fleet_id"]  # the fleet grid that priced it (None: the contract's)
        return rows

    def _invoice_partner(self):
        """Invoice address of the counterparty."""
        partner = self.contract_id.partner_id.commercial_partner_id
        return self.env["res.partner"].browse(partner.address_get(["invoice"])["invoice"])

    def _prepare_invoice_vals(self, move_type=None, journal=None):
        """Values of the period's ``account.move`` (without lines)."""
        self.ensure_one()
        contract = self.contract_id
        company = contract.company_id
        move_type = move_type or ("out_invoice" if contract.role == "cpo" else "in_invoice")
        partner = self._invoice_partner()
        journal = journal or contract._invoice_journal()
        fiscal_position = self.env["account.fiscal.position"].with_company(
            company)._get_fiscal_position(partner)
        vals = {
            "move_type": move_type,
            "company_id": company.id,
            "partner_id": partner.id,
            "journal_id": journal.id,
            "currency_id": contract.currency_id.id,
            "invoice_date": self.lock_date,
            "invoice_payment_term_id": contract.payment_term_id.id,
            "fiscal_position_id": fiscal_position.id,
            "invoice_origin": self.name,
            "clearing_period_id": self.id,
        }
        bank = self._invoice_bank(journal) if move_type.startswith("out_") else False
        if bank:
            vals["partner_bank_id"] = bank.id
        if contract.reverse_billing and move_type.startswith("in_"):
            vals.update(self._prepare_self_billing_vals(partner))
        return vals

    def _prepare_self_billing_vals(self, partner):
        """Hook: what a self-billed vendor bill adds (reverse billing): the flag, and the legal
        mention of French law (CGI, annex II, art. 242 nonies A) in its terms, printed on the
        PDF. The mention itself, 'Autofacturation', is the word the law requires, in any
        language."""
        company = self.contract_id.company_id
        return {
            "clearing_self_billed": True,
            "narration": _(
                "%(mention)s: invoice issued by %(emsp)s in the name and on behalf of "
                "%(cpo)s (French General Tax Code, annex II, article 242 nonies A).",
                mention="Autofacturation", emsp=company.name,
                cpo=partner.commercial_partner_id.name),
        }

    @api.model
    def _invoice_products(self):
        ref = self.env.ref
        return {
            "ENERGY": ref("emsp_clearing.product_clearing_energy"),
            "TIME": ref("emsp_clearing.product_clearing_time"),
            "PARKING": ref("emsp_clearing.product_clearing_parking"),
            "FIXED": ref("emsp_clearing.product_clearing_session_fee"),
            "RESERVATION": ref("emsp_clearing.product_clearing_reservation"),
            invoice_lines.ADJUSTMENT: ref("emsp_clearing.product_clearing_adjustment"),
            invoice_lines.CREDIT: ref("emsp_clearing.product_clearing_dispute_credit"),
        }

    def _invoice_line_label(self, kind, dimension, unit_price, group, product):
        """Label of an invoice line: component, tariff price and metered volume, e.g.
        "Energy, 0.49 €/kWh: 1,234.567 kWh (23 sessions)"."""
        currency = self.contract_id.currency_id
        count = group["sessions"]
        sessions = (_("1 session") if count == 1 else _("%s sessions", count))
        if kind == invoice_lines.CREDIT:
            return _("Credits for accepted disputes (%s)", sessions)
        if kind == invoice_lines.ADJUSTMENT:
            return _("Minimum/maximum session price adjustments (%s)", sessions)
        if unit_price is None:
            return _("%(product)s (%(sessions)s)", product=product.name, sessions=sessions)
        unit = {"ENERGY": _("kWh"), "FLAT": _("session")}.get(dimension, _("h"))
        price_digits = max(2, -unit_price.normalize().as_tuple().exponent)
        label = _(
            "%(product)s, %(price)s %(currency)s/%(unit)s: %(volume)s %(unit)s (%(sessions)s)",
            product=product.name, price=formatLang(self.env, float(unit_price),
                                                   digits=price_digits),
            currency=currency.symbol or currency.name, unit=unit,
            volume=formatLang(self.env, float(group["volume"]),
                              digits=0 if dimension == "FLAT" else 3),
            sessions=sessions,
        )
        if kind == "RESERVATION" and dimension == "FLAT":
            label = _("Reservation fee: %s", label)
        return label

    def _invoice_grid_labels(self, fleet_ids):
        """``{fleet id or None: (order, label)}`` of the price grids of a move's lines: the
        contract's grid first, then the fleets by their sequence; the label names the grid on
        the lines ("Contract grid", "Fleet grid Taxis VIP")."""
        labels = {None: (0, _("Contract grid"))}
        fleets = self.env["clearing.fleet"].sudo().with_context(active_test=False).browse(
            sorted(fid for fid in fleet_ids if fid)).exists().sorted(lambda f: (f.sequence, f.id))
        for index, fleet in enumerate(fleets, start=1):
            labels[fleet.id] = (index, _("Fleet grid %s", fleet.name))
        return labels

    def _prepare_invoice_lines(self, rows=None, sign=1, taxes=None):
        """Line values of the period's move: one per price grid (the contract's, a fleet's) x
        priced component x unit price (x late), plus min/max adjustments and dispute credits,
        the grid named in the label when a fleet grid priced sessions of the move; ``sign`` -1
        for a credit note of credit rows. Each line's quantity x unit price is its sessions'
        sum to the cent."""
        self.ensure_one()
        rows = self._invoice_rows() if rows is None else rows
        contract = self.contract_id
        currency = contract.currency_id.name
        products = self._invoice_products()
        quantity_digits = self.env["decimal.precision"].precision_get("Product Unit of Measure")
        price_digits = self.env["decimal.precision"].precision_get("Product Price")
        groups = invoice_lines.group_sessions(rows, currency)
        order = list(products)
        grids = self._invoice_grid_labels({key[4] for key in groups})
        lines = []
        for key in sorted(groups, key=lambda k: (k[3], grids[k[4]][0], order.index(k[0]),
                                                  k[1] or "", k[2] if k[2] is not None else -1)):
            kind, dimension, unit_price, late, grid = key
            group = groups[key]
            amount = sign * group["amount"]
            if not amount:
                continue
            product = products[kind]
            quantity, price = invoice_lines.exact_quantity_price(
                amount, sign * group["volume"], unit_price, currency, quantity_digits,
                price_digits)
            label = self._invoice_line_label(kind, dimension, unit_price, group, product)
            if len(grids) > 1:  # a fleet grid priced sessions of this move: name each grid
                label = _("%(grid)s: %(line)s", grid=grids[grid][1], line=label)
            if late:
                label = _("%s - late sessions of earlier periods", label)
            lines.append({
                "product_id": product.id,
                "name": label,
                "quantity": float(quantity),
                "price_unit": float(price),
                # 1 x the amount (the last resort of exact_quantity_price) is in units
                "product_uom_id": (self.env.ref("uom.product_uom_unit") if quantity == 1
                                   and price == amount and price != unit_price
                                   else product.uom_id).id,
                "tax_ids": [Command.set(taxes.ids if taxes is not None
                                        else contract.tax_ids.ids)],
            })
        return lines

    def _invoice_bank(self, journal):
        """Our bank account printed on an invoice: the journal's, else the company's."""
        company = self.contract_id.company_id
        return journal.bank_account_id or company.partner_id.bank_ids.filtered(
            lambda b: not b.company_id or b.company_id == company)[:1]

    def _invoice_blocker(self, journal):
        """Why the period cannot be invoiced now (a sentence), or None."""
        contract = self.contract_id
        if not journal:
            return _("Contract %s has no sales or purchase journal to invoice with.",
                     contract.name)
        if contract.role == "cpo" and not self._invoice_bank(journal):
            return _(
                "Journal %(journal)s has no bank account, and the company none either: an "
                "invoice without the account to pay to cannot be issued. Set the journal's "
                "bank account; the period is invoiced at the next run.", journal=journal.name)
        return None

    def _invoice_accountant(self):
        company = self.contract_id.company_id
        managers = self.env.ref("account.group_account_manager").users.filtered(
            lambda u: company in u.company_ids and not u.share)
        return managers[:1] or self.env.ref("base.user_admin")

    def _invoice_alert(self, record, summary, note):
        """Activity for the accountant on ``record`` (once while open) and a chatter note."""
        if not record.activity_ids.filtered(lambda a: a.summary == summary):
            record.activity_schedule(
                "mail.mail_activity_data_todo", summary=summary, note=note,
                user_id=self._invoice_accountant().id)
            record.message_post(body=note)

    def _invoice_mail_recipients(self, move):
        recipients = self._billing_recipients().filtered("email")
        if move.partner_id.email:
            recipients |= move.partner_id
        return recipients

    def _invoice_send(self, move):
        """Hand a posted customer invoice or credit note to Odoo's sending (the batch cron
        ``account.ir_cron_account_move_send``), in the transaction that posts it; no e-mail
        address: posted, not sent, an activity says why."""
        if move.state != "posted" or not move.is_sale_document():
            return False
        method = self.env["account.move.send"]._get_default_sending_method(move)
        if method == "email" and not self._invoice_mail_recipients(move):
            self._invoice_alert(
                move, _("Not sent: no e-mail address"),
                _("%(move)s is posted but was not sent: %(partner)s has no e-mail address "
                  "and no billing contact with one. Add one and send it from the invoice.",
                  move=move.name, partner=move.partner_id.display_name))
            return False
        move.sending_data = {
            "author_user_id": self.env.user.id,
            "author_partner_id": self.env.user.partner_id.id,
        }
        return True

    def _invoice_lock_row(self):
        """Take the period's row for this run, or False when another run holds it or has
        invoiced it meanwhile (``FOR UPDATE SKIP LOCKED``; a concurrent update seen by our
        snapshot counts as taken)."""
        self.ensure_one()
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    """SELECT id FROM clearing_period
                        WHERE id = %s AND state = 'locked' FOR UPDATE SKIP LOCKED""",
                    [self.id])
                return bool(self.env.cr.fetchone())
        except psycopg2.errors.SerializationFailure:
            return False

    def _invoice_period(self):
        """Create, post and send the move of this locked period (exactly once). Returns the
        move, or False: nothing to invoice (period marked so), blocked (alerted), or taken by
        another run."""
        self.ensure_one()
        if not self._invoice_lock_row():
            return False
        self.invalidate_recordset(["state", "move_ids"])
        existing = self.move_ids.filtered(lambda m: m.move_type in ("out_invoice", "in_invoice"))
        if existing:
            super(ClearingPeriod, self).write({"state": "invoiced"})
            return existing
        contract = self.contract_id
        rows = self._invoice_rows()
        if not rows or not any(row["amount_untaxed"] for row in rows):
            self.state = "nothing"
            self.message_post(body=_("Nothing to invoice: no billable session in this period."))
            return False
        journal = contract._invoice_journal()
        blocker = self._invoice_blocker(journal)
        if blocker:
            self._invoice_alert(self, _("Invoice not issued"), blocker)
            return False
        vals = self._prepare_invoice_vals(journal=journal)
        fiscal_position = self.env["account.fiscal.position"].browse(vals["fiscal_position_id"])
        vals["invoice_line_ids"] = [
            Command.create(line) for line in self._prepare_invoice_lines(
                rows, taxes=fiscal_position.map_tax(contract.tax_ids))]
        move = self.env["account.move"].create(vals)
        self._invoice_link(move, rows)
        if not contract.invoice_review:
            move.action_post()
            self._invoice_send(move)
        self.state = "invoiced"
        self.message_post(body=_("Invoiced: %s.", move._get_html_link()))
        return move

    def _invoice_link(self, move, rows, refund=False):
        """The sessions know the move that billed them; the amounts agree to the cent."""
        currency = move.currency_id
        expected = sum(invoice_lines._dec(row["amount_untaxed"]) for row in rows)
        if refund:
            expected = -expected
        if float_compare(move.amount_untaxed, float(expected),
                         precision_rounding=currency.rounding):
            raise UserError(_(
                "%(move)s: untaxed %(amount)s differs from its sessions' %(expected)s.",
                move=move.display_name, amount=move.amount_untaxed, expected=expected))
        ids = [row["id"] for row in rows]
        self.env.cr.execute(
            """UPDATE clearing_cdr SET invoice_move_id = %s WHERE id = ANY(%s)""",
            [move.id, ids])
        if refund:
            self.env.cr.execute(
                """UPDATE clearing_cdr SET refund_move_id = %s
                    WHERE id IN (SELECT credited_cdr_id FROM clearing_cdr WHERE id = ANY(%s))""",
                [move.id, ids])
        self.env["clearing.cdr"].invalidate_model(["invoice_move_id", "refund_move_id"])

    @api.model
    def _invoice_refunds(self):
        """Credit notes for the credits (accepted disputes, OCPI credit CDRs) of sessions
        already billed: one per billed move, reversing exactly those sessions."""
        self.env["clearing.cdr"].flush_model()
        self.env.cr.execute(
            """SELECT DISTINCT o.invoice_move_id
                 FROM clearing_cdr c JOIN clearing_cdr o ON o.id = c.credited_cdr_id
                 JOIN account_move m ON m.id = o.invoice_move_id
                WHERE c.invoice_move_id IS NULL AND c.state != 'excluded'
                  AND m.state = 'posted' AND m.move_type IN ('out_invoice', 'in_invoice')""")
        invoices = self.env["account.move"].browse([row[0] for row in self.env.cr.fetchall()])
        refunds = self.env["account.move"]
        for invoice in invoices:
            refunds |= invoice.clearing_period_id._invoice_refund(invoice)
        return refunds

    def _invoice_refund(self, invoice):
        """Credit note of ``invoice`` for its sessions' credits not billed yet."""
        self.ensure_one()
        rows = self._invoice_rows(refund_of=invoice)
        if not rows:
            return self.env["account.move"]
        move_type = "out_refund" if invoice.move_type == "out_invoice" else "in_refund"
        vals = self._prepare_invoice_vals(move_type=move_type, journal=invoice.journal_id)
        vals.update(
            reversed_entry_id=invoice.id,
            fiscal_position_id=invoice.fiscal_position_id.id,
            partner_id=invoice.partner_id.id,
            currency_id=invoice.currency_id.id,
            invoice_date=self._contract_today(self.contract_id),
            ref=_("Credit note of %s", invoice.name),
        )
        if not invoice.clearing_self_billed:  # a self-billed bill's credit note is self-billed
            vals.pop("clearing_self_billed", None)
            vals.pop("narration", None)
        elif "clearing_self_billed" not in vals:  # even if the option was since switched off
            vals.update(self._prepare_self_billing_vals(invoice.partner_id))
        taxes = invoice.fiscal_position_id.map_tax(self.contract_id.tax_ids)
        vals["invoice_line_ids"] = [
            Command.create(line)
            for line in self._prepare_invoice_lines(rows, sign=-1, taxes=taxes)]
        move = self.env["account.move"].create(vals)
        self._invoice_link(move, rows, refund=True)
        if not self.contract_id.invoice_review:
            move.action_post()
            self._invoice_send(move)
        self.message_post(body=_("Credit note %(refund)s of %(invoice)s.",
                                 refund=move._get_html_link(), invoice=invoice._get_html_link()))
        return move

    @api.model
    def _invoice_can_commit(self):
        """Commit per period in a running server's cron; never in tests or while modules
        load (demo data), whose transaction must stay whole."""
        return self.pool.ready and not (config["test_enable"] or modules.module.current_test)

    @api.model
    def _cron_invoice_periods(self):
        """On the statement date, after the lock: credit notes first, then one move per locked
        period, each period in its own transaction (committed with the cron's progress), so
        an interrupted run leaves each period either without a move or with a complete,
        posted one, and the next run goes on from there."""
        self = self.sudo()
        self._invoice_refunds()
        periods = self.search([("state", "=", "locked")], order="lock_date, id")
        periods = periods.filtered(lambda p: p.lock_date <= self._contract_today(p.contract_id))
        periods._invoice_run()
        self.env.ref("account.ir_cron_account_move_send")._trigger()
        return True

    def _invoice_run(self):
        """Invoice these periods, each in its own transaction (savepoint, then commit with the
        cron's progress outside tests): an error leaves that period as it was, alerted."""
        cr = self.env.cr
        periods = self
        done = 0
        for period in periods:
            try:
                with cr.savepoint():
                    period._invoice_period()
            except (UserError, psycopg2.IntegrityError) as error:
                # nothing half-made: the savepoint took the move back
                self.env.invalidate_all()
                _logger.warning("Clearing period %s not invoiced: %s", period.id, error)
                period._invoice_alert(period, _("Invoice not issued"), str(error))
            done += 1
            self.env["ir.cron"]._notify_progress(done=done, remaining=len(periods) - done)
            if self._invoice_can_commit():
                cr.commit()

    def action_create_invoice(self):
        """Invoice now (a locked period, before its statement date or after a fix)."""
        if not self.env.user.has_group("emsp_clearing.group_clearing_manager"):
            raise UserError(_("Only clearing managers can invoice a period."))
        if self.filtered(lambda p: p.state != "locked"):
            raise UserError(_("Only locked periods that are not invoiced yet can be invoiced."))
        for period in self.sudo():
            period._invoice_period()
        self.env.ref("account.ir_cron_account_move_send")._trigger()
        return self.action_view_invoice() if len(self) == 1 and self.invoice_id else True

    def action_view_invoice(self):
        self.ensure_one()
        return self._action_view_moves(self.invoice_id)

    def action_view_refunds(self):
        self.ensure_one()
        return self._action_view_moves(self.move_ids - self.invoice_id)

    def _action_view_moves(self, moves):
        action = {
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "name": self.display_name,
            "context": {"create": False},
        }
        if len(moves) == 1:
            action.update(view_mode="form", res_id=moves.id)
        else:
            action.update(view_mode="list,form", domain=[("id", "in", moves.ids)])
        return action

    @api.model
    def _demo_invoice(self):
        """Demo data hook (demo/clearing_invoice_demo.xml): the generator is tools/demo.py."""
        demo.generate_invoices(self.env)
        return True

    # ------------------------------------------------------------------ payments
    invoice_payment_state = fields.Selection(
        [("none", "Not invoiced"), ("not_paid", "Not paid"), ("partial", "Partially paid"),
         ("paid", "Paid")],
        string="Payment", compute="_compute_invoice_payment_state",
        help="Payment state of the period's invoice (or vendor bill).",
    )

    def _compute_invoice_payment_state(self):
        states = self._invoice_payment_states()
        for period in self:
            period.invoice_payment_state = states.get(period.id, "none")

    def _invoice_payment_states(self):
        """``{period id: 'not_paid' | 'partial' | 'paid'}`` from the payment states of the
        periods' posted invoices or vendor bills, read with one search (periods without one
        are left out). The one rule behind the payment badge and the 'paid' period state."""
        moves = self.env["account.move"].sudo().search([
            ("clearing_period_id", "in", self.ids), ("state", "=", "posted"),
            ("move_type", "in", ("out_invoice", "in_invoice")),
        ])
        found = {}
        for move in moves:
            found.setdefault(move.clearing_period_id.id, set()).add(move.payment_state)
        result = {}
        for period_id, states in found.items():
            if states <= {"paid", "in_payment"}:
                result[period_id] = "paid"
            elif states <= {"not_paid"}:
                result[period_id] = "not_paid"
            else:
                result[period_id] = "partial"
        return result
