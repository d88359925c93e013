import base64
from datetime import timedelta
from decimal import Decimal

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, float_is_zero

from ..clearing_core import ocpi
from ..clearing_core.errors import OcpiValidationError
from ..clearing_core.formats.xlsx_whatif import build_whatif_xlsx
from ..models.clearing_cdr import AMOUNT_FIELDS
from ..tools.numbers import decimal_to_json, float_to_decimal, to_decimal
from ..tools.pricing_sql import PRICING_JSON

# components compared, in the order shown: the parts of the untaxed amount, then the totals
COMPONENTS = AMOUNT_FIELDS + ("amount_untaxed", "amount_tax", "amount_total")
CHUNK = 2000


class ClearingWhatif(models.TransientModel):
    """What-if before signing: the sessions of a past date range that fit a contract (also a
    draft one) priced again under a draft grid, compared with what they are priced now.
    Nothing on the sessions changes."""

    _name = "clearing.whatif"
    _description = "Clearing What-if Simulation"

    contract_id = fields.Many2one("clearing.contract", required=True, ondelete="cascade")
    currency_id = fields.Many2one(related="contract_id.currency_id")
    date_from = fields.Date("From", required=True)
    date_to = fields.Date("To", required=True)
    line_ids = fields.One2many("clearing.whatif.line", "wizard_id", string="Draft Grid")
    min_price = fields.Monetary("Minimum Price", help="Minimum price of a session, excl. VAT.")
    max_price = fields.Monetary("Maximum Price", help="Maximum price of a session, excl. VAT.")
    resale = fields.Boolean(
        "Resale Margin", readonly=True,
        help="eMSP hat: the draft grid is the contract's resale grid; simulated = what our "
        "drivers pay (revenue), current = what the CPO bills us (cost), difference = margin.")
    result_ids = fields.One2many("clearing.whatif.result", "wizard_id", string="Result",
                                 readonly=True)
    simulated = fields.Boolean(readonly=True)
    session_count = fields.Integer("Sessions", readonly=True)
    current_untaxed = fields.Monetary("Current (excl. VAT)", readonly=True)
    simulated_untaxed = fields.Monetary("Simulated (excl. VAT)", readonly=True)
    difference_untaxed = fields.Monetary("Difference (excl. VAT)", readonly=True)
    xlsx_file = fields.Binary("XLSX", readonly=True, attachment=False)
    xlsx_filename = fields.Char()

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        contract_id = values.get("contract_id")
        if not contract_id and self.env.context.get("active_model") == "clearing.contract":
            contract_id = self.env.context.get("active_id")
        contract = self.env["clearing.contract"].browse(contract_id)
        if contract:
            values["contract_id"] = contract.id
            # the last complete month
            last = fields.Date.context_today(self).replace(day=1) - timedelta(days=1)
            values.setdefault("date_to", last)
            values.setdefault("date_from", last.replace(day=1))
            if "line_ids" in fields_list and "line_ids" not in values:
                grid = (contract.resale_line_ids if values.get("resale")
                        else contract.price_line_ids)
                values["line_ids"] = [
                    fields.Command.create(line._grid_values())
                    for line in grid.sorted("sequence")]
            # the contract's minimum and maximum price are the CPO's terms: the resale grid
            # has none (clearing.contract.to_ocpi_resale_tariff)
            resale = values.get("resale")
            values.setdefault("min_price", 0.0 if resale else contract.min_price)
            values.setdefault("max_price", 0.0 if resale else contract.max_price)
        return values

    @api.constrains("date_from", "date_to")
    def _check_dates(self):
        for wizard in self:
            if wizard.date_from > wizard.date_to:
                raise ValidationError(_("The simulation starts after it ends."))

    # ------------------------------------------------------------------ the draft tariff
    def _draft_tariff(self):
        """``(tariff_dict, ocpi.Tariff)``: the contract's OCPI tariff with the draft grid."""
        self.ensure_one()
        contract = self.contract_id
        tariff = contract.to_ocpi_tariff()
        tariff["id"] = _("%s (what-if)", contract.name)
        tariff["elements"] = [line._to_ocpi_element(vat=contract._vat_decimal())
                              for line in self.line_ids.sorted("sequence")]
        precision = contract.currency_id.rounding
        for fname in ("min_price", "max_price"):
            tariff.pop(fname, None)
            if not float_is_zero(self[fname], precision_rounding=precision):
                tariff[fname] = {"excl_vat": decimal_to_json(float_to_decimal(self[fname]))}
        try:
            return tariff, ocpi.parse_tariff(tariff, strict=True)
        except OcpiValidationError as error:
            raise ValidationError(_("Draft grid: %s", error)) from error

    def _sessions_query(self):
        """SQL condition on ``clearing_cdr``: the sessions the contract's rule covers (its
        counterparty and ours, company, currency) ended within the range in its time zone;
        excluded sessions and our dispute credits (no OCPI CDR of their own) left out."""
        self.ensure_one()
        contract = self.contract_id
        rule = dict(contract._matching_rule(), date_start=self.date_from, date_end=self.date_to)
        return SQL("%s AND clearing_cdr.state <> 'excluded' AND NOT coalesce("
                   "clearing_cdr.dispute_credit, FALSE)", contract._rule_sql(rule))

    # ------------------------------------------------------------------ simulate
    def _simulate(self):
        """``{month (date): {"sessions": n, component: [current, simulated]}}`` in exact
        ``Decimal``: every session priced with the engine under the draft grid (its JSON read
        in chunks of ``CHUNK``, one query each: only what the engine reads, ``PRICING_JSON``),
        nothing written on the sessions."""
        self.ensure_one()
        contract = self.contract_id
        _tariff_dict, tariff = self._draft_tariff()
        tz = contract.tz or "UTC"
        cdr_model = self.env["clearing.cdr"]
        cdr_model.flush_model()
        ids = [row[0] for row in self.env.execute_query(SQL(
            "SELECT id FROM clearing_cdr WHERE %s ORDER BY id", self._sessions_query()))]
        stored = AMOUNT_FIELDS + ("amount_untaxed", "amount_tax", "amount_total")
        code = contract.currency_id.name
        months = {}
        for start in range(0, len(ids), CHUNK):
            rows = self.env.execute_query(SQL(
                """SELECT %s, coalesce(credit, FALSE),
                          date_trunc('month', (end_datetime AT TIME ZONE 'UTC')
                                     AT TIME ZONE %s)::date,
                          %s
                     FROM clearing_cdr WHERE id = ANY(%s)""",
                PRICING_JSON, tz, SQL(", ").join(SQL("coalesce(%s, 0)", SQL.identifier(fname))
                                   for fname in stored),
                ids[start:start + CHUNK]))
            for raw, credit, month, *current in rows:
                result = cdr_model._price_ocpi(ocpi.parse_cdr(raw, strict=False), tariff,
                                               contract)
                simulated = cdr_model._priced_amounts(result, code, credit)
                figures = months.get(month)
                if figures is None:
                    figures = months[month] = {"sessions": 0, **{
                        fname: [Decimal(0), Decimal(0)] for fname in COMPONENTS}}
                figures["sessions"] += 1
                for fname, value in zip(stored, current):
                    pair = figures[fname]
                    pair[0] += to_decimal(value)
                    pair[1] += simulated[fname]
        return months

    def _component_labels(self):
        fields_ = self.env["clearing.cdr"]._fields
        return {fname: fields_[fname]._description_string(self.env) for fname in COMPONENTS}

    def action_simulate(self):
        self.ensure_one()
        today = fields.Date.context_today(self)
        if self.date_to >= today:
            raise UserError(_("Pick a past date range: the simulation ends before today."))
        if not self.line_ids:
            raise UserError(_("The draft grid has no line."))
        months = self._simulate()
        labels = self._component_labels()
        commands = [fields.Command.clear()]
        for month in sorted(months, reverse=True):
            figures = months[month]
            for sequence, fname in enumerate(COMPONENTS):
                current, simulated = figures[fname]
                commands.append(fields.Command.create({
                    "month": month, "month_label": month.strftime("%Y-%m"),
                    "sequence": sequence, "component": labels[fname],
                    "sessions": figures["sessions"],
                    "current_amount": float(current), "simulated_amount": float(simulated),
                    "difference": float(simulated - current),
                }))
        current = sum((f["amount_untaxed"][0] for f in months.values()), Decimal(0))
        simulated = sum((f["amount_untaxed"][1] for f in months.values()), Decimal(0))
        self.write({
            "result_ids": commands, "simulated": True, "xlsx_file": False,
            "session_count": sum(f["sessions"] for f in months.values()),
            "current_untaxed": float(current), "simulated_untaxed": float(simulated),
            "difference_untaxed": float(simulated - current),
        })
        return self._reopen()

    def _reopen(self):
        return {
            "type": "ir.actions.act_window", "res_model": self._name, "res_id": self.id,
            "view_mode": "form", "target": "new", "name": _("Simulate %s", self.contract_id.name),
        }

    def _xlsx_content(self):
        self.ensure_one()
        rows = [{
            "month": line.month_label, "component": line.component, "sessions": line.sessions,
            "current": float_to_decimal(line.current_amount),
            "simulated": float_to_decimal(line.simulated_amount),
            "difference": float_to_decimal(line.difference),
        } for line in self.result_ids]
        meta = [
            (_("Contract"), self.contract_id.display_name),
            (_("Counterparty"), self.contract_id.partner_id.display_name),
            (_("Sessions ended"), "%s – %s" % (self.date_from, self.date_to)),
            (_("Currency"), self.currency_id.name),
            (_("Sessions"), self.session_count),
        ]
        labels = {"month": _("Month"), "component": _("Component"), "sessions": _("Sessions"),
                  "current": _("Current amount"), "simulated": _("Simulated amount"),
                  "difference": _("Difference"), "total": _("Total")}
        if self.resale:
            labels.update(current=_("Cost (billed by the CPO)"),
                          simulated=_("Revenue (resale grid)"), difference=_("Margin"))
        return build_whatif_xlsx(rows, meta=meta, labels=labels,
                                 currency_digits=self.currency_id.decimal_places)

    def action_download_xlsx(self):
        self.ensure_one()
        if not self.simulated:
            raise UserError(_("Run the simulation first."))
        self.write({
            "xlsx_file": base64.b64encode(self._xlsx_content()),
            "xlsx_filename": "what-if-%s-%s-%s.xlsx" % (
                self.contract_id.name, self.date_from, self.date_to),
        })
        return {
            "type": "ir.actions.act_url", "target": "self",
            "url": "/web/content/?model=%s&id=%s&field=xlsx_file&filename_field=xlsx_filename"
                   "&download=true" % (self._name, self.id),
        }
