"""Bank statement lines: our matching of eMSP payments to invoices, and of our outgoing
transfers (camt.054) to the payments of the payment orders."""

import logging

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError

from ..tools import payment_matching as pm

_logger = logging.getLogger(__name__)

MATCH_RULES = [
    ("ref", "Structured reference"),
    ("number", "Invoice number"),
    ("iban", "Payer IBAN and amount"),
    ("multi", "Several invoices"),
    ("payment", "Outgoing payment"),
    ("manual", "Exception resolved"),
]

# Lines created, and reconciliations made, per batch: Odoo's posting (numbering each move in
# turn) and its reconciliation recompute per record what is pending for the whole batch, so
# their cost per line grows with the batch; batches of this size keep it flat.
BATCH_SIZE = 250


class AccountBankStatementLine(models.Model):
    _inherit = "account.bank.statement.line"

    clearing_match_rule = fields.Selection(
        MATCH_RULES, string="Matched By", readonly=True, copy=False,
        help="The rule of the clearing matching that reconciled this line.",
    )
    clearing_exception_ids = fields.One2many(
        "clearing.payment.exception", "statement_line_id", string="Bank Payment Exceptions",
        readonly=True,
    )

    # ------------------------------------------------------------------ creation
    @api.model_create_multi
    def create(self, vals_list):
        """Odoo creates each line's move empty, then writes its two journal items into it, one
        move at a time (~0.1 s a line). Here the items are prepared up front by Odoo's own
        ``_prepare_move_line_default_vals`` on a new record holding the same values, so that
        the moves are created with their items in one batch: the same journal items.
        Many lines are created (and posted) BATCH_SIZE at a time, with the numbers one create
        would give them; the lines are returned in the order of ``vals_list``."""
        for vals in vals_list:
            if "line_ids" not in vals:
                line_vals = self._clearing_prepare_default_lines(vals)
                if line_vals:
                    vals["line_ids"] = [Command.create(v) for v in line_vals]
        if len(vals_list) <= BATCH_SIZE or not all(vals.get("date") for vals in vals_list):
            return super().create(vals_list)
        # Odoo numbers the moves of one create in (date, ref) order: the batches are cut from
        # the lines in that order, so each line gets the number one create would give it
        order = sorted(range(len(vals_list)), key=lambda i: (
            fields.Date.to_date(vals_list[i]["date"]), vals_list[i].get("ref") or ""))
        ids = [None] * len(vals_list)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            lines = super().create([vals_list[i] for i in batch])
            for i, line_id in zip(batch, lines.ids):
                ids[i] = line_id
            if start == 0:
                self._clearing_refresh_move_statistics()
        return self.browse(ids)

    @api.model
    def _clearing_refresh_move_statistics(self):
        """Refresh PostgreSQL's statistics of the journal entries after the first batch of a
        large import. Odoo numbers each move with a query for the journal's latest move of the
        period; while the statistics still count the bank journal as (nearly) empty -- the
        first import into it, whose rows autovacuum cannot see before the commit -- PostgreSQL
        plans that query by the date and reads every move of the period, once per move: the
        import's cost per line then grows with its size (5.4 ms a move at 3,000 lines). ANALYZE
        in the import's own transaction counts its uncommitted rows."""
        self.env.flush_all()
        self.env.cr.execute("ANALYZE account_move")

    @api.model
    def _clearing_prepare_default_lines(self, vals):
        """The default journal items of a statement line about to be created with ``vals``
        (as Odoo's ``create`` would write them afterwards), or None when the journal is not
        known yet (Odoo then writes them itself)."""
        journal_id = vals.get("journal_id")
        if not journal_id and vals.get("statement_id"):
            journal_id = self.env["account.bank.statement"].browse(
                vals["statement_id"]).journal_id.id
        if not journal_id:
            return None
        journal = self.env["account.journal"].browse(journal_id)
        new_vals = dict(vals, journal_id=journal_id)
        new_vals.pop("counterpart_account_id", None)
        # as Odoo's create: no foreign currency when it is the journal's
        journal_currency = journal.currency_id or journal.company_id.currency_id
        if new_vals.get("foreign_currency_id") == journal_currency.id:
            new_vals["foreign_currency_id"] = None
            new_vals["amount_currency"] = 0.0
        new_vals.setdefault("amount", 0)
        st_line = self.new({k: v for k, v in new_vals.items() if k in self._fields})
        lines = st_line._prepare_move_line_default_vals(
            counterpart_account_id=vals.get("counterpart_account_id"))
        for line in lines:
            line.pop("move_id", None)
        return lines

    # ------------------------------------------------------------------ entry points
    def _auto_reconcile(self):
        """On import, our matching (run right after the lines are created) replaces OCA's
        auto-reconciliation, which applies the reconciliation models line by line."""
        if self.env.context.get("clearing_skip_auto_reconcile"):
            return
        return super()._auto_reconcile()

    @api.model
    def _cron_clearing_match(self):
        """Match every statement line still open (its move still holds a suspense line)."""
        self.env.cr.execute("""
            SELECT st.id
              FROM account_bank_statement_line st
              JOIN account_move m ON m.id = st.move_id
              JOIN account_journal j ON j.id = st.journal_id
             WHERE m.state = 'posted'
               AND EXISTS (SELECT 1 FROM account_move_line l
                            WHERE l.move_id = st.move_id
                              AND l.account_id = j.suspense_account_id)
             ORDER BY m.date, st.id
        """)
        lines = self.browse([r[0] for r in self.env.cr.fetchall()])
        return lines._clearing_match()

    def _clearing_open_lines(self):
        """The lines of ``self`` whose move still has a suspense line (not matched yet)."""
        if not self:
            return self
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT st.id
              FROM account_bank_statement_line st
              JOIN account_move m ON m.id = st.move_id
              JOIN account_journal j ON j.id = st.journal_id
             WHERE st.id = ANY(%s) AND m.state = 'posted'
               AND EXISTS (SELECT 1 FROM account_move_line l
                            WHERE l.move_id = st.move_id
                              AND l.account_id = j.suspense_account_id)
        """, [self.ids])
        open_ids = {r[0] for r in self.env.cr.fetchall()}
        return self.filtered(lambda st: st.id in open_ids)

    def _clearing_match(self):
        """Match the open lines of ``self``: reconcile the full matches, record the others in
        the payment exception journal. Returns {rule or exception type: number of lines}."""
        lines = self._clearing_open_lines()
        counts = {}
        incoming = lines.filtered(lambda st: st.amount > 0)
        outgoing = lines.filtered(lambda st: st.amount < 0)
        for company in incoming.company_id:
            part = incoming.filtered(lambda st, c=company: st.company_id == c)
            for key, n in part._clearing_match_incoming(company).items():
                counts[key] = counts.get(key, 0) + n
        for company in outgoing.company_id:
            part = outgoing.filtered(lambda st, c=company: st.company_id == c)
            for key, n in part._clearing_match_outgoing(company).items():
                counts[key] = counts.get(key, 0) + n
        return counts

    # ------------------------------------------------------------------ incoming
    @api.model
    def _clearing_open_invoices(self, company):
        """Every open customer invoice of ``company`` as pm.OpenInvoice, in due order (one
        query). Amounts in minor units of the invoice currency."""
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT m.id, m.name, coalesce(p.commercial_partner_id, m.partner_id),
                   m.currency_id, coalesce(m.payment_reference, ''),
                   array_agg(aml.id ORDER BY aml.id), sum(aml.amount_residual_currency)
              FROM account_move m
              JOIN account_move_line aml ON aml.move_id = m.id
                   AND aml.display_type = 'payment_term' AND NOT aml.reconciled
              LEFT JOIN res_partner p ON p.id = m.partner_id
             WHERE m.company_id = %s AND m.state = 'posted' AND m.move_type = 'out_invoice'
               AND m.payment_state IN ('not_paid', 'partial')
             GROUP BY m.id, p.commercial_partner_id
            HAVING sum(aml.amount_residual_currency) > 0
             ORDER BY m.invoice_date_due, m.id
        """, [company.id])
        rows = self.env.cr.fetchall()
        scale = self._clearing_scales({r[3] for r in rows})
        return [
            pm.OpenInvoice(
                line_ids=tuple(r[5]), move_id=r[0], name=r[1] or "", partner_id=r[2],
                currency_id=r[3], residual=round(r[6] * scale[r[3]]),
                reference=pm.reference_key(r[4]),
            )
            for r in rows
        ]

    @api.model
    def _clearing_scales(self, currency_ids):
        currencies = self.env["res.currency"].browse(list(currency_ids))
        return {c.id: 10 ** c.decimal_places for c in currencies}

    def _clearing_bank_lines(self):
        """self as pm.BankLine (amount in minor units of the currency paid)."""
        scale = self._clearing_scales(
            set((self.foreign_currency_id | self.currency_id).ids))
        result = []
        for st in self:
            currency = st.foreign_currency_id or st.currency_id
            amount = st.amount_currency if st.foreign_currency_id else st.amount
            result.append(pm.BankLine(
                id=st.id, amount=round(amount * scale[currency.id]), currency_id=currency.id,
                partner_id=st.partner_id.commercial_partner_id.id or 0,
                texts=(st.ref or "", st.payment_ref or ""),
            ))
        return result

    def _clearing_closed_invoices(self, company, bank_lines):
        """References and numbers of the invoices no longer open that ``bank_lines`` name
        (one query): {key: move id}, {upper name: move id}."""
        refs, names = set(), set()
        for line in bank_lines:
            r, n = pm.candidate_keys(" ".join(line.texts))
            refs |= r
            names |= n
        if not refs and not names:
            return {}, {}
        self.env.cr.execute("""
            SELECT id, upper(regexp_replace(coalesce(payment_reference, ''), '\\s', '', 'g')),
                   upper(name)
              FROM account_move
             WHERE company_id = %s AND move_type = 'out_invoice' AND state != 'draft'
               AND (upper(regexp_replace(coalesce(payment_reference, ''), '\\s', '', 'g'))
                        = ANY(%s)
                    OR upper(name) = ANY(%s))
        """, [company.id, list(refs), list(names)])
        by_ref, by_name = {}, {}
        for move_id, ref, name in self.env.cr.fetchall():
            if ref in refs:
                by_ref.setdefault(ref, move_id)
            if name in names:
                by_name.setdefault(name, move_id)
        return by_ref, by_name

    def _clearing_match_incoming(self, company):
        index = pm.InvoiceIndex(self._clearing_open_invoices(company))
        bank_lines = self._clearing_bank_lines()
        decisions = pm.match_lines(bank_lines, index)
        unknown = [d.line for d in decisions if d.kind == "unknown"]
        closed_refs, closed_names = self._clearing_closed_invoices(company, unknown)
        if closed_refs or closed_names:
            again = {d.line.id: d for d in pm.match_lines(
                unknown, index, closed_refs, closed_names)}
            decisions = [again.get(d.line.id, d) for d in decisions]
        by_id = {st.id: st for st in self}
        counts = {}
        exception_vals = []
        Move = self.env["account.move"]
        plans, rules = [], {}
        receivables = {aml.id: aml for aml in self.env["account.move.line"].browse(
            [lid for d in decisions if d.invoices and not d.kind
             for inv in d.invoices for lid in inv.line_ids])}
        for decision in decisions:
            st = by_id[decision.line.id]
            if decision.invoices and not decision.kind:
                plans.append((st, [
                    {"account_id": aml.account_id.id, "partner_id": aml.partner_id.id,
                     "name": aml.move_id.name, "amount": aml.amount_residual_currency,
                     "counterpart": aml}
                    for aml in (receivables[lid] for inv in decision.invoices
                                for lid in inv.line_ids)
                ]))
                rules.setdefault(decision.rule, []).append(st.id)
                counts[decision.rule] = counts.get(decision.rule, 0) + 1
                continue
            vals = st._clearing_exception_vals(decision, closed_refs, closed_names)
            counts[vals["exception_type"]] = counts.get(vals["exception_type"], 0) + 1
            exception_vals.append(vals)
        self._clearing_reconcile_many(plans)
        for rule, ids in rules.items():
            self.browse(ids).clearing_match_rule = rule
        self.env["clearing.payment.exception"]._record(exception_vals)
        matched = self.filtered("clearing_match_rule")
        matched.clearing_exception_ids.filtered(lambda e: e.state == "open")._resolve(
            _("Matched by the clearing matching."))
        return counts

    def _clearing_exception_vals(self, decision, closed_refs, closed_names):
        self.ensure_one()
        Move = self.env["account.move"]
        kind = decision.kind
        invoice = Move.browse([inv.move_id for inv in decision.invoices[:1]])
        if kind == "unknown" and decision.references:
            ref = decision.references[0]
            invoice = Move.browse(closed_refs.get(ref) or closed_names.get(ref))
            if invoice.state == "cancel" or invoice.payment_state == "reversed":
                kind = "credited"
            else:
                kind = "duplicate"
        currency = self.foreign_currency_id or self.currency_id
        received = self.amount_currency if self.foreign_currency_id else self.amount
        expected = 0.0
        if decision.invoices:
            inv_currency = self.env["res.currency"].browse(decision.invoices[0].currency_id)
            expected = inv_currency.round(
                decision.expected / 10 ** inv_currency.decimal_places)
        if kind in ("duplicate", "credited"):
            expected = 0.0
        partner = (invoice.commercial_partner_id or self.partner_id.commercial_partner_id)
        return {
            "exception_type": kind,
            "statement_line_id": self.id,
            "invoice_id": invoice.id,
            "invoice_ids": [Command.set([inv.move_id for inv in decision.invoices])],
            "partner_id": partner.id,
            "company_id": self.company_id.id,
            "currency_id": currency.id,
            "expected_amount": expected,
            "received_amount": received,
        }

    # ------------------------------------------------------------------ reconciliation
    def _clearing_reconcile_parts(self, parts):
        """Replace the suspense line of this statement line by ``parts`` and reconcile them.

        ``parts``: list of dicts with ``account_id``, ``partner_id``, ``name``, ``amount`` (in
        the currency of the suspense line, positive for money received) and ``counterpart``
        (move lines to reconcile the new line with, or an empty recordset). The amounts must
        add up to the line. Returns the new move lines, in the order of ``parts``.
        """
        self.ensure_one()
        return self._clearing_reconcile_many([(self, parts)])[0]

    def _clearing_reconcile_many(self, plans):
        """``_clearing_reconcile_parts`` for many lines at once: ``plans`` is a list of
        (statement line, parts). Per batch of BATCH_SIZE plans, the suspense lines are found by
        one query, removed by one unlink, the new lines created by one create and reconciled
        by one reconciliation plan (Odoo's ``_reconcile_plan``). Returns the new lines of each
        plan, in order."""
        if len(plans) > BATCH_SIZE:
            result = []
            for start in range(0, len(plans), BATCH_SIZE):
                result += self._clearing_reconcile_many(plans[start:start + BATCH_SIZE])
            return result
        if not plans:
            return []
        AML = self.env["account.move.line"]
        st_ids = [st.id for st, _parts in plans]
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT st.id, array_agg(l.id) FILTER (WHERE l.account_id = j.suspense_account_id),
                   count(*) FILTER (WHERE l.account_id != j.suspense_account_id
                                      AND l.account_id != j.default_account_id)
              FROM account_bank_statement_line st
              JOIN account_journal j ON j.id = st.journal_id
              JOIN account_move_line l ON l.move_id = st.move_id
             WHERE st.id = ANY(%s)
             GROUP BY st.id
        """, [st_ids])
        found = {r[0]: (r[1] or [], r[2]) for r in self.env.cr.fetchall()}
        suspense_ids = []
        for st, _parts in plans:
            susp, others = found.get(st.id, ([], 0))
            if len(susp) != 1 or others:
                raise UserError(_(
                    "Statement line %s is already reconciled: undo its reconciliation first.",
                    st.display_name))
            suspense_ids.append(susp[0])
        suspenses = AML.browse(suspense_ids)
        vals_list, counterparts = [], []
        for (st, parts), suspense in zip(plans, suspenses):
            currency = suspense.currency_id
            total = -suspense.amount_currency
            paid = sum(p["amount"] for p in parts)
            if currency.compare_amounts(paid, total):
                raise UserError(_(
                    "The amounts to reconcile (%(parts)s) do not add up to statement line "
                    "%(line)s (%(total)s).", parts=paid, line=st.display_name, total=total))
            company_currency = st.company_id.currency_id
            remaining_balance = -suspense.balance
            for i, part in enumerate(parts):
                if i == len(parts) - 1:
                    balance = remaining_balance
                else:
                    balance = company_currency.round(-suspense.balance * part["amount"] / total)
                    remaining_balance -= balance
                vals_list.append({
                    "move_id": st.move_id.id,
                    "account_id": part["account_id"],
                    "partner_id": part.get("partner_id") or False,
                    "name": part.get("name") or st.payment_ref,
                    "currency_id": currency.id,
                    "amount_currency": -part["amount"],
                    "balance": -balance,
                })
                counterparts.append(part.get("counterpart") or AML)
        moves = suspenses.move_id
        container = {"records": moves}
        with moves._check_balanced(container):
            suspenses.with_context(
                force_delete=True, tracking_disable=True, check_move_validity=False,
                skip_account_move_synchronization=True,
            ).unlink()
            new_lines = AML.with_context(
                check_move_validity=False, skip_account_move_synchronization=True,
                skip_invoice_sync=True,
            ).create(vals_list)
        AML._reconcile_plan([line + other for line, other in zip(new_lines, counterparts)
                             if other])
        result, i = [], 0
        for _st, parts in plans:
            result.append(new_lines[i:i + len(parts)])
            i += len(parts)
        return result

    def _clearing_invoice_parts(self, invoices, amount=None):
        """Parts paying the open receivable lines of ``invoices`` in due order, with
        ``amount`` (default: their whole residual)."""
        parts = []
        left = amount
        for line in invoices.line_ids.filtered(
                lambda l: l.display_type == "payment_term" and not l.reconciled
        ).sorted(lambda l: (l.date_maturity or l.date, l.id)):
            pay = line.amount_residual_currency
            if left is not None:
                pay = min(pay, left)
                left -= pay
            if pay <= 0:
                continue
            parts.append({
                "account_id": line.account_id.id,
                "partner_id": line.partner_id.id,
                "name": line.move_id.name,
                "amount": pay,
                "counterpart": line,
            })
        return parts

    def _clearing_reconcile_invoices(self, invoices):
        """Reconcile this line with ``invoices`` whose residual it pays exactly."""
        return self._clearing_reconcile_parts(self._clearing_invoice_parts(invoices))

    # ------------------------------------------------------------------ outgoing (camt.054)
    def _clearing_match_outgoing(self, company):
        """Debits of our account: the transfers of our payment orders (EndToEndId = the
        payment's id, as account_banking_sepa_credit_transfer writes it), closed against the
        payment's outstanding line when the amount is the payment's."""
        self.env.flush_all()
        self.env.cr.execute("""
            SELECT p.id, aml.id, -aml.amount_residual_currency, aml.currency_id
              FROM account_payment p
              JOIN account_move_line aml ON aml.move_id = p.move_id
                   AND aml.account_id = p.outstanding_account_id AND NOT aml.reconciled
             WHERE p.company_id = %s AND p.payment_type = 'outbound' AND p.state != 'draft'
               AND p.payment_order_id IS NOT NULL
        """, [company.id])
        open_payments = {str(r[0]): r for r in self.env.cr.fetchall()}
        counts = {}
        for st in self:
            texts = " ".join(filter(None, [st.ref, st.payment_ref])).split()
            found = next((open_payments[t] for t in texts if t in open_payments), None)
            currency = st.foreign_currency_id or st.currency_id
            paid = -(st.amount_currency if st.foreign_currency_id else st.amount)
            if found and found[3] == currency.id and not currency.compare_amounts(
                    found[2], paid):
                aml = self.env["account.move.line"].browse(found[1])
                st._clearing_reconcile_parts([{
                    "account_id": aml.account_id.id, "partner_id": aml.partner_id.id,
                    "name": aml.move_id.name, "amount": -paid, "counterpart": aml,
                }])
                st.clearing_match_rule = "payment"
                del open_payments[str(found[0])]
                counts["payment"] = counts.get("payment", 0) + 1
        return counts
