from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class ClearingContractCost(models.Model):
    """What the sessions of a contract cost us (CPO hat), from a date: energy per kWh, fees per
    session, a fixed cost per month. Without a cost for a date, the company's defaults apply."""

    _name = "clearing.contract.cost"
    _description = "Clearing Contract Costs"
    _order = "contract_id, date_start desc, id desc"

    contract_id = fields.Many2one("clearing.contract", required=True, ondelete="cascade",
                                  index=True)
    company_id = fields.Many2one(related="contract_id.company_id", store=True)
    currency_id = fields.Many2one(related="contract_id.currency_id")
    date_start = fields.Date("Valid From", required=True)
    date_end = fields.Date("Valid Until", help="Last day (included).")
    energy_cost = fields.Float("Energy Cost per kWh", digits=(16, 6))
    session_cost = fields.Float("Cost per Session", digits=(16, 6),
                                help="Platform and payment fees.")
    monthly_cost = fields.Float("Fixed Monthly Cost", digits=(16, 2))

    @api.constrains("date_start", "date_end", "energy_cost", "session_cost", "monthly_cost",
                    "contract_id")
    def _check_cost(self):
        for cost in self:
            if cost.date_end and cost.date_end < cost.date_start:
                raise ValidationError(_("Costs of %s: the end date is before the start date.",
                                        cost.contract_id.name))
            if min(cost.energy_cost, cost.session_cost, cost.monthly_cost) < 0:
                raise ValidationError(_("Costs of %s: a cost cannot be negative.",
                                        cost.contract_id.name))
            overlap = self.search_count([
                ("id", "!=", cost.id), ("contract_id", "=", cost.contract_id.id),
                ("date_start", "<=", cost.date_end or fields.Date.to_date("9999-12-31")),
                "|", ("date_end", "=", False), ("date_end", ">=", cost.date_start)])
            if overlap:
                raise ValidationError(_(
                    "Costs of %s: two cost lines cover the same days.", cost.contract_id.name))
