from odoo import models


class AccountStatementImport(models.TransientModel):
    _inherit = "account.statement.import"

    def _create_bank_statements(self, stmts_vals, result):
        """Match the lines just imported (payments to invoices, our transfers to their
        payments); the result's notifications tell how many each rule matched."""
        before = list(result["statement_ids"])
        # our matching runs next: not OCA's auto-reconciliation line by line on create
        res = super(AccountStatementImport, self.with_context(
            clearing_skip_auto_reconcile=True))._create_bank_statements(stmts_vals, result)
        new_ids = [sid for sid in result["statement_ids"] if sid not in before]
        statements = self.env["account.bank.statement"].browse(new_ids)
        counts = statements.line_ids._clearing_match()
        result.setdefault("clearing_match", {})
        for key, n in counts.items():
            result["clearing_match"][key] = result["clearing_match"].get(key, 0) + n
        return res
