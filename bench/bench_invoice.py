#!/usr/bin/env python3
"""Invoicing at scale: one locked period of N sessions through the whole chain.

    python3 bench/bench_invoice.py [--sizes 10000,100000,300000] [--template DB] [--keep-db]

On a scratch database (emsp_clearing without demo data; ``--template`` cloned when given),
for each size N, in a fresh process (so that each size's peak RSS is its own):

1. a CPO-side contract with its own eMSP, one period holding N priced sessions inserted with
   SQL (kWh with 3 decimals at 0.30/kWh: per-session rounding on every line), locked;
2. **move**: ``clearing.period._invoice_period`` -- lines built, move created, sessions linked,
   posted (RF reference), handed to sending -- and its commit;
3. **pdf**: the invoice PDF rendered by Odoo's report (wkhtmltopdf reads the report assets from
   an Odoo server this script starts on a free loopback port);
4. **xlsx**: the per-session breakdown (``clearing.period.get_breakdown_xlsx``, when the
   documents part of the module provides it);
5. **mail**: Odoo's sending of the move (``account.move.send._generate_and_send_invoices``, as
   its batch cron does): PDF rendered and XLSX built again, attached, and the mail queued. The
   chain is steps 2 + 5; steps 3 and 4 time the documents alone.

It prints each step's seconds and the process's peak RSS after the step, then a summary per
size. Target (issue #10): 100k sessions <= 60 s and <= 1 GB RSS, growing linearly.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from odoo_bench import create_db, drop_db, free_port, odoo_args, pg_exec, registry_of


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def populate(env, n, tag):
    from datetime import timedelta

    from odoo import Command

    company = env.company
    if not company.partner_id.ocpi_party_id:
        company.partner_id.write({"ocpi_country_code": "FR", "ocpi_party_id": "BCH",
                                  "ocpi_is_cpo": True})
    if not company.partner_id.bank_ids:
        env["res.partner.bank"].create({"acc_number": "FR7630006000011234567890189",
                                        "partner_id": company.partner_id.id})
    env.ref("base.EUR").active = True
    emsp = env["res.partner"].create({
        "name": "Bench eMSP %s" % tag, "is_company": True, "ocpi_country_code": "FR",
        "ocpi_party_id": "B%02d" % (n % 97), "ocpi_is_emsp": True,
        "email": "bench-%s@emsp.example" % tag})
    tax = env["account.tax"].create({"name": "Bench VAT 20%% %s" % tag, "amount": 20.0,
                                     "amount_type": "percent", "type_tax_use": "sale"})
    contract = env["clearing.contract"].create({
        "name": "BENCH-%s" % tag, "partner_id": emsp.id, "role": "cpo",
        "currency_id": env.ref("base.EUR").id, "date_start": "2020-01-01",
        "tz": "Europe/Paris", "tax_ids": [Command.set(tax.ids)],
        "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.30})]})
    Period = env["clearing.period"]
    period = Period.sudo().create(Period._period_vals(contract, env.cr.now().date()))
    start, _end = period._utc_bounds()
    env.flush_all()
    env.cr.execute(
        """
        INSERT INTO clearing_cdr (
            ocpi_id, country_code, party_id, session_id, token_uid, token_country_code,
            token_party_id, location_id, evse_uid, evse_id,
            start_datetime, end_datetime, currency_id, company_id, contract_id, partner_id,
            period_id, match_state, state, dispute_state, locked, is_late, credit,
            energy_kwh, duration_hours, parking_hours, amount_energy, amount_fixed,
            amount_time, amount_parking, amount_reservation, amount_adjustment,
            amount_untaxed, amount_tax, amount_total, price_breakdown, raw_json,
            price_mismatch, create_uid, write_uid, create_date, write_date)
        SELECT %(tag)s || '-' || g, 'FR', 'BCH', 'S-' || g, 'TOK' || (g %% 5000), 'FR', 'B',
               'LOC-' || (g %% 300), 'EVSE-' || (g %% 1200),
               'FR*BCH*E' || lpad((g %% 1200)::text, 5, '0'),
               e - interval '45 minutes', e, %(currency)s, %(company)s, %(contract)s,
               %(partner)s, %(period)s, 'matched', 'locked', 'none', TRUE, FALSE, FALSE,
               kwh, 0.75, 0, round(kwh * 0.30, 2), 0, 0, 0, 0, 0,
               round(kwh * 0.30, 2), round(round(kwh * 0.30, 2) * 0.2, 2),
               round(kwh * 0.30, 2) + round(round(kwh * 0.30, 2) * 0.2, 2),
               jsonb_build_array(jsonb_build_object(
                   'category', 'ENERGY', 'dimension', 'ENERGY', 'unit_price', '0.3',
                   'billed_volume', kwh::text, 'excl_vat', (kwh * 0.3)::text)),
               '{}'::jsonb, FALSE, 1, 1, now(), now()
          FROM (SELECT g, %(start)s::timestamp + (g %% 86400) * interval '20 second' AS e,
                       round((3 + (g %% 60013) / 1000.0)::numeric, 3) AS kwh
                  FROM generate_series(1, %(n)s) AS g) AS s
        """,
        {"tag": tag, "currency": contract.currency_id.id, "company": company.id,
         "contract": contract.id, "partner": emsp.id, "period": period.id,
         "start": start + timedelta(hours=1), "n": n},
    )
    env.cr.execute("UPDATE clearing_period SET state = 'locked' WHERE id = %s", [period.id])
    env.invalidate_all()
    return period.id


def run_size(db, n, port):
    """One size, in this process: prints one JSON line of figures at the end."""
    from odoo import SUPERUSER_ID, api

    registry = registry_of(db)
    figures = {"n": n}
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["ir.config_parameter"].set_param("report.url", "http://127.0.0.1:%d" % port)
        t0 = time.perf_counter()
        period_id = populate(env, n, "N%d" % n)
        cr.commit()
        print("  %d sessions inserted in %.1f s" % (n, time.perf_counter() - t0), flush=True)
    pg_exec("VACUUM ANALYZE clearing_cdr", db=db)

    def step(name, func):
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            t0 = time.perf_counter()
            result = func(env)
            cr.commit()
            seconds = time.perf_counter() - t0
        figures[name] = seconds
        print("  %-6s %7.2f s   peak RSS %6.0f MB   %s" % (name, seconds, rss_mb(), result or ""),
              flush=True)

    def move(env):
        move = env["clearing.period"].browse(period_id)._invoice_period()
        sessions = env["clearing.cdr"].search_count([("invoice_move_id", "=", move.id)])
        period = env["clearing.period"].browse(period_id)
        assert abs(move.amount_untaxed - period.amount_untaxed) < 0.005, (
            move.amount_untaxed, period.amount_untaxed)
        return "%s %s, %d lines, untaxed %.2f = sessions' %.2f, %d sessions linked, %s" % (
            move.name, move.state, len(move.invoice_line_ids), move.amount_untaxed,
            period.amount_untaxed, sessions, move.payment_reference)

    def pdf(env):
        move = env["clearing.period"].browse(period_id).invoice_id
        content, _kind = env["ir.actions.report"]._render_qweb_pdf(
            "account.account_invoices", move.ids)
        return "%d bytes" % len(content)

    def xlsx(env):
        period = env["clearing.period"].browse(period_id)
        if not hasattr(period, "get_breakdown_xlsx"):
            return "skipped: get_breakdown_xlsx not in this build"
        name, content = period.get_breakdown_xlsx(period.invoice_id)
        return "%s, %d bytes" % (name, len(content))

    def mail(env):
        move = env["clearing.period"].browse(period_id).invoice_id
        env["account.move.send"]._generate_and_send_invoices(move, from_cron=True)
        mails = env["mail.mail"].search([("model", "=", "account.move"),
                                         ("res_id", "=", move.id)])
        return "%d mail(s) queued, %d attachment(s)" % (
            len(mails), len(mails.attachment_ids))

    step("move", move)
    step("pdf", pdf)
    step("xlsx", xlsx)
    step("mail", mail)
    figures["rss_mb"] = rss_mb()
    print("FIGURES " + json.dumps(figures), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--template")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_size(args.db, args.one, args.port)
        return

    db = "emsp_bench_invoice_%d" % os.getpid()
    create_db(db, args.template)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "odoo", *odoo_args(db), "--http-interface=127.0.0.1",
         "--http-port=%d" % port, "--max-cron-threads=0", "--log-level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = []
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            print("\n%d sessions:" % n, flush=True)
            out = subprocess.run(
                [sys.executable, __file__, "--db", db, "--one", str(n), "--port", str(port)],
                stdout=subprocess.PIPE, text=True, check=False)
            for line in out.stdout.splitlines():
                if line.startswith("FIGURES "):
                    results.append(json.loads(line[8:]))
                else:
                    print(line, flush=True)
            if out.returncode:
                print("  failed (exit %d)" % out.returncode, flush=True)
        print("\nsummary (seconds; peak RSS of the process running the size). The chain is"
              " move + mail: Odoo's sending renders the PDF and builds the XLSX itself; the pdf"
              " and xlsx columns time them alone:")
        print("  %8s %8s %8s %8s %8s %8s %8s %10s" % (
            "sessions", "move", "pdf", "xlsx", "mail", "chain", "RSS MB", "s/100k"))
        for r in results:
            total = r["move"] + r["mail"]
            print("  %8d %8.1f %8.1f %8.1f %8.1f %8.1f %8.0f %10.1f" % (
                r["n"], r["move"], r["pdf"], r["xlsx"], r["mail"], total, r["rss_mb"],
                total * 100000 / r["n"]))
        print("  target: 100k sessions <= 60 s and <= 1024 MB, linear growth")
        print("  machine load: %s" % (os.getloadavg(),))
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep_db:
            import odoo
            odoo.sql_db.close_all()
            drop_db(db)
        else:
            print("database kept: %s" % db)


if __name__ == "__main__":
    main()
