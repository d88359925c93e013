"""Statement of account of one clearing contract (the eMSP's portal): its posted invoices and
credit notes, the payments reconciled with them, the running balance, and the open and overdue
amounts. Plain data built from records; the caller decides who may see which contract.

Amounts are exact Decimals in the contract's currency (the moves' currency), rounded to its
digits: the balance after the last entry equals the open amount, as it does in the ledger.
"""

from decimal import Decimal

from .numbers import float_to_decimal

REFUNDS = ("out_refund", "in_refund")


def to_money(value, currency):
    """Exact Decimal of an Odoo float amount in ``currency`` (its digits)."""
    return float_to_decimal(value, Decimal(1).scaleb(-currency.decimal_places))


def contract_statement(moves, today):
    """Statement of ``moves`` (the posted invoices and credit notes of one contract, one
    currency, read with the rights needed for their reconciliations) on ``today``.

    Returns ``{"entries": [...], "totals": {...}}``. Each entry is a dict: ``date``, ``kind``
    (``invoice``, ``refund`` or ``payment``), ``reference``, ``label``, ``due`` (invoices and
    credit notes), ``debit``/``credit`` (what raises / lowers what the counterparty owes),
    ``balance`` (running), ``move`` (the invoice or credit note, for a payment: the one it
    settles), ``open`` and ``overdue`` (invoices and credit notes). Totals: ``invoiced``,
    ``credited``, ``paid`` (payments received net of refunds paid out), ``open``, ``overdue``
    (the open amount of invoices due before ``today``), ``balance``.
    """
    currency = moves[:1].currency_id
    zero = Decimal(0)
    totals = dict.fromkeys(("invoiced", "credited", "paid", "open", "overdue"), zero)
    entries = []
    if not moves:
        return {"entries": entries, "totals": dict(totals, balance=zero), "currency": currency}
    own_lines = set()
    for move in moves:
        own_lines.update(move.line_ids.ids)
    for move in moves:
        refund = move.move_type in REFUNDS
        sign = -1 if refund else 1
        amount = to_money(move.amount_total, currency)
        residual = sign * to_money(move.amount_residual, currency)
        overdue = (residual if residual > 0 and move.invoice_date_due
                   and move.invoice_date_due < today else zero)
        totals["credited" if refund else "invoiced"] += amount
        totals["open"] += residual
        totals["overdue"] += overdue
        entries.append({
            "date": move.invoice_date or move.date, "kind": "refund" if refund else "invoice",
            "reference": move.name, "label": move.type_name, "due": move.invoice_date_due,
            "debit": zero if refund else amount, "credit": amount if refund else zero,
            "move": move, "open": residual, "overdue": overdue, "order": 0,
        })
        for partial in move._get_all_reconciled_invoice_partials():
            line = move.env["account.move.line"].browse(partial["aml_id"])
            if partial.get("is_exchange") or line.id in own_lines:
                continue  # an exchange difference, or a credit note set against an invoice
            paid = to_money(partial["amount"], currency)
            counterpart = line.move_id
            reference = counterpart.name
            memo = counterpart.ref or line.name
            if memo and memo != reference:
                reference = "%s (%s)" % (reference, memo)
            totals["paid"] += -paid if refund else paid
            entries.append({
                "date": line.date, "kind": "payment", "reference": reference,
                "label": line.journal_id.name, "due": False,
                "debit": paid if refund else zero, "credit": zero if refund else paid,
                "move": move, "open": None, "overdue": None, "order": 1,
            })
    entries.sort(key=lambda e: (e["date"], e["order"], e["move"].id))
    balance = zero
    for entry in entries:
        balance += entry["debit"] - entry["credit"]
        entry["balance"] = balance
    return {"entries": entries, "totals": dict(totals, balance=balance), "currency": currency}
