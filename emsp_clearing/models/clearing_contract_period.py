"""clearing.contract: clearing periods and the policy for disputes still open at the lock."""

from odoo import _, fields, models


class ClearingContract(models.Model):
    _inherit = "clearing.contract"

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

    def _compute_period_count(self):
        groups = dict(self.env["clearing.period"]._read_group(
            [("contract_id", "in", self.ids)], ["contract_id"], ["__count"]))
        for contract in self:
            contract.period_count = groups.get(contract, 0)

    def action_view_periods(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_period")
        action["domain"] = [("contract_id", "=", self.id)]
        action["context"] = {"search_default_contract_id": self.id}
        action["name"] = _("Clearing Periods of %s", self.name)
        return action
