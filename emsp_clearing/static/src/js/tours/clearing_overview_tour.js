/** @odoo-module **/

import { registry } from "@web/core/registry";

// Data comes from emsp_clearing/tests/test_tours.py: a contract described "Tour overview" with
// one open dispute.
registry.category("web_tour.tours").add("emsp_clearing_overview", {
    url: "/odoo",
    steps: () => [
        {
            content: "Open the apps menu",
            trigger: ".o_navbar_apps_menu button",
            run: "click",
        },
        {
            content: "Open the Clearing app",
            trigger: ".o-dropdown--menu .o_app[data-menu-xmlid='emsp_clearing.menu_clearing_root']",
            run: "click",
        },
        {
            content: "The overview is the first screen: the contract's card and its graph",
            trigger: ".o_clearing_overview .o_kanban_record:contains('Tour overview') canvas",
        },
        {
            content: "Follow the open disputes of the card",
            trigger: ".o_clearing_overview .o_kanban_record:contains('Tour overview') a.o_clearing_overview_disputes:contains('1')",
            run: "click",
        },
        {
            content: "The list of its open disputes: the disputed session",
            trigger: ".o_list_view .o_data_row:contains('Wrong energy')",
        },
    ],
});
