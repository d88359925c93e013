/** @odoo-module **/

import { registry } from "@web/core/registry";

// Data comes from emsp_clearing/tests/test_tours.py: one open dispute to answer.
registry.category("web_tour.tours").add("emsp_clearing_dispute_accept", {
    url: "/odoo/action-emsp_clearing.action_clearing_dispute",
    steps: () => [
        {
            content: "Open the dispute to answer",
            trigger: ".o_data_row:contains('Wrong energy') td[name='name']",
            run: "click",
        },
        {
            content: "Write the answer",
            trigger: ".o_field_widget[name='answer'] textarea",
            run: "edit Checked against the meter values: accepted.",
        },
        {
            content: "Accept",
            trigger: ".o_form_statusbar button[name='action_accept']",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The dispute is accepted",
            trigger: ".o_statusbar_status .o_arrow_button_current:contains('Accepted')",
        },
    ],
});
