/** @odoo-module **/

import { registry } from "@web/core/registry";

// Data comes from emsp_clearing/tests/test_portal_statement.py: one contract with an invoice,
// a credit note and a partial payment, and a period with one disputed (rejected) session.
registry.category("web_tour.tours").add("emsp_clearing_portal_statement", {
    url: "/my",
    steps: () => [
        {
            content: "The home page offers the statements of account (shown: its counter is not 0)",
            trigger: "a[href='/my/clearing/statements']",
            run: "click",
        },
        {
            content: "Open the statement of the contract",
            trigger: ".o_clearing_statement_row a",
            run: "click",
        },
        {
            content: "The open and overdue amounts are shown",
            trigger: ".o_clearing_statement_totals .o_clearing_overdue",
        },
        {
            content: "The invoice, the credit note and the payment are listed",
            trigger: ".o_clearing_entry_invoice + .o_clearing_entry_refund + .o_clearing_entry_payment",
        },
        {
            content: "The period shows what was billed next to what was disputed",
            trigger: ".o_clearing_statement_period:has(.o_clearing_disputed)",
        },
        {
            content: "Open the period from the statement",
            trigger: ".o_clearing_statement_period a",
            run: "click",
        },
        {
            content: "The period's sessions are listed",
            trigger: ".o_clearing_cdr_row",
        },
    ],
});
