/** @odoo-module **/

import { registry } from "@web/core/registry";

// Data comes from emsp_clearing/tests/test_tours.py: one period in its control window
// holding a session on the EVSE "FR*TST*E9TOUR" among others.
registry.category("web_tour.tours").add("emsp_clearing_portal_dispute", {
    url: "/my/clearing/periods",
    steps: () => [
        {
            content: "Open the clearing period",
            trigger: ".o_clearing_period_row a",
            run: "click",
        },
        {
            content: "The control window is open",
            trigger: ".o_clearing_window_open",
        },
        {
            content: "Several sessions are listed",
            trigger: ".o_clearing_cdr_row:nth-child(3)",
        },
        {
            content: "Search the EVSE",
            trigger: ".o_portal_search_panel input[name='search']",
            run: "edit E9TOUR",
        },
        {
            content: "Run the search",
            trigger: ".o_portal_search_panel button[type='submit']",
            run: "click",
        },
        {
            content: "Only the session of that EVSE is left",
            trigger: ".o_clearing_cdr_row:contains('E9TOUR'):only-child",
        },
        {
            content: "Open the session",
            trigger: ".o_clearing_cdr_row a",
            run: "click",
        },
        {
            content: "Choose the reason",
            trigger: ".o_clearing_dispute_form select[name='reason']",
            run: "select wrong_energy",
        },
        {
            content: "Explain",
            trigger: ".o_clearing_dispute_form textarea[name='comment']",
            run: "edit Our meter shows 3 kWh for this session.",
        },
        {
            content: "Send the dispute",
            trigger: ".o_clearing_dispute_submit",
            run: "click",
        },
        {
            content: "The dispute is recorded",
            trigger: ".o_clearing_success",
        },
        {
            content: "Its status is shown, the form is gone",
            trigger: ".o_clearing_dispute .o_clearing_dispute_state:contains('Open')",
        },
    ],
});
