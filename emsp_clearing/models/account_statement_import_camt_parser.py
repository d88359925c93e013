import hashlib

from odoo import models


class AccountStatementImportCamtParser(models.AbstractModel):
    _inherit = "account.statement.import.camt.parser"

    def parse_statement(self, ns, node):
        """Give every transaction an import id, so that a file imported again imports
        nothing: the bank's own reference of the transaction (TxDtls/Refs/AcctSvcrRef) when
        it gives one, else its entry's (Ntry/AcctSvcrRef or NtryRef) with the position of the
        transaction in the entry, else the statement id with the positions."""
        result = super().parse_statement(ns, node)
        stmt_id = (node.xpath("./ns:Id", namespaces={"ns": ns}) or [None])[0]
        stmt_id = stmt_id.text if stmt_id is not None else ""
        ids = []
        for e_idx, entry in enumerate(node.xpath("./ns:Ntry", namespaces={"ns": ns})):
            entry_ref = entry.xpath("./ns:AcctSvcrRef/text() | ./ns:NtryRef/text()",
                                    namespaces={"ns": ns})
            details = entry.xpath("./ns:NtryDtls/ns:TxDtls", namespaces={"ns": ns}) or [None]
            for t_idx, tx in enumerate(details):
                tx_ref = (tx.xpath("./ns:Refs/ns:AcctSvcrRef/text()", namespaces={"ns": ns})
                          if tx is not None else [])
                if tx_ref:
                    ids.append(tx_ref[0])
                elif entry_ref:
                    ids.append("%s-%d" % (entry_ref[0], t_idx))
                else:
                    ids.append("%s-%d-%d" % (stmt_id, e_idx, t_idx))
        for transaction, uid in zip(result["transactions"], ids):
            if not transaction.get("unique_import_id"):
                transaction["unique_import_id"] = hashlib.sha1(uid.encode()).hexdigest()[:32] \
                    if len(uid) > 60 else uid
        return result

    def parse_transaction_details(self, ns, node, transaction):
        """Also read the amount instructed by the payer (AmtDtls/InstdAmt) when it is in
        another currency than the account: the line then carries that currency."""
        super().parse_transaction_details(ns, node, transaction)
        instructed = node.xpath("./ns:AmtDtls/ns:InstdAmt/ns:Amt", namespaces={"ns": ns})
        if instructed:
            currency_code = instructed[0].get("Ccy")
            account_ccy = node.xpath("../../ns:Amt/@Ccy", namespaces={"ns": ns})
            if currency_code and account_ccy and currency_code != account_ccy[0]:
                currency = self.env["res.currency"].with_context(active_test=False).search(
                    [("name", "=", currency_code)], limit=1)
                if currency:
                    sign = -1 if transaction.get("amount", 0) < 0 else 1
                    transaction["foreign_currency_id"] = currency.id
                    transaction["amount_currency"] = sign * float(instructed[0].text)
