# Copyright 2026 emsp_clearing contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "eMSP Clearing",
    "summary": "Clear EV-charging sessions (OCPI 2.2.1 CDRs) between a CPO and an eMSP "
    "under direct agreements",
    "version": "18.0.1.0.0",
    "license": "AGPL-3",
    "category": "Accounting",
    "author": "emsp_clearing contributors",
    "website": "https://github.com/emsp-clearing/emsp_clearing",
    "depends": [
        "account", "mail", "portal", "uom", "account_edi_ubl_cii", "account_qr_code_sepa",
    ],
    "external_dependencies": {"python": []},
    "data": [
        "security/clearing_groups.xml",
        "security/ir.model.access.csv",
        "security/clearing_security.xml",
        "data/ir_sequence_data.xml",
        "views/res_partner_views.xml",
        "wizard/clearing_tariff_import_views.xml",
        "views/clearing_price_line_views.xml",
        "views/clearing_contract_views.xml",
        "views/clearing_cdr_views.xml",
        "views/res_config_settings_views.xml",
        "security/ocpi_security.xml",
        "views/ocpi_connection_views.xml",
        "views/clearing_ingestion_log_views.xml",
        "views/clearing_cdr_inbox_views.xml",
        "wizard/cdr_import_wizard_views.xml",
        "data/mail_templates.xml",
        "views/clearing_period_views.xml",
        "views/clearing_dispute_views.xml",
        "views/portal_templates.xml",
        "data/clearing_invoice_data.xml",
        "views/account_move_views.xml",
        "reports/report_invoice.xml",
        "views/clearing_menus.xml",
        "data/ir_cron_data.xml",
    ],
    "demo": [
        "demo/clearing_demo.xml",
        "demo/clearing_portal_demo.xml",
        "demo/clearing_invoice_demo.xml",
    ],
    "assets": {
        "web.report_assets_common": [
            "emsp_clearing/static/src/scss/report_clearing.scss",
        ],
        "web.assets_tests": [
            "emsp_clearing/static/src/js/tours/*.js",
        ],
    },
    "application": True,
    "installable": True,
}
