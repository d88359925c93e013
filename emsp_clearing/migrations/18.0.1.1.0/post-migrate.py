"""18.0.1.1.0: the live resale margin (eMSP hat).

The new column ``clearing_cdr.resale_amount`` is empty on the sessions stored before: those of
the eMSP contracts that have a resale grid are priced with it (set-based, as a change of the
resale grid prices them: ``clearing.contract._reprice_resale``), locked ones included -- they
never had a resale amount. Then the day figures, which gained the ``resale`` column, are
rebuilt from the sessions (``clearing.contract.day.rebuild_figures``)."""

import logging

from odoo import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    contracts = env["clearing.contract"].with_context(active_test=False).search(
        [("has_resale_grid", "=", True)])
    contracts._reprice_resale(all_sessions=True)
    _logger.info("emsp_clearing 18.0.1.1.0: resale amounts priced for %s contracts",
                 len(contracts))
    env["clearing.contract.day"].rebuild_figures()
