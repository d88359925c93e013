from odoo import fields, models


class ClearingContract(models.Model):
    _inherit = "clearing.contract"

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
