#!/usr/bin/env python3
"""Bank statement import and payment matching: a camt.053 of N lines against N open invoices.

    python3 bench/bench_payments.py [--sizes 1000,3000,10000] [--template DB] [--keep-db]

On a scratch database (created, emsp_clearing installed without demo, dropped at the end
unless --keep-db):

* setup (not timed): 200 eMSPs with an IBAN each, as many posted customer invoices with RF
  structured
  references (sale journal on the 'euro' reference model), amounts all different;
* a camt.053.001.02 statement of N credit lines, a mix of the cases in cycles of 20:
  8 paid by RF reference (written without spaces), 4 by invoice number in the remittance text,
  3 by payer IBAN + amount (no reference), 1 for two invoices (two references), 1 partial,
  1 overpayment, 1 unknown payer, 1 paid in another currency;
* timed, for each size N in turn (one statement of N lines each, on fresh invoices): the import
  (the OCA wizard: parse, create the statement lines) plus our matching (run by the import), as
  an accountant (not the superuser): time and SQL statements, split in phases (Odoo's posting of
  the statement lines' moves, our matching and reconciliation, the rest: parse and creation),
  the lines matched per rule and the exceptions per type; then the cost per line of each size,
  to show whether it is linear;
* after the setup, ``ANALYZE`` (what autovacuum's auto-analyze does after such a load; this
  script never relies on autovacuum itself: it may be off, as on the CI machines);
* ``--floor N`` (default 1,000; 0 skips it): the floor of Odoo itself, no code of ours in the
  path: N bank journal entries (liquidity line + the invoice's receivable, what a matched
  statement line becomes) created BATCH_SIZE at a time with ``account.move.create``, posted,
  and reconciled with N open invoices by Odoo's ``_reconcile_plan`` -- the least any import
  that books each bank line as an Odoo journal entry and reconciles it must cost.
"""

import argparse
import base64
import os
import sys
import time
from decimal import Decimal

from odoo_bench import REPO, create_db, drop_db, pg_exec, registry_of

sys.path.insert(0, os.path.join(REPO, "emsp_clearing", "tests"))
from camt_files import Entry, camt053  # noqa: E402

OUR_IBAN = "FR7630006000011234567890189"
CYCLE = (["ref"] * 8 + ["number"] * 4 + ["iban"] * 3
         + ["multi", "partial", "over", "unknown", "currency"])


def iban_de(n):
    """A valid German IBAN for account number ``n``."""
    bban = "37040044%010d" % n
    check = 98 - int(bban + "131400") % 97
    return "DE%02d%s" % (check, bban)


def setup(db, n, page=500):
    import odoo
    from odoo import Command, api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        company = env.company
        bank = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1)
        bank.bank_account_id = env["res.partner.bank"].create(
            {"acc_number": OUR_IBAN, "partner_id": company.partner_id.id})
        sale = env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", company.id)], limit=1)
        sale.write({"invoice_reference_model": "euro", "invoice_reference_type": "invoice"})
        other = env.ref("base.CHF") if company.currency_id.name != "CHF" else env.ref("base.EUR")
        other.active = True
        partners = env["res.partner"].create([
            {"name": "Bench eMSP %03d" % i, "is_company": True,
             "bank_ids": [Command.create({"acc_number": iban_de(i + 1)})]}
            for i in range(200)
        ])
        t = time.monotonic()
        for start in range(0, n, page):
            moves = env["account.move"].create([{
                "move_type": "out_invoice", "partner_id": partners[k % 200].id,
                "journal_id": sale.id, "invoice_date": "2026-11-01",
                "invoice_date_due": "2026-12-01",
                "invoice_line_ids": [Command.create({
                    "name": "Charging sessions", "price_unit": 10 + k * 0.01, "tax_ids": []})],
            } for k in range(start, min(n, start + page))])
            moves.action_post()
            cr.commit()
            env.invalidate_all()
        print("setup: %d invoices posted (%.0fs)" % (n, time.monotonic() - t), flush=True)
        return bank.id, company.currency_id.name, other.name


def statement(db, n, offset, ccy, other_ccy, msg):
    """camt.053 bytes of ``n`` lines paying the invoices from index ``offset``."""
    import odoo
    from odoo import api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        cr.execute("""
            SELECT m.name, m.payment_reference, m.amount_residual, p.id
              FROM account_move m JOIN res_partner p ON p.id = m.partner_id
             WHERE m.move_type = 'out_invoice' AND m.state = 'posted'
             ORDER BY m.id OFFSET %s LIMIT %s""", [offset, n])
        invoices = cr.fetchall()
        ibans = dict(env["res.partner.bank"].search([]).mapped(
            lambda b: (b.partner_id.id, b.acc_number)))
    entries, k, i = [], 0, 0
    while len(entries) < n and k < len(invoices):
        case = CYCLE[i % len(CYCLE)]
        name, ref, amount, partner = invoices[k]
        amount = Decimal(str(amount))
        kw = {"booking_date": "2026-12-02", "bank_ref": "%s-%06d" % (msg, i),
              "party_name": "Payer", "party_iban": ibans.get(partner, "")}
        if case == "ref":
            e = Entry(amount, structured_ref=ref.replace(" ", ""), **kw)
        elif case == "number":
            e = Entry(amount, unstructured="Invoice %s november" % name, **kw)
        elif case == "iban":
            e = Entry(amount, unstructured="clearing november", **kw)
        elif case == "multi":
            name2, ref2, amount2, _p = invoices[k + 1]
            e = Entry(amount + Decimal(str(amount2)), unstructured="%s %s" % (ref, ref2), **kw)
            k += 1
        elif case == "partial":
            e = Entry(amount - Decimal("5.00"), structured_ref=ref.replace(" ", ""), **kw)
        elif case == "over":
            e = Entry(amount + Decimal("5.00"), structured_ref=ref.replace(" ", ""), **kw)
        elif case == "unknown":
            kw.update(party_iban="FR1420041010050500013M02606", party_name="Stranger")
            e = Entry(Decimal("77.77"), unstructured="gift", **kw)
            k -= 1  # no invoice used
        else:
            e = Entry(amount, structured_ref=ref.replace(" ", ""),
                      instructed=(amount * Decimal("1.10"), other_ccy), **kw)
        entries.append(e)
        k += 1
        i += 1
    return camt053(msg, OUR_IBAN, ccy, entries), k


_PHASES = {}


def _timed(cls, name, label):
    """Bench instrumentation only: wrap ``cls.name`` to add its time and SQL statements to
    _PHASES[label] (outermost calls only)."""
    original = getattr(cls, name)
    depth = [0]

    def timed(self, *args, **kwargs):
        if depth[0]:
            return original(self, *args, **kwargs)
        depth[0] += 1
        q0, t0 = self.env.cr.sql_log_count, time.monotonic()
        try:
            res = original(self, *args, **kwargs)
            self.env.flush_all()
            return res
        finally:
            depth[0] -= 1
            fig = _PHASES.setdefault(label, [0.0, 0])
            fig[0] += time.monotonic() - t0
            fig[1] += self.env.cr.sql_log_count - q0

    setattr(cls, name, timed)


def _instrument():
    """Time Odoo's posting (account.move._post) and our matching inside the import."""
    if _PHASES.get("instrumented"):
        return
    from odoo.addons.account.models.account_move import AccountMove
    from odoo.addons.emsp_clearing.models.account_bank_statement_line import (
        AccountBankStatementLine)
    _timed(AccountMove, "_post", "post")
    _timed(AccountBankStatementLine, "_clearing_match", "match")
    _PHASES["instrumented"] = True


def run(db, bank_id, data, label, n):
    import odoo
    from odoo import api
    registry = registry_of(db)
    _instrument()
    _PHASES.pop("post", None)
    _PHASES.pop("match", None)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        admin.groups_id |= (env.ref("account.group_account_manager")
                             | env.ref("account.group_account_user"))
        cr.commit()
        env = api.Environment(cr, admin.id, {"lang": "en_US", "tz": "UTC"})
        env.invalidate_all()
        wizard = env["account.statement.import"].with_context(journal_id=bank_id).create(
            {"statement_file": base64.b64encode(data), "statement_filename": "%s.xml" % label})
        q0 = cr.sql_log_count
        t0 = time.monotonic()
        result = wizard._import_file()
        env.flush_all()
        elapsed = time.monotonic() - t0
        queries = cr.sql_log_count - q0
        cr.commit()
        lines = env["account.bank.statement"].browse(result["statement_ids"]).line_ids
        assert len(lines) == n, (len(lines), n)
        rules = env["account.bank.statement.line"]._read_group(
            [("id", "in", lines.ids)], ["clearing_match_rule"], ["__count"])
        exc = env["clearing.payment.exception"]._read_group(
            [("statement_line_id", "in", lines.ids)], ["exception_type"], ["__count"])
    print("%-28s %7.2f s %8d SQL  %6.0f lines/s  %5.1f SQL/line" % (
        label, elapsed, queries, n / elapsed, queries / n), flush=True)
    pt, pq = _PHASES.get("post", (0.0, 0))
    mt, mq = _PHASES.get("match", (0.0, 0))
    for name, t, q in (
            ("OCA parse + statement lines created", elapsed - pt - mt, queries - pq - mq),
            ("Odoo posting of their moves (_post)", pt, pq),
            ("our matching + reconciliation", mt, mq)):
        print("    %-38s %8.2f s %8d SQL  (%5.1f ms, %5.2f SQL per line)" % (
            name, t, q, 1000 * t / n, q / n))
    print("    matched per rule: %s" % ", ".join(
        "%s %d" % (r or "none", c) for r, c in sorted(rules, key=lambda x: str(x[0]))))
    print("    exceptions:       %s" % ", ".join("%s %d" % (t, c) for t, c in sorted(exc)))
    return elapsed, queries


def odoo_floor(db, bank_id, n, batch=250):
    """Odoo alone: n matched bank lines as journal entries, created, posted and reconciled
    (see the module's docstring). Rolled back."""
    import odoo
    from odoo import Command, api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        env = api.Environment(cr, env.ref("base.user_admin").id, {"lang": "en_US", "tz": "UTC"})
        bank = env["account.journal"].browse(bank_id)
        invoices = env["account.move"].search([
            ("move_type", "=", "out_invoice"), ("state", "=", "posted"),
            ("payment_state", "=", "not_paid")], order="id desc", limit=n)
        assert len(invoices) == n, (len(invoices), n)
        receivables = invoices.line_ids.filtered(lambda l: l.display_type == "payment_term")
        vals = [{
            "journal_id": bank.id, "date": "2026-12-02", "ref": "FLOOR-%d" % rl.move_id.id,
            "line_ids": [
                Command.create({"account_id": bank.default_account_id.id, "name": "Payment",
                                "debit": rl.amount_residual}),
                Command.create({"account_id": rl.account_id.id, "partner_id": rl.partner_id.id,
                                "name": rl.move_id.name, "credit": rl.amount_residual}),
            ]} for rl in receivables]
        env.flush_all()
        env.invalidate_all()
        figures, moves = [], env["account.move"]
        q0, t0 = cr.sql_log_count, time.monotonic()
        for start in range(0, n, batch):
            moves |= env["account.move"].create(vals[start:start + batch])
        env.flush_all()
        figures.append(("created (account.move.create)", time.monotonic() - t0,
                        cr.sql_log_count - q0))
        q0, t0 = cr.sql_log_count, time.monotonic()
        for start in range(0, n, batch):
            moves[start:start + batch].action_post()
        env.flush_all()
        figures.append(("posted (action_post)", time.monotonic() - t0, cr.sql_log_count - q0))
        q0, t0 = cr.sql_log_count, time.monotonic()
        for start in range(0, n, batch):
            env["account.move.line"]._reconcile_plan([
                move.line_ids.filtered(lambda l, a=rl.account_id: l.account_id == a) + rl
                for move, rl in zip(moves[start:start + batch],
                                    receivables[start:start + batch])])
        env.flush_all()
        figures.append(("reconciled (_reconcile_plan)", time.monotonic() - t0,
                        cr.sql_log_count - q0))
        assert set(invoices.mapped("payment_state")) == {"paid"}
        cr.rollback()
    total = sum(t for _l, t, _q in figures)
    print("Odoo's floor, %d lines: %7.2f s %8d SQL  (%.1f ms a line; 10,000 lines: %.0f s)" % (
        n, total, sum(q for _l, _t, q in figures), 1000 * total / n, 10000 * total / n))
    for label, t, q in figures:
        print("    %-38s %8.2f s %8d SQL  (%5.1f ms, %5.2f SQL per line)" % (
            label, t, q, 1000 * t / n, q / n))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,3000,10000",
                    help="statement sizes, comma-separated, run in this order")
    ap.add_argument("--template", help="clone this database (emsp_clearing installed)")
    ap.add_argument("--floor", type=int, default=1000,
                    help="lines of Odoo's own floor measured after the imports (0: skip)")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    db = "bench_payments_%d" % os.getpid()
    create_db(db, args.template)
    try:
        sizes = [int(x) for x in args.sizes.split(",")]
        bank_id, ccy, other = setup(db, sum(sizes) + args.floor)
        # the statistics autovacuum's auto-analyze would compute after this load
        pg_exec("ANALYZE", db=db)
        offset, figures = 0, []
        for i, n in enumerate(sizes):
            print("load: %s" % " ".join("%.2f" % x for x in os.getloadavg()), flush=True)
            data, used = statement(db, n, offset, ccy, other, "S%d" % i)
            offset += used
            figures.append((n,) + run(db, bank_id, data, "import+match %d lines" % n, n))
        print("per line:  " + "   ".join("%d lines: %.1f ms, %.1f SQL" % (
            n, 1000 * t / n, q / n) for n, t, q in figures))
        print("load: %s" % " ".join("%.2f" % x for x in os.getloadavg()), flush=True)
        if args.floor:
            odoo_floor(db, bank_id, args.floor)
            print("load: %s" % " ".join("%.2f" % x for x in os.getloadavg()), flush=True)
    finally:
        if args.keep_db:
            print("kept database %s" % db)
        else:
            drop_db(db)


if __name__ == "__main__":
    sys.exit(main())
