from datetime import datetime

from odoo.tests import HttpCase, tagged

from .common import ClearingCase, make_ocpi_cdr

WAIT_FOR = """
const selector = %r;
let tries = 0;
const timer = setInterval(() => {
    if (document.querySelector(selector)) {
        clearInterval(timer);
        console.log("test successful");
    } else if (++tries > 300) {
        clearInterval(timer);
        console.error("timeout waiting for " + selector);
    }
}, 50);
"""


@tagged("post_install", "-at_install")
class TestUi(HttpCase, ClearingCase):
    """The views render in the web client without any client error."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._contract(
            lines=[{"dimension": "FLAT", "price": 1.0},
                   {"dimension": "ENERGY", "price": 0.3, "start_time": 22, "end_time": 7}]
        )
        cls.cdr = cls.env["clearing.cdr"].ingest_ocpi(
            make_ocpi_cdr("UI-1", datetime(2026, 4, 14, 8, 0),
                          [(0, {"ENERGY": 4.0, "TIME": 0.5}), (30, {"PARKING_TIME": 0.5})],
                          total_cost={"excl_vat": 9.0, "incl_vat": 10.8})
        )

    def _open(self, path, selector):
        self.browser_js(path, WAIT_FOR % selector, login="admin", timeout=60)

    def test_contract_form(self):
        self._open(
            "/odoo/action-emsp_clearing.action_clearing_contract/%d" % self.contract.id,
            ".o_form_view .o_field_one2many[name=price_line_ids] .o_data_row",
        )

    def test_cdr_form_and_analysis(self):
        self._open(
            "/odoo/action-emsp_clearing.action_clearing_cdr/%d" % self.cdr.id,
            ".o_form_view .o_clearing_breakdown",
        )
        self._open(
            "/odoo/action-emsp_clearing.action_clearing_cdr?view_type=pivot",
            ".o_pivot table",
        )

    def test_partner_and_settings(self):
        self._open(
            "/odoo/action-emsp_clearing.action_clearing_partner/%d" % self.emsp.id,
            ".o_form_view .o_notebook",
        )
        self._open(
            "/odoo/action-emsp_clearing.action_clearing_config_settings",
            ".app_settings_block[data-key=emsp_clearing], .o_setting_box#clearing_price_tolerance, #clearing_price_tolerance",
        )
