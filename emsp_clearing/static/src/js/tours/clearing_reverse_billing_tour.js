/** @odoo-module **/

import { registry } from "@web/core/registry";

// Data comes from emsp_clearing/tests/test_tours.py (TestReverseBillingTour): an eMSP contract;
// the manager switches reverse billing on, then finds the self-billed bill of the period.
registry.category("web_tour.tours").add("emsp_clearing_reverse_billing_option", {
    steps: () => [
        {
            content: "Open the Billing tab of the contract",
            trigger: ".o_notebook_headers a:contains('Billing')",
            run: "click",
        },
        {
            content: "Switch reverse billing (self-billing) on",
            trigger: ".o_field_widget[name='reverse_billing'] input",
            run: "click",
        },
        {
            content: "The journal is then ours: no invoicing journal to choose",
            trigger: ".o_form_view:not(:has(.o_field_widget[name='invoice_journal_id']))",
        },
        {
            content: "Save the contract",
            trigger: ".o_form_button_save:enabled",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_saved",
        },
    ],
});

registry.category("web_tour.tours").add("emsp_clearing_reverse_billing_bill", {
    steps: () => [
        {
            content: "The bill says it is self-billed",
            trigger: ".alert-info:contains('Autofacturation')",
        },
        {
            content: "Numbered by us",
            trigger: ".o_field_widget[name='name']:contains('AUTO/2026/0001')",
        },
        {
            content: "Open the published invoice reconciliation record",
            trigger: ".o_notebook_headers a:contains('Invoice Reconciliation Record (OCPI)')",
            run: "click",
        },
        {
            content: "Delivered to the CPO",
            trigger: ".o_field_widget[name='clearing_published_reconciliation_ids'] .o_data_row:contains('Delivered')",
        },
    ],
});
