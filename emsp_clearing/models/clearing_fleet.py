import re
from datetime import timedelta

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

# What decides which sessions a fleet takes: a change re-prices the sessions it takes or
# leaves (``_sessions_moving``), and is refused when one of them can no longer change.
RULE_FIELDS = frozenset({"token_uids", "contract_id_patterns", "date_start", "date_end",
                         "active", "sequence", "contract_id"})


def _split(text):
    """Entries of a text field: one per line, or separated by commas or spaces."""
    return [item for item in re.split(r"[\s,;]+", text or "") if item]


class ClearingFleet(models.Model):
    """Fleet terms: a named group of tokens of the counterparty whose sessions a contract
    prices under the fleet's own grid instead of the contract's."""

    _name = "clearing.fleet"
    _inherit = ["clearing.ingest.cache.mixin"]
    _description = "Clearing Fleet Terms"
    _order = "contract_id, sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True)
    contract_id = fields.Many2one(
        "clearing.contract", required=True, ondelete="cascade", index=True, check_company=True)
    company_id = fields.Many2one(related="contract_id.company_id", store=True)
    currency_id = fields.Many2one(related="contract_id.currency_id")
    sequence = fields.Integer(
        default=10, help="When a session fits several fleets, the first one prices it.")
    active = fields.Boolean(default=True)
    token_uids = fields.Text(
        "Token UIDs", help="OCPI token UIDs of the fleet, one per line (or comma separated); "
        "compared without regard to case.")
    contract_id_patterns = fields.Text(
        "Contract ID Patterns", help="OCPI contract_id (eMA id) patterns of the fleet's "
        "tokens, one per line; * stands for any characters (e.g. FR-TEM-C0042*). Compared "
        "without regard to case.")
    date_start = fields.Date("Valid From", help="First day (session end, contract time zone).")
    date_end = fields.Date("Valid Until", help="Last day (included).")
    price_line_ids = fields.One2many("clearing.price.line", "fleet_id", string="Fleet Grid")
    cdr_count = fields.Integer("Sessions", compute="_compute_cdr_count")

    @api.constrains("name", "token_uids", "contract_id_patterns", "date_start", "date_end")
    def _check_fleet(self):
        for fleet in self:
            if not (_split(fleet.token_uids) or _split(fleet.contract_id_patterns)):
                raise ValidationError(_(
                    "Fleet %s: give at least one token UID or contract ID pattern.", fleet.name))
            if fleet.date_start and fleet.date_end and fleet.date_start > fleet.date_end:
                raise ValidationError(_("Fleet %s: the start date is after the end date.",
                                        fleet.name))

    def _compute_cdr_count(self):
        counts = dict(self.env["clearing.cdr"]._read_group(
            [("fleet_id", "in", self.ids)], ["fleet_id"], ["__count"]))
        for fleet in self:
            fleet.cdr_count = counts.get(fleet, 0)

    # ------------------------------------------------------------------ the rule
    def _rule(self, vals=None):
        """What decides which sessions the fleet takes, once ``vals`` is written."""
        self.ensure_one()
        vals = vals or {}

        def value(fname):
            if fname not in vals:
                return self[fname]
            field = self._fields[fname]
            return field.convert_to_record(field.convert_to_cache(vals[fname], self), self)

        contract = value("contract_id")
        return {
            "active": value("active"),
            "contract": contract,
            "uids": frozenset(uid.upper() for uid in _split(value("token_uids"))),
            "patterns": tuple(p.upper() for p in _split(value("contract_id_patterns"))),
            "date_start": value("date_start"),
            "date_end": value("date_end"),
            "tz": contract.tz or "UTC",
        }

    @staticmethod
    def _pattern_regex(patterns):
        if not patterns:
            return None
        return re.compile("|".join(
            "(?:%s)" % ".*".join(re.escape(part) for part in pattern.split("*"))
            for pattern in patterns) + r"\Z")

    def _matcher(self):
        """``(fleet, uids, regex, date_start, date_end)``: what ``_fits`` reads, once per
        batch (``clearing.cdr._pricing_grid``)."""
        self.ensure_one()
        rule = self._rule()
        return (self, rule["uids"], self._pattern_regex(rule["patterns"]),
                rule["date_start"], rule["date_end"])

    @staticmethod
    def _fits(matcher, token_uid, token_contract_id, local_day):
        _fleet, uids, regex, date_start, date_end = matcher
        if date_start and local_day < date_start or date_end and local_day > date_end:
            return False
        if token_uid and token_uid.upper() in uids:
            return True
        return bool(regex and token_contract_id and regex.match(token_contract_id.upper()))

    def _rule_sql(self, rule, alias="clearing_cdr"):
        """SQL condition: the ``clearing_cdr`` row ``alias`` fits ``rule`` (``_fits``)."""
        if not rule["active"] or not (rule["uids"] or rule["patterns"]):
            return SQL("FALSE")
        contract_model = self.env["clearing.contract"]
        tz = pytz.timezone(rule["tz"])
        conditions = []
        if rule["date_start"]:
            conditions.append(SQL("%s >= %s", SQL.identifier(alias, "end_datetime"),
                                  contract_model._day_start_utc(rule["date_start"], tz)))
        if rule["date_end"]:
            conditions.append(SQL("%s < %s", SQL.identifier(alias, "end_datetime"),
                                  contract_model._day_start_utc(
                                      rule["date_end"] + timedelta(days=1), tz)))
        likes = [pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                 .replace("*", "%") for pattern in rule["patterns"]]
        conditions.append(SQL(
            "(upper(coalesce(%s, '')) = ANY(%s) OR upper(coalesce(%s, '')) LIKE ANY(%s))",
            SQL.identifier(alias, "token_uid"), list(rule["uids"]) or [""],
            SQL.identifier(alias, "token_contract_id"), likes or [""]))
        return SQL("(%s)", SQL(" AND ").join(conditions))

    def _sessions_moving(self, vals=None, deleting=False):
        """Sessions of the fleets' contracts that the fleets take or leave once ``vals`` is
        written (or the fleets deleted), with those priced under them: to re-price afterwards.
        One query per fleet. A locked, excluded or disputed session never changes grid: a
        UserError, before anything is written, names the count and the first one."""
        cdr_model = self.env["clearing.cdr"].sudo()
        cdrs = cdr_model.browse()
        cdr_model.flush_model()
        table = cdr_model._table
        movable = cdr_model._search(cdr_model._contract_movable_domain()).where_clause
        for fleet in self.filtered("id"):
            old = fleet._rule()
            new = dict(old, active=False) if deleting else fleet._rule(vals)
            contracts = (old["contract"] | new["contract"]).ids
            query = cdr_model._search([("contract_id", "in", contracts)],
                                      order="end_datetime, id")
            now = self._rule_sql(new, table)
            query.add_where(SQL("(%s = %s OR %s)", SQL.identifier(table, "fleet_id"),
                                fleet.id, now))
            rows = self.env.execute_query(query.select(
                SQL.identifier(table, "id"), SQL("coalesce(%s, FALSE)", movable),
                SQL("coalesce(%s = %s, FALSE) <> coalesce(%s, FALSE)",
                    SQL.identifier(table, "fleet_id"), fleet.id, now),
                SQL.identifier(table, "ocpi_id")))
            frozen = [row for row in rows if not row[1] and row[2]]
            if frozen:
                raise UserError(_(
                    "Fleet %(fleet)s of contract %(contract)s: %(count)s locked, excluded or "
                    "disputed sessions (first: %(cdr)s) would change price grid. These sessions "
                    "cannot be re-priced: let the fleet's terms start after them (Valid From).", fleet=fleet.name, contract=old["contract"].name,
                    count=len(frozen), cdr=frozen[0][3]))
            cdrs |= cdr_model.browse([row[0] for row in rows if row[1]])
        return cdrs

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        # the lines created with the fleets re-price once, with the fleets
        fleets = super(ClearingFleet, self.with_context(clearing_fleet_no_reprice=True)).create(
            vals_list).with_env(self.env)
        fleets._grid_changed()
        return fleets

    def write(self, vals):
        moving = self._sessions_moving(vals) if RULE_FIELDS & set(vals) else None
        res = super().write(vals)
        if moving is not None:
            moving.with_env(self.env).reprice()
        return res

    def unlink(self):
        moving = self._sessions_moving(deleting=True).with_env(self.env)
        res = super().unlink()
        moving.exists().reprice()
        return res

    def _grid_changed(self):
        """The fleets' grids changed: their sessions that may still change are re-priced
        (set-based, ``clearing.cdr.reprice``); locked ones keep the price they were billed."""
        fleets = self.exists()
        if fleets and not self.env.context.get("clearing_fleet_no_reprice"):
            fleets._sessions_moving().with_env(self.env).reprice()

    # ------------------------------------------------------------------ OCPI tariff
    def to_ocpi_tariff(self):
        """The OCPI 2.2.1 Tariff of the fleet's grid: the contract's terms (CPO, currency,
        taxes, minimum and maximum price) with the fleet's lines; its id names the contract
        and the fleet, so the CDR, its XLSX line and the portal say which grid applied."""
        self.ensure_one()
        contract = self.contract_id
        tariff = contract.to_ocpi_tariff()
        vat = contract._vat_decimal()
        tariff["id"] = "%s/%s" % (contract.name, self.name)
        tariff["elements"] = [line._to_ocpi_element(vat=vat)
                              for line in self.price_line_ids.sorted("sequence")]
        return tariff

    def action_view_cdrs(self):
        self.ensure_one()
        action = self.contract_id.action_view_cdrs()
        action["domain"] = [("fleet_id", "=", self.id)]
        action["name"] = _("Sessions of fleet %s", self.name)
        return action
