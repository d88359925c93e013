import json
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytz
from dateutil.relativedelta import relativedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL, float_is_zero, format_amount, format_date
from markupsafe import escape

from odoo.addons.base.models.res_partner import _tz_get

from ..clearing_core import ocpi
from ..tools.numbers import decimal_to_json, float_to_decimal, to_decimal
from ..tools.pricing_sql import PRICING_JSON
from ..tools.selections import WEEKDAY_FIELDS

# The matching rule of ``_find_for_cdr`` (the state aside, which only concerns new CDRs): a
# change re-matches the attached CDRs that no longer fit it (``_cdrs_leaving``).
RULE_FIELDS = frozenset({
    "partner_id", "role", "company_id", "currency_id", "date_start", "date_end", "tz"})
# Sessions re-priced together when the resale grid changes (``_reprice_resale``).
RESALE_CHUNK = 2000
# Fields whose change on an active contract re-matches the unmatched CDRs.
REMATCH_FIELDS = RULE_FIELDS | {"state"}


class ClearingContract(models.Model):
    _name = "clearing.contract"
    _description = "Clearing Contract"
    _inherit = ["mail.thread", "mail.activity.mixin", "clearing.ingest.cache.mixin"]
    # what CDR matching and the contract's OCPI tariff read (clearing_ingest_cache.py)
    _clearing_cache_fields = frozenset({
        "state", "partner_id", "company_id", "currency_id", "role", "date_start", "date_end",
        "tz", "price_tolerance", "min_price", "max_price", "tax_ids", "vat_rate",
        "price_line_ids", "fleet_ids"})
    _order = "date_start desc, id desc"
    _check_company_auto = True
    _rec_names_search = ["name", "description", "partner_id.name"]

    def _default_tz(self):
        return self.env.company.partner_id.tz or "Europe/Paris"

    def _default_price_tolerance(self):
        return self.env.company.clearing_price_tolerance

    name = fields.Char(
        string="Reference",
        required=True,
        copy=False,
        readonly=True,
        default=lambda self: _("New"),
        tracking=True,
        help="Contract reference; also the id of the OCPI tariff built from the grid.",
    )
    description = fields.Char()
    partner_id = fields.Many2one(
        "res.partner",
        string="Counterparty",
        required=True,
        tracking=True,
        check_company=True,
        domain="[('is_company', '=', True), ('ocpi_country_code', '!=', False), "
        "('ocpi_party_id', '!=', False)]",
        help="The eMSP (when we are the CPO) or the CPO (when we are the eMSP).",
    )
    partner_ocpi_identity = fields.Char(
        related="partner_id.ocpi_identity", string="Counterparty OCPI Identity"
    )
    role = fields.Selection(
        [
            ("cpo", "We are the CPO (we bill the eMSP)"),
            ("emsp", "We are the eMSP (billed by the CPO)"),
        ],
        required=True,
        default="cpo",
        tracking=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        default=lambda self: self.env.company.currency_id,
        tracking=True,
    )
    date_start = fields.Date(
        "Start Date", required=True, default=fields.Date.context_today, tracking=True
    )
    date_end = fields.Date("End Date", tracking=True)
    state = fields.Selection(
        [("draft", "Draft"), ("active", "Active"), ("closed", "Closed")],
        default="draft",
        required=True,
        copy=False,
        tracking=True,
        index=True,
    )
    billing_frequency = fields.Selection(
        [("weekly", "Weekly"), ("monthly", "Monthly"), ("quarterly", "Quarterly")],
        default="monthly",
        required=True,
        tracking=True,
    )
    billing_day = fields.Integer(
        default=1,
        tracking=True,
        help="Day of the period on which the statement is issued: 1-28 for monthly "
        "and quarterly billing, 1 (Monday) to 7 (Sunday) for weekly billing.",
    )
    payment_term_id = fields.Many2one(
        "account.payment.term", string="Payment Terms", check_company=True
    )
    tax_ids = fields.Many2many(
        "account.tax",
        string="Taxes",
        check_company=True,
        domain="[('amount_type', '=', 'percent'), "
        "('type_tax_use', '=', 'sale' if role == 'cpo' else 'purchase')]",
        help="Percent taxes applied to every price component; their total percentage "
        "is the OCPI 'vat' of the components.",
    )
    vat_rate = fields.Float(
        "VAT (%)", compute="_compute_vat_rate", digits=(16, 4)
    )
    control_window_days = fields.Integer(
        "Control Window (days)",
        default=7,
        help="Days the counterparty has to dispute the CDRs of a statement.",
    )
    tz = fields.Selection(
        _tz_get,
        string="Time Zone",
        required=True,
        default=_default_tz,
        help="Time zone in which the time, weekday and date restrictions of the grid "
        "are evaluated (local time of the charging network).",
    )
    min_price = fields.Monetary(
        "Minimum Price",
        help="Minimum price of a session, excl. VAT (0 = none).",
    )
    max_price = fields.Monetary(
        "Maximum Price",
        help="Maximum price of a session, excl. VAT (0 = none).",
    )
    price_line_ids = fields.One2many(
        "clearing.price.line", "contract_id", string="Price Grid", copy=True,
        domain=[("fleet_id", "=", False), ("resale", "=", False)],
    )
    resale_line_ids = fields.One2many(
        "clearing.price.line", "contract_id", string="Resale Grid", copy=True,
        domain=[("fleet_id", "=", False), ("resale", "=", True)],
        help="eMSP hat: what we charge our own drivers for these sessions, priced with the "
        "same engine over the same CDRs (Resale margin).",
    )
    has_resale_grid = fields.Boolean(
        "Has a Resale Grid", compute="_compute_has_resale_grid", store=True,
        help="eMSP hat with a resale grid: each session is also priced with it (what our "
        "drivers pay), and the margin is that resale amount minus what the CPO bills us.")
    cost_ids = fields.One2many(
        "clearing.contract.cost", "contract_id", string="Costs", copy=True,
        help="CPO hat: what the sessions cost us, with validity dates; without a cost line "
        "for a day, the company's default costs apply.",
    )
    fleet_ids = fields.One2many(
        "clearing.fleet", "contract_id", string="Fleet Terms",
        help="Extra grids for the sessions of named fleets of the counterparty.",
    )
    figures_html = fields.Html(
        "Figures per Month", compute="_compute_figures_html", sanitize=False)
    cdr_disputed_count = fields.Integer("Disputed", compute="_compute_figures_html")
    cdr_excluded_count = fields.Integer("Excluded", compute="_compute_figures_html")
    cdr_late_count = fields.Integer("Late", compute="_compute_figures_html")
    price_tolerance = fields.Float(
        digits=(16, 6),
        default=_default_price_tolerance,
        help="Difference (excl. VAT) between the CPO's stated total and our price "
        "above which a CDR is flagged as a mismatch.",
    )
    cdr_ids = fields.One2many("clearing.cdr", "contract_id", string="CDRs")
    cdr_count = fields.Integer("CDR Count", compute="_compute_tracking")
    cdr_energy_kwh = fields.Float("Energy (kWh)", compute="_compute_tracking", digits=(16, 3))
    cdr_amount_untaxed = fields.Monetary("Priced (excl. VAT)", compute="_compute_tracking")
    cdr_amount_total = fields.Monetary("Priced (incl. VAT)", compute="_compute_tracking")
    cdr_mismatch_count = fields.Integer("Mismatches", compute="_compute_tracking")
    notes = fields.Html()
    ocpi_tariff_json = fields.Text(
        "OCPI Tariff (JSON)", compute="_compute_ocpi_tariff_json",
        help="The OCPI 2.2.1 Tariff object built from the grid.",
    )
    # ---------------------------------------------------------------- clearing periods
    open_dispute_policy = fields.Selection(
        [
            ("carry", "Exclude and carry to the next period"),
            ("bill", "Bill, settle later by credit note"),
        ],
        string="Disputes Open at Lock",
        default="carry",
        required=True,
        tracking=True,
        help="What happens to sessions whose dispute is still open when the period locks: "
        "either they leave the period and are billed with the next one once the dispute is "
        "settled (default: nothing disputed is invoiced), or they are billed now and an "
        "accepted dispute is settled later by a credit CDR.",
    )
    period_ids = fields.One2many("clearing.period", "contract_id", string="Clearing Periods")
    period_count = fields.Integer("Periods", compute="_compute_period_count")

    # ---------------------------------------------------------------- Invoicing
    invoice_journal_id = fields.Many2one(
        "account.journal", string="Invoicing Journal", check_company=True,
        domain="[('type', '=', 'sale' if role == 'cpo' else 'purchase')]",
        help="Journal of the period invoices (CPO role) or vendor bills (eMSP role); "
        "default: the company's first sales or purchase journal.",
    )
    invoice_review = fields.Boolean(
        "Leave Drafts for Review", tracking=True,
        help="Period invoices are created as drafts for an accountant to post and send. "
        "Default: posted and sent on the statement date, with no manual step.",
    )
    reverse_billing = fields.Boolean(
        "Reverse Billing (Self-Billing)", tracking=True, compute="_compute_reverse_billing",
        store=True, readonly=False,
        help="eMSP role only. We issue the invoice of each period in the CPO's name "
        "(self-billing, 'Autofacturation'): a vendor bill numbered by us in the company's "
        "self-billing journal (AUTO/YYYY/NNNN), carrying the legal mention, whose OCPI "
        "invoice reconciliation record is published to the CPO.",
    )

    _sql_constraints = [
        (
            "name_company_uniq",
            "unique(name, company_id)",
            "The contract reference must be unique per company.",
        ),
    ]

    # ------------------------------------------------------------------
    # Computes and constraints
    # ------------------------------------------------------------------
    @api.depends("tax_ids", "tax_ids.amount")
    def _compute_vat_rate(self):
        for contract in self:
            contract.vat_rate = sum(contract.tax_ids.mapped("amount"))

    @api.depends("role", "resale_line_ids")
    def _compute_has_resale_grid(self):
        for contract in self:
            contract.has_resale_grid = contract.role == "emsp" and bool(
                contract.resale_line_ids)

    def _compute_period_count(self):
        groups = dict(self.env["clearing.period"]._read_group(
            [("contract_id", "in", self.ids)], ["contract_id"], ["__count"]))
        for contract in self:
            contract.period_count = groups.get(contract, 0)

    @api.depends(
        "name", "currency_id", "role", "partner_id", "min_price", "max_price", "tax_ids",
        "price_line_ids", *("price_line_ids.%s" % fname for fname in (
            "sequence", "dimension", "price", "time_unit", "step_size", "start_time",
            "end_time", *(fname for _day, fname in WEEKDAY_FIELDS), "date_start", "date_end",
            "min_kwh", "max_kwh", "min_duration", "max_duration", "min_power", "max_power",
        )),
    )
    def _compute_ocpi_tariff_json(self):
        for contract in self:
            contract.ocpi_tariff_json = json.dumps(
                contract.to_ocpi_tariff(), indent=2, ensure_ascii=False
            )

    @api.model
    def _flush_for_costs(self):
        """Flush what ``_session_costs_sql`` and ``_fixed_cost_sql`` read."""
        self.env["clearing.cdr"].flush_model()
        self.env["clearing.contract.cost"].flush_model()
        self.flush_model(["company_id", "tz", "role", "has_resale_grid"])
        self.env["res.company"].flush_model(
            ["clearing_energy_cost", "clearing_session_cost", "clearing_monthly_cost"])

    @api.model
    def _session_costs_sql(self, where):
        """SQL rows ``(id, contract_id, period_id, local_day, revenue, cost)`` of the
        ``clearing_cdr`` rows (alias ``cdr``) fitting ``where``, attached to a contract, both 0
        for an excluded session; their difference is the session's margin.

        CPO hat: revenue is the billable untaxed amount, cost what the session costs us -- the
        energy cost per kWh and the cost per session of the contract's cost line covering its
        local end day, else the company's defaults; none for credit sessions. eMSP hat: those
        costs never apply; with a resale grid, revenue is the resale amount (what our drivers
        pay) and cost what the CPO bills us (the untaxed amount); without one, both are 0."""
        return SQL(
            """SELECT cdr.id, cdr.contract_id, cdr.period_id, sess.local_day,
                      CASE WHEN cdr.state = 'excluded' THEN 0
                           WHEN contract.role = 'emsp' THEN
                               CASE WHEN contract.has_resale_grid
                                    THEN coalesce(cdr.resale_amount, 0) ELSE 0 END
                           ELSE coalesce(cdr.amount_untaxed, 0) END AS revenue,
                      CASE WHEN cdr.state = 'excluded' THEN 0
                           WHEN contract.role = 'emsp' THEN
                               CASE WHEN contract.has_resale_grid
                                    THEN coalesce(cdr.amount_untaxed, 0) ELSE 0 END
                           WHEN coalesce(cdr.credit, FALSE) THEN 0
                           ELSE coalesce(cost.energy_cost, company.clearing_energy_cost, 0)
                                    ::numeric * abs(coalesce(cdr.energy_kwh, 0))
                                + coalesce(cost.session_cost, company.clearing_session_cost, 0)
                                    ::numeric END AS cost
                 FROM clearing_cdr cdr
                 JOIN clearing_contract contract ON contract.id = cdr.contract_id
                 JOIN res_company company ON company.id = contract.company_id
                 CROSS JOIN LATERAL (SELECT ((cdr.end_datetime AT TIME ZONE 'UTC')
                                    AT TIME ZONE coalesce(contract.tz, 'UTC'))::date AS local_day
                                    ) sess
                 LEFT JOIN LATERAL (
                     SELECT cc.energy_cost, cc.session_cost FROM clearing_contract_cost cc
                      WHERE cc.contract_id = cdr.contract_id AND cc.date_start <= sess.local_day
                        AND (cc.date_end IS NULL OR cc.date_end >= sess.local_day)
                      LIMIT 1) cost ON TRUE
                WHERE %s""", where)

    @api.model
    def _fixed_cost_sql(self, contract_id, day_from, day_to):
        """SQL scalar: the fixed monthly costs of the contract (SQL expression) over the days
        ``day_from`` to ``day_to`` (SQL dates, included), each day counting for its share of
        its month -- a calendar month costs exactly its monthly cost -- at the cost line
        covering that day, else the company default; 0 for an eMSP-side contract (the CPO
        hat's costs). Its own aliases are prefixed ``fixed_`` so that ``contract_id`` may name
        a column of the caller's query (``contract.id``)."""
        return SQL(
            """(SELECT coalesce(sum(coalesce(fixed_cost.monthly_cost, (
                        SELECT fixed_company.clearing_monthly_cost
                          FROM res_company fixed_company
                          JOIN clearing_contract fixed_contract
                            ON fixed_contract.company_id = fixed_company.id
                         WHERE fixed_contract.id = %(contract)s), 0)::numeric
                    / extract(day FROM date_trunc('month', fixed_day.day)
                                      + interval '1 month - 1 day')::numeric), 0)
                  FROM generate_series(%(day_from)s::date, %(day_to)s::date, interval '1 day')
                       AS fixed_day(day)
                  JOIN clearing_contract fixed_owner
                    ON fixed_owner.id = %(contract)s AND fixed_owner.role = 'cpo'
                  LEFT JOIN LATERAL (
                      SELECT fixed_line.monthly_cost FROM clearing_contract_cost fixed_line
                       WHERE fixed_line.contract_id = %(contract)s
                         AND fixed_line.date_start <= fixed_day.day::date
                         AND (fixed_line.date_end IS NULL OR fixed_line.date_end >= fixed_day.day::date)
                       LIMIT 1) fixed_cost ON TRUE)""",
            contract=contract_id, day_from=day_from, day_to=day_to)

    @api.model
    def _flush_for_figures(self):
        """Flush what ``_figures_by_month`` reads."""
        self._flush_for_costs()
        self.env["clearing.period"].flush_model(["contract_id", "date_start"])
        self.env["account.move"].flush_model([
            "clearing_period_id", "clearing_contract_id", "state", "move_type", "amount_total",
            "amount_residual", "invoice_date_due"])
        self.env["clearing.payment.exception"].flush_model(
            ["contract_id", "state", "date", "invoice_id"])
        self.env["clearing.invoice.reconciliation"].flush_model(["period_id", "finding_count"])

    def _figures_by_month(self):
        """Figures of the contracts per month, in one SQL query: ``{(contract id, first day of
        month): {figure: value}}``.

        From the sessions, by month of their end in the contract time zone, summed from the
        live figures per day (``clearing.contract.day``): sessions, kwh, priced, mismatched
        (count) and mismatch_amount (stated minus ours, excl. VAT), disputed, excluded, late,
        revenue (untaxed amount of the sessions not excluded), cost (what the sessions cost:
        the cost line covering each day, else the company defaults, see
        ``_session_costs_sql``), fixed_cost (of the month, ``_fixed_cost_sql``) and margin
        (revenue - cost - fixed_cost; the CPO hat). eMSP hat: resale (what our drivers pay
        under the resale grid); with a resale grid, cost is what the CPO bills us (revenue,
        the untaxed amount of the sessions), fixed_cost 0 and margin resale - cost; without
        one, margin is None (no margin, rather than a false 0).

        From accounting, by month of the clearing period the documents belong to (the month
        of the sessions they bill): billed (posted invoices or vendor bills, incl. VAT),
        credited (posted credit notes), paid (of the billed), outstanding (left to pay, credit
        notes deducted), overdue (left to pay past the due date); payment_exceptions (open; in
        the month of their invoice's period, else of their date); reconciliation_findings (findings of the OCPI invoice reconciliation
        records of the periods)."""
        if not self.ids:
            return {}
        self._flush_for_figures()
        counts = ("sessions", "priced", "mismatched", "disputed", "excluded", "late")
        amounts = ("kwh", "mismatch_amount", "revenue", "resale")
        money = ("billed", "credited", "paid", "outstanding", "overdue")
        cost_joins, cost = self.env["clearing.contract.day"]._cost_sql()
        rows = self.env.execute_query_dict(SQL(
            """WITH sess AS (
               SELECT d.contract_id, date_trunc('month', d.day)::date AS month,
                      %(sums)s, sum(%(cost)s) AS cost
                 FROM clearing_contract_day d %(cost_joins)s
                WHERE d.contract_id = ANY(%(ids)s)
             GROUP BY 1, 2
               HAVING sum(d.sessions) <> 0),
                    moves AS (
               SELECT period.contract_id, date_trunc('month', period.date_start)::date AS month,
                      sum(move.amount_total) FILTER (WHERE move.move_type IN %(invoices)s)
                          AS billed,
                      sum(move.amount_total) FILTER (WHERE move.move_type IN %(refunds)s)
                          AS credited,
                      sum(move.amount_total - move.amount_residual)
                          FILTER (WHERE move.move_type IN %(invoices)s) AS paid,
                      sum(CASE WHEN move.move_type IN %(invoices)s THEN move.amount_residual
                               ELSE -move.amount_residual END) AS outstanding,
                      sum(move.amount_residual)
                          FILTER (WHERE move.move_type IN %(invoices)s
                                    AND move.invoice_date_due < %(today)s) AS overdue
                 FROM account_move move
                 JOIN clearing_period period ON period.id = move.clearing_period_id
                WHERE move.clearing_contract_id = ANY(%(ids)s) AND move.state = 'posted'
             GROUP BY 1, 2),
                    exceptions AS (
               SELECT exc.contract_id,
                      date_trunc('month', coalesce(period.date_start, exc.date))::date AS month,
                      count(*) AS payment_exceptions
                 FROM clearing_payment_exception exc
                 LEFT JOIN account_move move ON move.id = exc.invoice_id
                 LEFT JOIN clearing_period period ON period.id = move.clearing_period_id
                WHERE exc.contract_id = ANY(%(ids)s) AND exc.state = 'open'
             GROUP BY 1, 2),
                    findings AS (
               SELECT period.contract_id, date_trunc('month', period.date_start)::date AS month,
                      sum(rec.finding_count) AS reconciliation_findings
                 FROM clearing_invoice_reconciliation rec
                 JOIN clearing_period period ON period.id = rec.period_id
                WHERE period.contract_id = ANY(%(ids)s) AND rec.finding_count > 0
             GROUP BY 1, 2),
                    months AS (
               SELECT contract_id, month FROM sess UNION SELECT contract_id, month FROM moves
               UNION SELECT contract_id, month FROM exceptions
               UNION SELECT contract_id, month FROM findings)
            SELECT months.contract_id, months.month, %(columns)s,
                   %(fixed)s AS fixed_cost
              FROM months
              LEFT JOIN sess USING (contract_id, month)
              LEFT JOIN moves USING (contract_id, month)
              LEFT JOIN exceptions USING (contract_id, month)
              LEFT JOIN findings USING (contract_id, month)
             ORDER BY 1, 2 DESC""",
            sums=SQL(", ").join(SQL("sum(d.%s) AS %s", SQL.identifier(name),
                                    SQL.identifier(name)) for name in counts + amounts),
            columns=SQL(", ").join(SQL("coalesce(%s, 0) AS %s", SQL.identifier(name),
                                       SQL.identifier(name)) for name in (
                *counts, *amounts, "cost", *money, "payment_exceptions",
                "reconciliation_findings")),
            cost_joins=cost_joins, cost=cost, ids=self.ids, today=fields.Date.today(),
            invoices=("out_invoice", "in_invoice"), refunds=("out_refund", "in_refund"),
            fixed=self._fixed_cost_sql(
                SQL("months.contract_id"), SQL("months.month"),
                SQL("(months.month + interval '1 month - 1 day')::date"))))
        contract_of = {contract.id: contract for contract in self}
        for row in rows:
            contract = contract_of[row["contract_id"]]
            currency = contract.currency_id
            for key in ("revenue", "resale", "mismatch_amount", "cost", "fixed_cost", *money):
                row[key] = to_decimal(currency.round(float(row[key])))
            for key in (*counts, "payment_exceptions", "reconciliation_findings"):
                row[key] = int(row[key])
            if contract.role == "cpo":
                row["margin"] = row["revenue"] - row["cost"] - row["fixed_cost"]
            elif contract.has_resale_grid:
                row["cost"] = row["revenue"]
                row["margin"] = row["resale"] - row["cost"]
            else:
                row["margin"] = None
        return {(row.pop("contract_id"), row.pop("month")): row for row in rows}

    def _compute_figures_html(self):
        figures = self._figures_by_month()
        labels = [
            ("sessions", _("Sessions")), ("kwh", _("kWh")), ("priced", _("Priced")),
            ("mismatched", _("Mismatched")), ("mismatch_amount", _("Mismatch amount")),
            ("disputed", _("Disputed")), ("excluded", _("Excluded")), ("late", _("Late")),
            ("revenue", _("Billable (excl. VAT)")), ("billed", _("Billed")),
            ("credited", _("Credited")), ("paid", _("Paid")),
            ("outstanding", _("Outstanding")), ("overdue", _("Overdue")),
            ("payment_exceptions", _("Open payment exceptions")),
            ("reconciliation_findings", _("Reconciliation findings")),
        ]
        margin_labels = [("cost", _("Session costs")), ("fixed_cost", _("Fixed costs")),
                         ("margin", _("Margin"))]
        # eMSP hat: billable is what the CPO bills us, the margin what our drivers pay more
        resale_labels = [("resale", _("Resale (excl. VAT)")), ("margin", _("Margin"))]
        for contract in self:
            months = sorted(((month, row) for (cid, month), row in figures.items()
                             if cid == contract._origin.id), key=lambda item: item[0],
                            reverse=True)
            for fname, key in (("cdr_disputed_count", "disputed"),
                               ("cdr_excluded_count", "excluded"), ("cdr_late_count", "late")):
                contract[fname] = sum(row[key] for _month, row in months)
            if not months:
                contract.figures_html = False
                continue
            columns = labels + (margin_labels if contract.role == "cpo"
                                 else resale_labels if contract.has_resale_grid else [])
            head = "".join("<th class='text-end'>%s</th>" % escape(label)
                           for _key, label in columns)
            body = []
            for month, row in months:
                cells = []
                for key, _label in columns:
                    value = row[key]
                    if key in ("mismatch_amount", "revenue", "resale", "cost", "fixed_cost",
                               "margin", "billed", "credited", "paid", "outstanding", "overdue"):
                        text = format_amount(self.env, float(value), contract.currency_id)
                    elif key == "kwh":
                        text = "%.3f" % value
                    else:
                        text = str(value)
                    cells.append("<td class='text-end'>%s</td>" % escape(text))
                body.append("<tr><td>%s</td>%s</tr>" % (month.strftime("%Y-%m"),
                                                         "".join(cells)))
            contract.figures_html = (
                "<table class='table table-sm o_clearing_figures'><thead><tr><th>%s</th>%s"
                "</tr></thead><tbody>%s</tbody></table>"
                % (escape(_("Month")), head, "".join(body)))

    def _compute_tracking(self):
        stats = {}
        if self.ids:
            groups = self.env["clearing.cdr"]._read_group(
                [("contract_id", "in", self.ids)],
                ["contract_id"],
                ["__count", "energy_kwh:sum", "amount_untaxed:sum", "amount_total:sum"],
            )
            for contract, count, kwh, untaxed, total in groups:
                stats[contract.id] = [count, kwh, untaxed, total, 0]
            mismatches = self.env["clearing.cdr"]._read_group(
                [("contract_id", "in", self.ids), ("price_mismatch", "=", True)],
                ["contract_id"],
                ["__count"],
            )
            for contract, count in mismatches:
                stats[contract.id][4] = count
        for contract in self:
            count, kwh, untaxed, total, mismatch = stats.get(
                contract._origin.id, [0, 0.0, 0.0, 0.0, 0]
            )
            contract.cdr_count = count
            contract.cdr_energy_kwh = kwh
            contract.cdr_amount_untaxed = untaxed
            contract.cdr_amount_total = total
            contract.cdr_mismatch_count = mismatch

    @api.constrains("billing_frequency", "billing_day")
    def _check_billing_day(self):
        for contract in self:
            if contract.billing_frequency == "weekly":
                if not 1 <= contract.billing_day <= 7:
                    raise ValidationError(
                        _(
                            "Contract %s: for weekly billing the billing day is a "
                            "weekday from 1 (Monday) to 7 (Sunday).",
                            contract.name,
                        )
                    )
            elif not 1 <= contract.billing_day <= 28:
                raise ValidationError(
                    _(
                        "Contract %s: for monthly or quarterly billing the billing "
                        "day must be between 1 and 28.",
                        contract.name,
                    )
                )

    @api.constrains("date_start", "date_end")
    def _check_dates(self):
        for contract in self:
            if contract.date_end and contract.date_end < contract.date_start:
                raise ValidationError(
                    _("Contract %s: the end date is before the start date.", contract.name)
                )

    @api.constrains("control_window_days", "price_tolerance", "min_price", "max_price")
    def _check_amounts(self):
        for contract in self:
            if contract.control_window_days <= 0:
                raise ValidationError(
                    _("Contract %s: the control window must be at least one day.",
                      contract.name)
                )
            if contract.price_tolerance < 0:
                raise ValidationError(
                    _("Contract %s: the price tolerance cannot be negative.", contract.name)
                )
            if contract.min_price < 0 or contract.max_price < 0:
                raise ValidationError(
                    _("Contract %s: minimum and maximum prices cannot be negative.",
                      contract.name)
                )
            if contract.max_price and contract.min_price > contract.max_price:
                raise ValidationError(
                    _("Contract %s: the minimum price is above the maximum price.",
                      contract.name)
                )

    @api.constrains("partner_id")
    def _check_partner_identity(self):
        for contract in self:
            partner = contract.partner_id
            if not (partner.ocpi_country_code and partner.ocpi_party_id):
                raise ValidationError(
                    _(
                        "Contract %(contract)s: the counterparty %(partner)s has no OCPI "
                        "identity (country code and party ID).",
                        contract=contract.name,
                        partner=partner.display_name,
                    )
                )
            if partner.commercial_partner_id != partner:
                raise ValidationError(
                    _(
                        "Contract %(contract)s: the counterparty must be a company, "
                        "not the contact %(partner)s.",
                        contract=contract.name,
                        partner=partner.display_name,
                    )
                )

    @api.depends("role")
    def _compute_reverse_billing(self):
        # only an eMSP contract can have it: switching the role to CPO clears it
        for contract in self:
            contract.reverse_billing = contract.role == "emsp" and contract.reverse_billing

    @api.constrains("reverse_billing", "role")
    def _check_reverse_billing(self):
        for contract in self:
            if contract.reverse_billing and contract.role != "emsp":
                raise ValidationError(_(
                    "Contract %(contract)s: reverse billing (self-billing) is only for contracts "
                    "where we are the eMSP; as the CPO we invoice the eMSP ourselves.",
                    contract=contract.name))

    @api.constrains("tax_ids", "role")
    def _check_taxes(self):
        for contract in self:
            expected = "sale" if contract.role == "cpo" else "purchase"
            expected_label = _("sale") if expected == "sale" else _("purchase")
            for tax in contract.tax_ids:
                if tax.amount_type != "percent":
                    raise ValidationError(
                        _("Contract %(contract)s: tax %(tax)s is not a percentage.",
                          contract=contract.name, tax=tax.name)
                    )
                if tax.price_include:
                    raise ValidationError(
                        _(
                            "Contract %(contract)s: tax %(tax)s is included in price; "
                            "grid prices are excl. VAT.",
                            contract=contract.name,
                            tax=tax.name,
                        )
                    )
                if tax.type_tax_use != expected:
                    raise ValidationError(
                        _(
                            "Contract %(contract)s: tax %(tax)s must be a %(type)s tax "
                            "for this role.",
                            contract=contract.name,
                            tax=tax.name,
                            type=expected_label,
                        )
                    )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not vals.get("name") or vals["name"] == _("New"):
                company = self.env["res.company"].browse(
                    vals.get("company_id") or self.env.company.id
                )
                vals["name"] = self.env["ir.sequence"].with_company(
                    company
                ).next_by_code("clearing.contract") or _("New")
        contracts = super().create(vals_list)
        contracts.filtered(lambda c: c.state == "active")._rematch_unmatched_cdrs()
        return contracts

    def write(self, vals):
        # found (and refused when one of them can no longer change) before anything is written
        leaving = self._cdrs_leaving(vals) if RULE_FIELDS & set(vals) else None
        res = super().write(vals)
        if REMATCH_FIELDS & set(vals):
            self.filtered(lambda c: c.state == "active")._rematch_unmatched_cdrs()
        if leaving:
            # to another contract that fits, or unmatched with the reason
            leaving.reprice()
        if "tz" in vals:
            # the figures per day follow the sessions' local end day
            self.env["clearing.contract.day"].rebuild_figures(self)
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_except_with_cdrs(self):
        for contract in self:
            if contract.cdr_ids:
                raise UserError(
                    _("Contract %s has CDRs: close it instead of deleting it.",
                      contract.name)
                )

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_activate(self):
        for contract in self:
            if contract.state != "draft":
                raise UserError(_("Only draft contracts can be activated."))
            if not contract.price_line_ids:
                raise UserError(
                    _("Contract %s has no price grid line.", contract.name)
                )
        self.write({"state": "active"})

    def action_close(self):
        if self.filtered(lambda c: c.state != "active"):
            raise UserError(_("Only active contracts can be closed."))
        self.write({"state": "closed"})

    def action_reset_to_draft(self):
        self.write({"state": "draft"})

    def action_view_cdrs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_cdr"
        )
        action["domain"] = [("contract_id", "=", self.id)]
        action["context"] = {"default_contract_id": self.id}
        return action

    def action_view_periods(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_period")
        action["domain"] = [("contract_id", "=", self.id)]
        action["context"] = {"search_default_contract_id": self.id}
        action["name"] = _("Clearing Periods of %s", self.name)
        return action

    def _action_view_cdrs_where(self, domain, name):
        action = self.action_view_cdrs()
        action["domain"] = [("contract_id", "=", self.id)] + domain
        action["name"] = name
        return action

    def action_view_disputed(self):
        return self._action_view_cdrs_where(
            [("dispute_state", "not in", ("none", False))], _("Disputed sessions"))

    def action_view_excluded(self):
        return self._action_view_cdrs_where([("state", "=", "excluded")],
                                            _("Excluded sessions"))

    def action_view_late(self):
        return self._action_view_cdrs_where([("is_late", "=", True)], _("Late sessions"))

    def action_resale_margin(self):
        """eMSP hat: the sessions of a past range priced with the resale grid (revenue) next
        to what the CPO bills us for them (cost) -- the what-if simulation with the resale
        grid."""
        self.ensure_one()
        if not self.resale_line_ids:
            raise UserError(_("Contract %s has no resale grid.", self.name))
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_whatif")
        action["context"] = {"default_contract_id": self.id, "default_resale": True}
        action["name"] = _("Resale margin of %s", self.name)
        return action

    def _reprice_resale(self, all_sessions=False):
        """The resale grid of these contracts changed: the resale amount of their sessions
        that may still change (``clearing.cdr._contract_movable_domain``: locked, excluded and
        disputed sessions and our dispute credits keep theirs, as a grid change leaves them;
        with ``all_sessions``, every session but our dispute credits, which have no OCPI CDR
        of their own: the migration that introduced the resale amount)
        priced again with the engine, set-based: the ids selected in one query per contract,
        their JSON read (only what the engine reads, ``PRICING_JSON``) and priced in chunks of
        ``RESALE_CHUNK``, one ``UPDATE ... FROM (VALUES ...)`` per chunk writing only the
        amounts that change (the trigger of the day figures adds their difference). Without
        a resale grid any more, the amounts go back to 0 in one statement."""
        if not self:
            return
        cdr_model = self.env["clearing.cdr"].sudo()
        cdr_model.flush_model()
        for contract in self.sudo().exists():
            tariff = cdr_model._resale_tariff(contract, {})
            domain = ([("dispute_credit", "=", False)] if all_sessions
                      else cdr_model._contract_movable_domain())
            query = cdr_model._search([("contract_id", "=", contract.id)] + domain, order="id")
            ids = [row[0] for row in self.env.execute_query(
                query.select(SQL.identifier(cdr_model._table, "id")))]
            if not ids:
                continue
            if tariff is None:
                self.env.cr.execute(SQL(
                    """UPDATE clearing_cdr
                          SET resale_amount = 0,
                              write_date = now() at time zone 'UTC', write_uid = %s
                        WHERE id = ANY(%s) AND coalesce(resale_amount, 0) <> 0""",
                    self.env.uid, ids))
                continue
            code = contract.currency_id.name
            for start in range(0, len(ids), RESALE_CHUNK):
                rows = self.env.execute_query(SQL(
                    """SELECT id, %s, coalesce(credit, FALSE)
                         FROM clearing_cdr WHERE id = ANY(%s)""",
                    PRICING_JSON, ids[start:start + RESALE_CHUNK]))
                values = []
                for cdr_id, raw, credit in rows:
                    result = cdr_model._price_ocpi(ocpi.parse_cdr(raw, strict=False), tariff,
                                                   contract)
                    amount = cdr_model._priced_amounts(result, code, credit)["amount_untaxed"]
                    values.append(SQL("(%s, %s::numeric)", cdr_id, amount))
                self.env.cr.execute(SQL(
                    """UPDATE clearing_cdr cdr
                          SET resale_amount = v.amount,
                              write_date = now() at time zone 'UTC', write_uid = %s
                         FROM (VALUES %s) AS v(id, amount)
                        WHERE cdr.id = v.id AND cdr.resale_amount IS DISTINCT FROM v.amount""",
                    self.env.uid, SQL(", ").join(values)))
        cdr_model.invalidate_model(["resale_amount", "cost_amount", "margin", "write_date",
                                    "write_uid"])
        self.env["clearing.period"].invalidate_model(["cost_amount", "margin"])

    def action_view_figures(self):
        """The contract's sessions as a pivot by month (the figures of the Figures tab)."""
        action = self.action_view_cdrs()
        action["view_mode"] = "pivot,graph,list,form"
        action["views"] = [(False, "pivot"), (False, "graph"), (False, "list"), (False, "form")]
        action["name"] = _("Figures of %s", self.name)
        return action

    def action_view_mismatches(self):
        action = self.action_view_cdrs()
        action["domain"] = [("contract_id", "=", self.id), ("price_mismatch", "=", True)]
        return action

    # ------------------------------------------------------------------
    # OCPI tariff
    # ------------------------------------------------------------------
    def _invoice_journal(self):
        """Journal of this contract's period moves (the contract's, else the company's; with
        reverse billing, the company's self-billing journal, numbered by us)."""
        self.ensure_one()
        if self.reverse_billing:
            return self.company_id._clearing_self_billing_journal()
        journal = self.invoice_journal_id or self.env["account.journal"].search([
            *self.env["account.journal"]._check_company_domain(self.company_id),
            ("type", "=", "sale" if self.role == "cpo" else "purchase"),
        ], limit=1)
        if journal.type == "sale" and journal.invoice_reference_model != "euro":
            # the payment reference is the ISO 11649 creditor reference (RF...), which the
            # payment matching reads
            journal.sudo().invoice_reference_model = "euro"
        return journal

    def _cpo_partner(self):
        """Partner whose OCPI identity is the CPO side of the agreement."""
        self.ensure_one()
        return self.company_id.partner_id if self.role == "cpo" else self.partner_id

    def _vat_decimal(self):
        self.ensure_one()
        if not self.tax_ids:
            return None
        return sum(
            (float_to_decimal(tax.amount) for tax in self.tax_ids), Decimal(0)
        )

    def to_ocpi_tariff(self, version=ocpi.V221):
        """The OCPI Tariff object of ``version`` (2.2.1 or 2.3.0) equivalent to this contract's
        grid. The grid's prices are before taxes: 2.3.0 ``tax_included`` is NO."""
        self.ensure_one()
        if version != ocpi.V221:
            return ocpi.tariff_dict_to_version(self.to_ocpi_tariff(), version)
        return self._ocpi_tariff_of(self.price_line_ids, self.name)

    def to_ocpi_resale_tariff(self):
        """eMSP hat: the OCPI 2.2.1 Tariff of the resale grid (what our drivers pay for the
        sessions the CPO bills us), built as the contract's own grid (``_ocpi_tariff_of``:
        currency, VAT, elements), without the contract's minimum and maximum price, which are
        the CPO's terms; id ``<contract>/resale``. False when there is no resale grid."""
        self.ensure_one()
        if not self.resale_line_ids:
            return False
        return self._ocpi_tariff_of(self.resale_line_ids, "%s/resale" % self.name,
                                    min_max=False)

    def _ocpi_tariff_of(self, lines, tariff_id, min_max=True):
        """The OCPI 2.2.1 Tariff of grid ``lines`` (clearing.price.line) under this contract's
        terms: the CPO side's identity, currency, VAT of the taxes on every component and,
        with ``min_max``, the contract's minimum and maximum price."""
        self.ensure_one()
        cpo = self._cpo_partner()
        vat = self._vat_decimal()
        tariff = {
            "country_code": cpo.ocpi_country_code or "",
            "party_id": cpo.ocpi_party_id or "",
            "id": tariff_id,
            "currency": self.currency_id.name,
            "type": "REGULAR",
            "elements": [
                line._to_ocpi_element(vat=vat)
                for line in lines.sorted("sequence")
            ],
            "last_updated": (self.write_date or fields.Datetime.now()).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        precision = self.currency_id.rounding
        for fname in ("min_price", "max_price") if min_max else ():
            if not float_is_zero(self[fname], precision_rounding=precision):
                tariff[fname] = {"excl_vat": decimal_to_json(float_to_decimal(self[fname]))}
        return tariff

    def _lines_from_ocpi_tariff(self, tariff):
        """Replace the grid with the lines of an OCPI tariff (dict, 2.2.1 or 2.3.0).

        One line per price component; restrictions are copied. The tariff currency
        must be the contract's; min/max price are imported too. A 2.3.0 tariff whose prices
        include the taxes (``tax_included`` YES) is refused: the grid's prices are before taxes.
        """
        self.ensure_one()
        if not isinstance(tariff, dict):
            raise ValidationError(_("$: an OCPI tariff must be a JSON object."))
        if tariff.get("tax_included") == "YES":
            raise ValidationError(_(
                "$.tax_included: the tariff's prices include the taxes (YES); a contract grid "
                "holds prices before taxes. Ask the CPO for the tariff before taxes."))
        tariff = ocpi.tariff_dict_to_version(tariff, ocpi.V221)
        currency = tariff.get("currency")
        if currency and currency != self.currency_id.name:
            raise ValidationError(
                _(
                    "$.currency: the tariff is in %(tariff)s, contract %(contract)s in "
                    "%(currency)s.",
                    tariff=currency,
                    contract=self.name,
                    currency=self.currency_id.name,
                )
            )
        line_model = self.env["clearing.price.line"]
        commands = [fields.Command.clear()]
        sequence = 0
        for index, element in enumerate(tariff.get("elements") or []):
            for vals in line_model._vals_from_ocpi_element(
                element, path="$.elements[%d]" % index
            ):
                sequence += 10
                vals["sequence"] = sequence
                commands.append(fields.Command.create(vals))
        vals = {"price_line_ids": commands}
        for fname in ("min_price", "max_price"):
            price = tariff.get(fname) or {}
            vals[fname] = float(to_decimal(price.get("excl_vat", 0)))
        self.write(vals)
        return self.price_line_ids

    # ------------------------------------------------------------------
    # Matching
    # ------------------------------------------------------------------
    @api.model
    def _find_for_cdr(self, cdr):
        """Contract of ``cdr`` (a clearing.cdr record) and, when none, why.

        Returns ``(contract, reason)``; ``contract`` is empty when unmatched. Two steps: the
        contracts of the CDR's identities (``_match_candidates``, the same for every CDR of a
        company, sender and token issuer), then the one its currency and end date select
        (``_match_select``); ``clearing.cdr._match`` memoises the first per identities and the
        second per currency and local end dates."""
        contracts, reason = self._match_candidates(
            cdr.company_id, cdr.country_code, cdr.party_id, cdr.token_country_code,
            cdr.token_party_id)
        if reason:
            return contracts, reason
        return contracts._match_select(cdr.currency_id, cdr.end_datetime)

    @api.model
    def _match_candidates(self, company, country_code, party_id, token_country_code,
                          token_party_id):
        """``(contracts, reason)``: the active contracts of ``company`` a CDR with this sender
        and token issuer can belong to, whatever its currency and date -- or no contract and
        why (the final reason of ``_find_for_cdr`` then)."""
        own = company.partner_id
        own_identity = (
            (own.ocpi_country_code, own.ocpi_party_id)
            if own.ocpi_country_code and own.ocpi_party_id
            else None
        )
        sender = ((country_code or "").upper(), (party_id or "").upper())
        issuer = ((token_country_code or "").upper(), (token_party_id or "").upper())
        # (role, counterparty identity, label) the CDR can belong to.
        candidates = []
        if own_identity is None or sender == own_identity:
            candidates.append(
                ("cpo", issuer, _("no active contract with eMSP %s", "*".join(issuer)))
            )
        if own_identity is None or issuer == own_identity:
            candidates.append(
                ("emsp", sender, _("no active contract with CPO %s", "*".join(sender)))
            )
        if not candidates:
            return self.browse(), _(
                "CDR sent by %(sender)s for a token of %(issuer)s: neither is our "
                "identity %(own)s",
                sender="*".join(sender),
                issuer="*".join(issuer),
                own="*".join(own_identity),
            )
        contracts = self.browse()
        for role, identity, _missing in candidates:
            contracts |= self.search(
                [
                    ("company_id", "=", company.id),
                    ("state", "=", "active"),
                    ("role", "=", role),
                    ("partner_id.ocpi_country_code", "=", identity[0]),
                    ("partner_id.ocpi_party_id", "=", identity[1]),
                ]
            )
        if not contracts:
            return self.browse(), _(" nor ").join(
                [missing for _role, _identity, missing in candidates]
            )
        return contracts, False

    def _match_select(self, currency, end_datetime):
        """``(contract, reason)`` of ``_find_for_cdr`` among the candidate contracts ``self``
        (``_match_candidates``) for a CDR in ``currency`` ended at ``end_datetime`` (naive
        UTC): it depends on nothing else than the currency and the end date in the time zone
        of each contract in that currency."""
        contracts = self
        reasons = []
        in_currency = contracts.filtered(lambda c: c.currency_id == currency)
        for contract in contracts - in_currency:
            reasons.append(
                _(
                    "contract %(contract)s is in %(contract_currency)s, CDR in "
                    "%(cdr_currency)s",
                    contract=contract.name,
                    contract_currency=contract.currency_id.name,
                    cdr_currency=currency.name,
                )
            )
        valid = self.browse()
        for contract in in_currency:
            end_date = contract._local_date(end_datetime)
            if contract.date_start <= end_date and (
                not contract.date_end or end_date <= contract.date_end
            ):
                valid |= contract
            else:
                reasons.append(
                    _(
                        "CDR ended %(date)s, outside contract %(contract)s validity "
                        "%(start)s..%(end)s",
                        date=end_date,
                        contract=contract.name,
                        start=contract.date_start,
                        end=contract.date_end or "",
                    )
                )
        if len(valid) == 1:
            return valid, False
        if len(valid) > 1:
            return self.browse(), _(
                "ambiguous: contracts %s", ", ".join(valid.sorted("name").mapped("name"))
            )
        return self.browse(), "; ".join(reasons)

    def _local_date(self, dt):
        """Date of the naive-UTC datetime ``dt`` in the contract time zone."""
        self.ensure_one()
        return pytz.utc.localize(dt).astimezone(pytz.timezone(self.tz)).date()

    def _rematch_unmatched_cdrs(self):
        """Match and price the company's unmatched CDRs that may belong to ``self``."""
        cdr_model = self.env["clearing.cdr"]
        for company in self.company_id:
            contracts = self.filtered(lambda c: c.company_id == company)
            identities = {
                (c.partner_id.ocpi_country_code, c.partner_id.ocpi_party_id)
                for c in contracts
            }
            if not any(country and party for country, party in identities):
                continue  # a contract without an OCPI identity matches no CDR
            domain = expression.AND([
                [("company_id", "=", company.id), ("match_state", "=", "unmatched")],
                cdr_model._identities_domain(identities)])
            cdrs = cdr_model.search(domain)
            cdrs.reprice()

    # ------------------------------------------------------------------
    # Rule changes: the CDRs attached to a contract follow its rule
    # ------------------------------------------------------------------
    def _matching_rule(self, vals=None, identities=None):
        """What decides which CDRs belong to the contract (``_find_for_cdr``; the state only
        concerns new CDRs: a closed contract keeps its CDRs), once ``vals`` is written.

        ``identities``: ``{partner id: (country code, party id)}``, OCPI identities about to be
        written on partners (``res.partner.write``), read instead of the stored ones for the
        counterparty and for our company's partner."""
        self.ensure_one()
        vals = vals or {}
        identities = identities or {}

        def value(fname):
            if fname not in vals:
                return self[fname]
            field = self._fields[fname]
            return field.convert_to_record(field.convert_to_cache(vals[fname], self), self)

        def identity(partner):
            if partner.id in identities:
                return identities[partner.id]
            return (partner.ocpi_country_code or False, partner.ocpi_party_id or False)

        company = value("company_id")
        own = identity(company.partner_id)
        return {
            "company": company,
            "currency": value("currency_id"),
            "role": value("role"),
            "identity": identity(value("partner_id")),
            # ours counts only when complete, as in _find_for_cdr
            "own": own if own[0] and own[1] else None,
            "date_start": value("date_start"),
            "date_end": value("date_end"),
            "tz": value("tz"),
        }

    @staticmethod
    def _day_start_utc(day, tz):
        """First instant (naive UTC) of the local ``day`` in ``tz``: the earliest instant whose
        date in ``tz`` is ``day`` (a midnight skipped or repeated by a clock change included)."""
        midnight = datetime.combine(day, time.min)
        starts = []
        for is_dst in (True, False):
            instant = tz.localize(midnight, is_dst=is_dst).astimezone(pytz.utc)
            if instant.astimezone(tz).date() == day:
                starts.append(instant.replace(tzinfo=None))
        return min(starts)

    @api.model
    def _rule_sql(self, rule, alias="clearing_cdr"):
        """SQL condition: the ``clearing_cdr`` row ``alias`` fits ``rule`` (see
        ``_matching_rule``) as ``_find_for_cdr`` reads it: company, currency, OCPI identities
        (case-insensitive on the CDR side, ours included when the company has one) and the
        date of its end in the contract time zone within the validity dates."""
        def column(fname):
            return SQL.identifier(alias, fname)

        def upper(fname):
            return SQL("upper(coalesce(%s, ''))", column(fname))

        identity = rule["identity"]
        if not (identity[0] and identity[1]):
            return SQL("FALSE")
        tz = pytz.timezone(rule["tz"] or "UTC")
        conditions = [
            SQL("%s = %s", column("company_id"), rule["company"].id),
            SQL("%s = %s", column("currency_id"), rule["currency"].id),
            SQL("%s >= %s", column("end_datetime"), self._day_start_utc(rule["date_start"], tz)),
        ]
        if rule["date_end"]:
            conditions.append(SQL("%s < %s", column("end_datetime"), self._day_start_utc(
                rule["date_end"] + timedelta(days=1), tz)))
        # we are the CPO: the token is the counterparty's (an eMSP), we sent the CDR
        theirs, ours = (("token_country_code", "token_party_id"), ("country_code", "party_id"))
        if rule["role"] == "emsp":
            theirs, ours = ours, theirs
        conditions += [SQL("%s = %s", upper(theirs[0]), identity[0]),
                       SQL("%s = %s", upper(theirs[1]), identity[1])]
        own = rule["own"]
        if own:
            conditions += [SQL("%s = %s", upper(ours[0]), own[0]),
                           SQL("%s = %s", upper(ours[1]), own[1])]
        return SQL("(%s)", SQL(" AND ").join(conditions))

    def _cdrs_leaving(self, vals, identities=None):
        """The CDRs attached to ``self`` that the rule written by ``vals`` (and the partner
        ``identities``, see ``_matching_rule``) no longer covers, to be matched again once they
        are written. One query per contract whose rule changes (the dates compared in SQL);
        CDRs that still fit are not touched.

        Raises a UserError -- nothing is written then -- when one of them can no longer change
        contract: locked by its clearing period, excluded, disputed (``_contract_movable_domain``
        of clearing.cdr)."""
        leaving = self.env["clearing.cdr"]
        contracts = self.filtered("id")
        if not contracts:
            return leaving
        # every CDR of the contract, whoever writes (a record rule must not hide a locked one)
        cdr_model = leaving.sudo()
        cdr_model.flush_model()
        movable = cdr_model._search(cdr_model._contract_movable_domain()).where_clause
        locked = cdr_model._search([("locked", "=", True)]).where_clause
        table = cdr_model._table
        for contract in contracts:
            rule = contract._matching_rule(vals, identities)
            old_rule = contract._matching_rule()
            if rule == old_rule or not all(
                    rule[key] for key in ("company", "currency", "role", "date_start", "tz")):
                continue  # nothing changes, or the write fails on a required field
            query = cdr_model._search([("contract_id", "=", contract.id)],
                                      order="end_datetime, id")
            query.add_where(SQL("NOT %s", self._rule_sql(rule, table)))
            rows = self.env.execute_query(query.select(
                SQL.identifier(table, "id"),
                SQL("coalesce(%s, FALSE)", movable),
                SQL("coalesce(%s, FALSE)", locked),
                SQL.identifier(table, "ocpi_id"),
                SQL.identifier(table, "end_datetime"),
            ))
            frozen = [row for row in rows if not row[1]]
            if frozen:
                if identities:
                    raise UserError(contract._frozen_identity_message(rule, old_rule, frozen))
                raise UserError(contract._frozen_cdrs_message(rule, old_rule, frozen))
            leaving |= leaving.browse([row[0] for row in rows])
        return leaving

    def _frozen_cdrs_message(self, rule, old_rule, frozen):
        """Why the change from ``old_rule`` to ``rule`` is refused: ``frozen`` rows ``(id,
        movable, locked, ocpi_id, end_datetime)``, earliest end first, would leave."""
        self.ensure_one()
        changed = {key for key in rule if rule[key] != old_rule[key]}
        if "company" in changed:
            changed.discard("own")  # ours is the new company's
        if changed <= {"date_start", "date_end"}:
            change = _("the new validity dates")
        elif changed == {"tz"}:
            change = _("the validity dates in the new time zone")
        elif changed == {"currency"}:
            change = _("the new currency")
        elif changed == {"identity"}:
            change = _("the new counterparty")
        elif changed == {"role"}:
            change = _("the new role")
        elif changed == {"company"}:
            change = _("the new company")
        else:
            change = _("the new contract terms")
        _id, _movable, _locked, ocpi_id, end = frozen[0]
        args = {
            "contract": self.name,
            "count": len(frozen),
            "cdr": ocpi_id,
            "date": pytz.utc.localize(end).astimezone(pytz.timezone(rule["tz"] or "UTC")).date(),
            "change": change,
        }
        if all(row[2] for row in frozen):
            if len(frozen) == 1:
                return _(
                    "Contract %(contract)s: the locked CDR %(cdr)s (ended %(date)s) no longer "
                    "fits %(change)s. Locked CDRs cannot change contract; close this contract "
                    "and create a new one instead.", **args)
            return _(
                "Contract %(contract)s: %(count)s locked CDRs (first: %(cdr)s, ended %(date)s) "
                "no longer fit %(change)s. Locked CDRs cannot change contract; close this "
                "contract and create a new one instead.", **args)
        if len(frozen) == 1:
            return _(
                "Contract %(contract)s: CDR %(cdr)s (ended %(date)s), excluded from billing or "
                "disputed, no longer fits %(change)s. Such a CDR cannot change contract; close "
                "this contract and create a new one instead.", **args)
        return _(
            "Contract %(contract)s: %(count)s CDRs that are locked, excluded from billing or "
            "disputed (first: %(cdr)s, ended %(date)s) no longer fit %(change)s. These CDRs "
            "cannot change contract; close this contract and create a new one instead.", **args)

    def _frozen_identity_message(self, rule, old_rule, frozen):
        """Why a partner's new OCPI identity (the ``identities`` of ``_cdrs_leaving``) is
        refused: ``frozen`` rows as in ``_frozen_cdrs_message`` would leave ``self``."""
        self.ensure_one()
        theirs = rule["identity"] != old_rule["identity"]  # else ours changes
        key = "identity" if theirs else "own"
        old, new = old_rule[key], rule[key]
        partner = self.partner_id if theirs else self.company_id.partner_id
        if theirs and all(new):
            advice = _("Keep this identity and give the new one to a new partner with its own "
                       "contracts.")
        else:  # our company, or no identity any more
            advice = _("Keep this identity.")
        none = _("no identity")

        def label(identity):
            return "*".join(identity) if identity and all(identity) else none

        _id, _movable, _locked, ocpi_id, end = frozen[0]
        args = {
            "partner": partner.display_name,
            "old": label(old),
            "new": label(new),
            "contract": self.name,
            "count": len(frozen),
            "cdr": ocpi_id,
            "date": pytz.utc.localize(end).astimezone(pytz.timezone(rule["tz"] or "UTC")).date(),
            "advice": advice,
        }
        if all(row[2] for row in frozen):
            if len(frozen) == 1:
                return _(
                    "%(partner)s cannot change its OCPI identity from %(old)s to %(new)s: the "
                    "locked CDR %(cdr)s (ended %(date)s) would no longer fit its contract "
                    "%(contract)s. Locked CDRs cannot change contract. %(advice)s", **args)
            return _(
                "%(partner)s cannot change its OCPI identity from %(old)s to %(new)s: "
                "%(count)s locked CDRs (first: %(cdr)s, ended %(date)s) would no longer fit "
                "their contract %(contract)s. Locked CDRs cannot change contract. %(advice)s",
                **args)
        if len(frozen) == 1:
            return _(
                "%(partner)s cannot change its OCPI identity from %(old)s to %(new)s: CDR "
                "%(cdr)s (ended %(date)s), excluded from billing or disputed, would no longer "
                "fit its contract %(contract)s. Such a CDR cannot change contract. %(advice)s",
                **args)
        return _(
            "%(partner)s cannot change its OCPI identity from %(old)s to %(new)s: %(count)s "
            "CDRs that are locked, excluded from billing or disputed (first: %(cdr)s, ended "
            "%(date)s) would no longer fit their contract %(contract)s. These CDRs cannot "
            "change contract. %(advice)s", **args)

    # ------------------------------------------------------------------
    # Partner identity changes: the CDRs follow the OCPI identities too
    # ------------------------------------------------------------------
    @api.model
    def _identity_change_prepare(self, identities):
        """Before ``res.partner.write`` gives the partners of ``identities`` (``{partner id:
        (country code, party id)}``) their new OCPI identity: the CDRs leaving the contracts
        whose rule changes (counterparty or our company's partner among those partners; any
        state: a closed contract keeps its CDRs), to hand to ``_identity_change_apply`` once
        written. Raises a UserError naming the partner and the contract -- nothing is
        written then -- when one of them cannot change contract (see ``_cdrs_leaving``)."""
        # every contract, whoever writes the partner (the rule is the data's, not the user's)
        contracts = self.sudo().search([
            "|", ("partner_id", "in", list(identities)),
            ("company_id.partner_id", "in", list(identities)),
        ])
        # a contract's counterparty and our company need their identity (matching, and the
        # OCPI tariff of the grid names the CPO): it can change, not go
        removed = {pid for pid, identity in identities.items() if not any(identity)}
        users = contracts.filtered(lambda c: removed & {c.partner_id.id,
                                                        c.company_id.partner_id.id})
        if users:
            partner = self.env["res.partner"].sudo().browse(
                next(pid for pid in identities if pid in removed and pid in (
                    users.partner_id | users.company_id.partner_id).ids))
            names = users.sorted("name").mapped("name")
            raise UserError(_(
                "The OCPI identity %(identity)s of %(partner)s cannot be removed: the clearing "
                "contracts %(contracts)s match and price CDRs with it. Change it instead.",
                identity=partner.ocpi_identity, partner=partner.display_name,
                contracts=", ".join(names[:5]) + (", …" if len(names) > 5 else "")))
        return contracts._cdrs_leaving({}, identities)

    @api.model
    def _identity_change_apply(self, leaving, identities):
        """Once the identities are written: ``leaving`` go to another contract that fits, or
        unmatched with the reason; then the unmatched CDRs linked to a partner of
        ``identities`` (its old identity) or carrying one of the new identities are matched
        again -- those that now fit a contract are matched and priced, the others name the
        partner that carries their identity now (contracts or not)."""
        if leaving:
            leaving.reprice()
        cdr_model = self.env["clearing.cdr"].sudo()
        stale = cdr_model.search(expression.AND([
            [("match_state", "=", "unmatched")],
            cdr_model._contract_movable_domain(),
            expression.OR([[("partner_id", "in", list(identities))],
                           cdr_model._identities_domain(set(identities.values()))]),
        ]))
        (stale - leaving).reprice()

    # ------------------------------------------------------------------ payments
    payment_exception_count = fields.Integer(
        "Open Payment Exceptions", compute="_compute_payment_exception_count")

    def _compute_payment_exception_count(self):
        groups = self.env["clearing.payment.exception"]._read_group(
            [("contract_id", "in", self.ids), ("state", "=", "open")],
            ["contract_id"], ["__count"])
        counts = {contract.id: n for contract, n in groups}
        for contract in self:
            contract.payment_exception_count = counts.get(contract.id, 0)

    def action_view_payment_exceptions(self):
        self.ensure_one()
        action = self.env["ir.actions.actions"]._for_xml_id(
            "emsp_clearing.action_clearing_payment_exception")
        action["domain"] = [("contract_id", "=", self.id)]
        action["context"] = {"search_default_open": 1, "default_contract_id": self.id}
        return action

    # ------------------------------------------------------------------ the Clearing overview
    # One card per active contract (views: the overview kanban), every figure of every card
    # from one query (``_overview_data``).
    overview_period_id = fields.Many2one(
        "clearing.period", string="Current Period", compute="_compute_overview",
        help="The oldest period not locked yet (in control or open), else the latest one.")
    overview_period_state = fields.Selection(
        selection="_selection_period_state", string="Current Period State",
        compute="_compute_overview")
    overview_window_days = fields.Integer(
        "Days Left", compute="_compute_overview",
        help="Days left before the current period locks (its control window closes).")
    overview_open_disputes = fields.Integer("Open Disputes", compute="_compute_overview")
    overview_billed = fields.Monetary(
        "Billed, 12 Months", compute="_compute_overview",
        help="Posted invoices (vendor bills when we are the eMSP) of the last 12 months, "
        "incl. VAT.")
    overview_paid = fields.Monetary(
        "Paid, 12 Months", compute="_compute_overview",
        help="What was paid of those invoices or vendor bills.")
    overview_overdue = fields.Monetary(
        "Overdue", compute="_compute_overview",
        help="Left to pay on posted invoices or vendor bills past their due date.")
    overview_margin_month = fields.Monetary(
        "Margin This Month", compute="_compute_overview",
        help="CPO hat: billable sessions of the month (excl. VAT) minus their costs and the "
        "fixed cost of the month. eMSP hat with a resale grid: what our drivers pay for the "
        "sessions of the month (resale grid, excl. VAT) minus what the CPO bills us for them.")
    overview_graph = fields.Text("Billable per Month", compute="_compute_overview")

    @api.model
    def _selection_period_state(self):
        return self.env["clearing.period"]._fields["state"]._description_selection(self.env)

    def _overview_window(self):
        """(first day of the current month, first day of the 12-month window), today in the
        user's time zone."""
        today = fields.Date.context_today(self)
        month = today.replace(day=1)
        return today, month, (month - relativedelta(months=11))

    def _overview_data(self):
        """Every figure of the overview cards of these contracts, in one query: ``{contract
        id: {period_id, period_state, lock_date, open_disputes, billed, paid, overdue,
        month_cost, month_resale, fixed_cost, months: {first day of month: billable excl.
        VAT}}}``."""
        if not self.ids:
            return {}
        self._flush_for_figures()
        self.env["clearing.period"].flush_model(["state", "lock_date"])
        self.env["clearing.dispute"].flush_model(["contract_id", "state"])
        self.env["account.move"].flush_model(["invoice_date"])
        today, month, since = self._overview_window()
        cost_joins, cost = self.env["clearing.contract.day"]._cost_sql()
        rows = self.env.execute_query_dict(SQL(
            """WITH current AS (
               SELECT DISTINCT ON (period.contract_id) period.contract_id,
                      period.id AS period_id, period.state AS period_state,
                      period.lock_date
                 FROM clearing_period period
                WHERE period.contract_id = ANY(%(ids)s)
             ORDER BY period.contract_id, period.state IN ('open', 'control') DESC,
                      CASE WHEN period.state IN ('open', 'control') THEN period.date_start END,
                      period.date_start DESC),
                    disputes AS (
               SELECT contract_id, count(*) AS open_disputes FROM clearing_dispute
                WHERE contract_id = ANY(%(ids)s) AND state IN ('open', 'info')
             GROUP BY 1),
                    moves AS (
               SELECT clearing_contract_id AS contract_id,
                      sum(amount_total) FILTER (WHERE invoice_date >= %(since)s) AS billed,
                      sum(amount_total - amount_residual) FILTER (WHERE invoice_date >= %(since)s)
                          AS paid,
                      sum(amount_residual) FILTER (WHERE invoice_date_due < %(today)s)
                          AS overdue
                 FROM account_move
                WHERE clearing_contract_id = ANY(%(ids)s) AND state = 'posted'
                  AND move_type IN ('out_invoice', 'in_invoice')
             GROUP BY 1),
                    months AS (
               SELECT d.contract_id, date_trunc('month', d.day)::date AS month,
                      sum(d.revenue) AS revenue, sum(d.resale) AS resale,
                      sum(%(cost)s) AS cost
                 FROM clearing_contract_day d %(cost_joins)s
                WHERE d.contract_id = ANY(%(ids)s) AND d.day >= %(since)s
             GROUP BY 1, 2)
            SELECT card.id AS contract_id, current.period_id, current.period_state,
                   current.lock_date,
                   coalesce(disputes.open_disputes, 0) AS open_disputes,
                   coalesce(moves.billed, 0) AS billed, coalesce(moves.paid, 0) AS paid,
                   coalesce(moves.overdue, 0) AS overdue,
                   (SELECT json_object_agg(months.month, months.revenue) FROM months
                     WHERE months.contract_id = card.id) AS months,
                   (SELECT months.cost FROM months
                     WHERE months.contract_id = card.id AND months.month = %(month)s)
                       AS month_cost,
                   (SELECT months.resale FROM months
                     WHERE months.contract_id = card.id AND months.month = %(month)s)
                       AS month_resale,
                   %(fixed)s AS fixed_cost
              FROM clearing_contract card
              LEFT JOIN current ON current.contract_id = card.id
              LEFT JOIN disputes ON disputes.contract_id = card.id
              LEFT JOIN moves ON moves.contract_id = card.id
             WHERE card.id = ANY(%(ids)s)""",
            cost_joins=cost_joins, cost=cost, ids=self.ids, today=today, month=month,
            since=since,
            fixed=self._fixed_cost_sql(SQL("card.id"), month,
                                       month + relativedelta(months=1, days=-1))))
        data = {}
        for row in rows:
            row["months"] = {fields.Date.to_date(key): value
                             for key, value in (row["months"] or {}).items()}
            data[row.pop("contract_id")] = row
        return data

    def _compute_overview(self):
        data = self._origin._overview_data()
        today, month, since = self._overview_window()
        months = [since + relativedelta(months=k) for k in range(12)]
        for contract in self:
            row = data.get(contract._origin.id)
            if not row:
                contract.update({
                    "overview_period_id": False, "overview_period_state": False,
                    "overview_window_days": 0,
                    "overview_open_disputes": 0, "overview_billed": 0, "overview_paid": 0,
                    "overview_overdue": 0, "overview_margin_month": 0,
                    "overview_graph": False})
                continue
            currency = contract.currency_id
            revenue = row["months"].get(month, 0)
            margin = 0.0
            if contract.role == "cpo":
                margin = currency.round(
                    float(revenue) - float(row["month_cost"] or 0) - float(row["fixed_cost"]))
            elif contract.has_resale_grid:
                # eMSP hat: what our drivers pay minus what the CPO bills us
                margin = currency.round(float(row["month_resale"] or 0) - float(revenue))
            locks = row["lock_date"]
            contract.update({
                "overview_period_id": row["period_id"],
                "overview_period_state": row["period_state"],
                "overview_window_days": max((locks - today).days, 0) if locks else 0,
                "overview_open_disputes": row["open_disputes"],
                "overview_billed": row["billed"], "overview_paid": row["paid"],
                "overview_overdue": row["overdue"], "overview_margin_month": margin,
                "overview_graph": json.dumps([{
                    "values": [{
                        "label": format_date(self.env, day, date_format="MMM yy"),
                        "value": currency.round(float(row["months"].get(day, 0))),
                        "type": "future" if day == month else "past",
                    } for day in months],
                    "title": "", "key": _("Billable (excl. VAT)"),
                    "is_sample_data": False,
                }]),
            })

    def _overview_action(self, action, name, domain=None, context=None):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(action)
        action["name"] = name
        action["domain"] = domain or []
        action["context"] = context or {}
        return action

    def _overview_moves_action(self, name, domain):
        action = self._overview_action(
            "account.action_move_out_invoice_type" if self.role == "cpo"
            else "account.action_move_in_invoice_type", name,
            [("clearing_contract_id", "=", self.id), ("state", "=", "posted"),
             ("move_type", "in", ("out_invoice", "in_invoice"))] + domain,
            {"default_move_type": "out_invoice" if self.role == "cpo" else "in_invoice",
             "create": False})
        return action

    def action_overview_period(self):
        """The card's current period."""
        self.ensure_one()
        if not self.overview_period_id:
            return self.action_view_periods()
        return {"type": "ir.actions.act_window", "res_model": "clearing.period",
                "res_id": self.overview_period_id.id, "views": [(False, "form")],
                "name": self.overview_period_id.display_name}

    def action_overview_disputes(self):
        return self._overview_action(
            "emsp_clearing.action_clearing_dispute", _("Open disputes of %s", self.name),
            [("contract_id", "=", self.id), ("state", "in", ("open", "info"))])

    def action_overview_billed(self):
        _today, _month, since = self._overview_window()
        return self._overview_moves_action(_("Billed by %s, 12 months", self.name)
                                           if self.role == "emsp"
                                           else _("Billed to %s, 12 months",
                                                  self.partner_id.name),
                                           [("invoice_date", ">=", since)])

    def action_overview_paid(self):
        _today, _month, since = self._overview_window()
        return self._overview_moves_action(
            _("Paid, 12 months: %s", self.name),
            [("invoice_date", ">=", since),
             ("payment_state", "in", ("paid", "in_payment", "partial"))])

    def action_overview_overdue(self):
        today, _month, _since = self._overview_window()
        return self._overview_moves_action(
            _("Overdue: %s", self.name),
            [("invoice_date_due", "<", today), ("amount_residual", "!=", 0)])

    def action_overview_margin(self):
        """The figures of the contract per month, as a pivot."""
        self.ensure_one()
        return self.action_view_figures()
