from odoo import api, fields, models


class ClearingPriceLine(models.Model):
    """A line of a contract's price grid, or of one of its fleets' grids (``fleet_id``)."""

    _name = "clearing.price.line"
    _inherit = ["clearing.price.line.mixin", "clearing.ingest.cache.mixin"]
    # any change alters the contract's (or the fleet's) tariff
    _description = "Clearing Price Grid Line"
    _order = "contract_id, sequence, id"

    contract_id = fields.Many2one(
        "clearing.contract", required=True, ondelete="cascade", index=True
    )
    fleet_id = fields.Many2one(
        "clearing.fleet", ondelete="cascade", index=True,
        help="Set on the lines of a fleet's grid; empty on the contract's own grid.",
    )
    resale = fields.Boolean(
        help="A line of the contract's resale grid (eMSP hat: what we charge our drivers for "
        "the sessions the CPO bills us), not of the grid the CPO's sessions are priced with.")
    company_id = fields.Many2one(related="contract_id.company_id", store=True)
    currency_id = fields.Many2one(related="contract_id.currency_id")

    @api.model_create_multi
    def create(self, vals_list):
        fleets = self.env["clearing.fleet"].browse(
            [vals["fleet_id"] for vals in vals_list if vals.get("fleet_id")])
        contract_of = {fleet.id: fleet.contract_id.id for fleet in fleets}
        for vals in vals_list:
            if vals.get("fleet_id") and not vals.get("contract_id"):
                vals["contract_id"] = contract_of[vals["fleet_id"]]
        lines = super().create(vals_list)
        lines.fleet_id._grid_changed()
        lines._resale_contracts()._reprice_resale()
        return lines

    def write(self, vals):
        fleets = self.fleet_id
        resale = self._resale_contracts()
        res = super().write(vals)
        (fleets | self.fleet_id)._grid_changed()
        (resale | self._resale_contracts())._reprice_resale()
        return res

    def unlink(self):
        fleets = self.fleet_id
        resale = self._resale_contracts()
        res = super().unlink()
        fleets.exists()._grid_changed()
        resale.exists()._reprice_resale()
        return res

    def _resale_contracts(self):
        """The contracts whose resale grid these lines are part of: their sessions' resale
        amounts are priced again when the lines change (``clearing.contract._reprice_resale``;
        none when no resale line changed)."""
        return self.filtered(lambda line: line.resale and not line.fleet_id).contract_id
