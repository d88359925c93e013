from odoo import _, fields, models
from odoo.exceptions import UserError, ValidationError

from ..clearing_core import json_text, ocpi
from ..clearing_core.errors import OcpiValidationError


class ClearingTariffImport(models.TransientModel):
    _name = "clearing.tariff.import"
    _description = "Import an OCPI Tariff into a Contract Grid"

    contract_id = fields.Many2one("clearing.contract", required=True, ondelete="cascade")
    tariff_json = fields.Text(
        "OCPI Tariff (JSON)",
        required=True,
        help="An OCPI 2.2.1 or 2.3.0 Tariff object. It replaces the contract's price grid and "
        "minimum/maximum prices: one grid line per price component.",
    )

    def action_import(self):
        self.ensure_one()
        try:
            data = json_text.loads(self.tariff_json)
        except ValueError as error:
            raise UserError(_("The text is not valid JSON: %s", error)) from error
        try:
            ocpi.parse_tariff(data, strict=False, version=ocpi.detect_tariff_version(data))
        except OcpiValidationError as error:
            raise ValidationError(_("Invalid OCPI tariff: %s", error)) from error
        self.contract_id._lines_from_ocpi_tariff(data)
        return {"type": "ir.actions.act_window_close"}
