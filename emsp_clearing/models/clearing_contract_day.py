"""clearing.contract.day: the figures of a contract's sessions per day (end of session in the
contract's time zone) and fleet grid, kept live by PostgreSQL.

One rule maintains them: a statement-level trigger on ``clearing_cdr`` (AFTER INSERT, UPDATE,
DELETE, with its transition tables) adds, for each statement, the *difference* it makes per
(contract, fleet, day) as new rows: what the new rows add minus what the old rows took away.
It covers every write path (ORM create and write, the bulk ``COPY`` of batch ingestion, the SQL
updates of re-pricing and of the period lock, deletes). No row is ever updated by the trigger,
so concurrent ingestions of the same contract and day never wait on each other; readers sum
the rows (``SUM ... GROUP BY``). The scheduled compaction (``_compact``) folds the rows of each
key into one; ``rebuild_figures`` recomputes them from the sessions (install, time zone
change of a contract).
"""

import logging

from odoo import api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# (column, SQL aggregate over the rows ``cdr`` of clearing_cdr, each counted with ``sign``)
FIGURES = (
    ("sessions", "count(*)"),
    ("kwh", "coalesce(sum(cdr.energy_kwh), 0)"),
    ("priced", "count(*) FILTER (WHERE cdr.state IN ('priced', 'locked'))"),
    ("mismatched", "count(*) FILTER (WHERE cdr.price_mismatch)"),
    ("mismatch_amount",
     "coalesce(sum(cdr.price_difference) FILTER (WHERE cdr.price_mismatch), 0)"),
    ("disputed", "count(*) FILTER (WHERE coalesce(cdr.dispute_state, 'none') <> 'none')"),
    ("excluded", "count(*) FILTER (WHERE cdr.state = 'excluded')"),
    ("late", "count(*) FILTER (WHERE cdr.is_late)"),
    ("revenue", "coalesce(sum(cdr.amount_untaxed) FILTER (WHERE cdr.state <> 'excluded'), 0)"),
    ("amount_total",
     "coalesce(sum(cdr.amount_total) FILTER (WHERE cdr.state <> 'excluded'), 0)"),
    # eMSP hat: what our drivers pay under the resale grid
    ("resale", "coalesce(sum(cdr.resale_amount) FILTER (WHERE cdr.state <> 'excluded'), 0)"),
    # what the costs per session and per kWh apply to: neither excluded nor credit sessions
    ("cost_sessions",
     "count(*) FILTER (WHERE cdr.state <> 'excluded' AND NOT coalesce(cdr.credit, FALSE))"),
    ("cost_kwh",
     "coalesce(sum(abs(cdr.energy_kwh)) FILTER (WHERE cdr.state <> 'excluded' "
     "AND NOT coalesce(cdr.credit, FALSE)), 0)"),
)
FIGURE_NAMES = tuple(name for name, _sql in FIGURES)
KEY = ("contract_id", "fleet_id", "day")


class ClearingContractDay(models.Model):
    _name = "clearing.contract.day"
    _description = "Clearing Contract Figures per Day"
    _log_access = False
    _order = "day desc, contract_id"

    contract_id = fields.Many2one("clearing.contract", required=True, readonly=True,
                                  ondelete="cascade")
    # the id of the fleet whose grid priced the sessions, 0 for the contract's grid: no
    # foreign key, as deleting a fleet moves its sessions' figures to the contract's grid
    # through the trigger (a key to the deleted fleet would refuse that move)
    fleet_id = fields.Integer("Fleet Grid", readonly=True, required=True)
    day = fields.Date(required=True, readonly=True,
                      help="End of the sessions, in the contract's time zone.")
    currency_id = fields.Many2one(related="contract_id.currency_id")
    sessions = fields.Integer(readonly=True)
    kwh = fields.Float("Energy (kWh)", digits=(16, 3), readonly=True)
    priced = fields.Integer(readonly=True)
    mismatched = fields.Integer(readonly=True)
    mismatch_amount = fields.Monetary("Mismatch Amount", readonly=True,
                                      help="Stated minus ours (excl. VAT).")
    disputed = fields.Integer(readonly=True)
    excluded = fields.Integer(readonly=True)
    late = fields.Integer(readonly=True)
    revenue = fields.Monetary("Billable (excl. VAT)", readonly=True)
    amount_total = fields.Monetary("Billable (incl. VAT)", readonly=True)
    resale = fields.Monetary(
        "Resale (excl. VAT)", readonly=True,
        help="eMSP hat: what our drivers pay for the sessions under the resale grid.")
    cost_sessions = fields.Integer("Costed Sessions", readonly=True)
    cost_kwh = fields.Float("Costed Energy (kWh)", digits=(16, 3), readonly=True)

    # ------------------------------------------------------------------ the one rule
    @api.model
    def _delta_sql(self, signed_rows):
        """SQL ``SELECT`` of the figures per (contract, fleet, local day) of ``signed_rows``
        (SQL of clearing_cdr rows plus a ``sign`` column, +1 or -1), each aggregate summed with
        its sign; keys whose figures all cancel out are left out."""
        sums = [
            SQL("sum(part.%s * part.sign)", SQL.identifier(name)) for name in FIGURE_NAMES]
        parts = [SQL("%s AS %s", SQL(sql), SQL.identifier(name)) for name, sql in FIGURES]
        return SQL(
            """SELECT part.contract_id, part.fleet_id, part.day, %(sums)s
                 FROM (SELECT cdr.sign, cdr.contract_id, coalesce(cdr.fleet_id, 0) AS fleet_id,
                              ((cdr.end_datetime AT TIME ZONE 'UTC')
                                 AT TIME ZONE coalesce(contract.tz, 'UTC'))::date AS day,
                              %(parts)s
                         FROM (%(rows)s) cdr
                         JOIN clearing_contract contract ON contract.id = cdr.contract_id
                     GROUP BY 1, 2, 3, 4) part
             GROUP BY part.contract_id, part.fleet_id, part.day
               HAVING %(nonzero)s""",
            sums=SQL(", ").join(sums), parts=SQL(", ").join(parts), rows=signed_rows,
            nonzero=SQL(" OR ").join(
                SQL("sum(part.%s * part.sign) <> 0", SQL.identifier(name))
                for name in FIGURE_NAMES))

    @api.model
    def _insert_sql(self, select):
        return SQL("INSERT INTO clearing_contract_day (%s) %s",
                   SQL(", ").join(SQL.identifier(name) for name in KEY + FIGURE_NAMES),
                   select)

    def init(self):
        super().init()
        cr = self.env.cr
        cr.execute("""CREATE INDEX IF NOT EXISTS clearing_contract_day_key_idx
                          ON clearing_contract_day (contract_id, day, fleet_id)""")
        new = SQL("SELECT 1 AS sign, * FROM clearing_contract_day_new")
        old = SQL("SELECT -1 AS sign, * FROM clearing_contract_day_old")
        body = SQL(
            """BEGIN
                 IF TG_OP = 'INSERT' THEN %(insert)s;
                 ELSIF TG_OP = 'DELETE' THEN %(delete)s;
                 ELSE %(update)s;
                 END IF;
                 RETURN NULL;
               END""",
            insert=self._insert_sql(self._delta_sql(SQL("%s WHERE contract_id IS NOT NULL",
                                                        new))),
            delete=self._insert_sql(self._delta_sql(SQL("%s WHERE contract_id IS NOT NULL",
                                                        old))),
            update=self._insert_sql(self._delta_sql(SQL(
                "SELECT * FROM (%s UNION ALL %s) r WHERE contract_id IS NOT NULL",
                new, old))))
        # the body is static SQL: no parameter is left in it
        cr.execute(SQL(
            "CREATE OR REPLACE FUNCTION clearing_contract_day_delta() RETURNS trigger "
            "LANGUAGE plpgsql AS %s", SQL("$body$%s$body$", body)))
        for event, tables in (
                ("INSERT", "NEW TABLE AS clearing_contract_day_new"),
                ("DELETE", "OLD TABLE AS clearing_contract_day_old"),
                ("UPDATE", "NEW TABLE AS clearing_contract_day_new "
                           "OLD TABLE AS clearing_contract_day_old")):
            name = "clearing_cdr_contract_day_%s" % event.lower()
            cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON clearing_cdr", SQL.identifier(name)))
            cr.execute(SQL(
                "CREATE TRIGGER %s AFTER %s ON clearing_cdr REFERENCING %s FOR EACH STATEMENT "
                "EXECUTE FUNCTION clearing_contract_day_delta()",
                SQL.identifier(name), SQL(event), SQL(tables)))
        # the sessions stored before this table existed (install, upgrade)
        cr.execute("SELECT EXISTS (SELECT FROM clearing_contract_day)")
        if not cr.fetchone()[0]:
            self.rebuild_figures()

    @api.model
    def _cost_sql(self, alias="d"):
        """``(joins, cost)``: the SQL joins from the rows ``alias`` of clearing_contract_day to
        what their costs read, and the SQL cost of a row -- the energy cost per kWh and the
        cost per session of the contract's cost line covering its day, else the company's
        defaults (``clearing.contract._session_costs_sql`` applies the same costs session by
        session); 0 for the rows of an eMSP-side contract, whose cost is what the CPO bills
        (the CPO hat's costs never apply to it)."""
        day = SQL.identifier(alias)
        return (
            SQL("""JOIN clearing_contract cost_contract ON cost_contract.id = %(d)s.contract_id
                   JOIN res_company cost_company ON cost_company.id = cost_contract.company_id
                   LEFT JOIN clearing_contract_cost cc
                          ON cc.contract_id = %(d)s.contract_id AND cc.date_start <= %(d)s.day
                         AND (cc.date_end IS NULL OR cc.date_end >= %(d)s.day)""", d=day),
            SQL("""CASE WHEN cost_contract.role = 'cpo' THEN
                   coalesce(cc.energy_cost, cost_company.clearing_energy_cost, 0)::numeric
                       * %(d)s.cost_kwh
                   + coalesce(cc.session_cost, cost_company.clearing_session_cost, 0)::numeric
                       * %(d)s.cost_sessions ELSE 0 END""", d=day))

    # ------------------------------------------------------------------ public
    @api.model
    def rebuild_figures(self, contracts=None):
        """Recompute the figures of ``contracts`` (all when None) from their sessions:
        their rows are replaced by the sums of the sessions this transaction sees. Sessions
        that concurrent transactions add meanwhile keep their own rows."""
        self.env["clearing.cdr"].flush_model()
        self.env["clearing.contract"].flush_model(["tz"])
        cr = self.env.cr
        if contracts is None:
            where, cdr_where = SQL("TRUE"), SQL("contract_id IS NOT NULL")
        else:
            where = SQL("contract_id = ANY(%s)", contracts.ids)
            cdr_where = where
        cr.execute(SQL("DELETE FROM clearing_contract_day WHERE %s", where))
        cr.execute(self._insert_sql(self._delta_sql(SQL(
            "SELECT 1 AS sign, * FROM clearing_cdr WHERE %s", cdr_where))))
        _logger.info("clearing_contract_day: figures rebuilt (%s rows)", cr.rowcount)
        self.invalidate_model()

    @api.model
    def _compact(self):
        """Fold the rows of each (contract, fleet, day) into one, without ever blocking the
        ingestion: the rows are deleted and their sums inserted in one statement, and the rows
        concurrent transactions add meanwhile are not seen, so they stay as they are. Two
        compactions at once cannot count a row twice (a row deleted by one is skipped by the
        other). Scheduled (``ir_cron_contract_day_compact``)."""
        cr = self.env.cr
        cr.execute(SQL(
            """WITH folded AS (
                   DELETE FROM clearing_contract_day d
                    USING (SELECT contract_id, day, fleet_id FROM clearing_contract_day
                            GROUP BY 1, 2, 3 HAVING count(*) > 1) k
                    WHERE d.contract_id = k.contract_id AND d.day = k.day
                      AND d.fleet_id = k.fleet_id
                RETURNING d.*)
               %s""",
            self._insert_sql(SQL(
                """SELECT contract_id, fleet_id, day, %s FROM folded
                    GROUP BY contract_id, fleet_id, day HAVING %s""",
                SQL(", ").join(SQL("sum(%s)", SQL.identifier(name))
                               for name in FIGURE_NAMES),
                SQL(" OR ").join(SQL("sum(%s) <> 0", SQL.identifier(name))
                                 for name in FIGURE_NAMES)))))
        self.invalidate_model()

    @api.model
    def _cron_compact(self):
        self._compact()
