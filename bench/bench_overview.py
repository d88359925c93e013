#!/usr/bin/env python3
"""The Clearing overview and the contract form's figures on 3.6M sessions.

    python3 bench/bench_overview.py [--db emsp_bench_overview] [--contracts 100]
                                    [--sessions 36000] [--runs 5] [--rebuild] [--update]

The database is kept between runs (built when missing or with ``--rebuild``; ``--update``
upgrades emsp_clearing in it first, after a change of the module): emsp_clearing without demo
data, our company both CPO and eMSP, ``--contracts`` active contracts with as many
counterparties (half we bill as CPO, half billing us), each with ``--sessions`` sessions over
the last 3 years (one every ~44 minutes: 3.6M in all by default) inserted set-based with SQL
(``INSERT ... SELECT generate_series``, so the figures per day are kept by their trigger as in
production), their monthly clearing periods (past ones paid, the last two invoiced, the
current one in control or open), one posted invoice or vendor bill per contract for each of the
last 12 months (the last two unpaid, one of them overdue), some disputes. Then, ``--runs``
times each (the first run after the data are loaded is the coldest):

* **overview, server side**: ``clearing.contract.web_search_read`` of the overview kanban (its
  fields, all active contracts), in this process, caches invalidated;
* **form figures, server side**: ``web_read`` of one contract's Figures tab (figures per
  month and counters);
* the same two **over HTTP**: a logged-in administrator's ``/web/dataset/call_kw`` on an Odoo
  server started by this script on a free loopback port.

Prints the median and the maximum of each, the PostgreSQL settings that matter (``jit``,
``work_mem``, ``shared_buffers``, ``max_parallel_workers_per_gather``: measured with the
server's own settings) and the load average. Target (issue #12): < 1 s each.
"""

import argparse
import http.cookiejar
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo_bench import free_port, odoo_args, pg_connect, pg_exec, registry_of

# what the overview kanban reads (views/clearing_contract_views.xml: the overview kanban)
OVERVIEW_SPEC = {
    "name": {}, "description": {}, "role": {}, "state": {},
    "partner_id": {"fields": {"display_name": {}}},
    "currency_id": {"fields": {}},
    "overview_period_id": {"fields": {"display_name": {}}},
    "overview_period_state": {}, "overview_window_days": {}, "overview_open_disputes": {},
    "overview_billed": {}, "overview_paid": {}, "overview_overdue": {},
    "overview_margin_month": {}, "overview_graph": {},
}
# the Figures tab of the contract form
FORM_SPEC = {"figures_html": {}, "cdr_disputed_count": {}, "cdr_excluded_count": {},
             "cdr_late_count": {}, "name": {}, "currency_id": {"fields": {}}}
DOMAIN = [("state", "=", "active")]


def db_exists(db):
    conn = pg_connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db])
        return bool(cur.fetchone())
    finally:
        conn.close()


def odoo_run(db, *extra):
    subprocess.run([sys.executable, "-m", "odoo", *odoo_args(db), *extra, "--stop-after-init",
                    "--log-level=warn", "--max-cron-threads=0", "--http-port", str(free_port())],
                   check=True, stdout=subprocess.DEVNULL)


def build(db, n_contracts, n_sessions):
    pg_exec('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    print("installing emsp_clearing in %s ..." % db, flush=True)
    t = time.monotonic()
    odoo_run(db, "-i", "emsp_clearing", "--without-demo=all")
    print("  installed (%.0f s)" % (time.monotonic() - t), flush=True)
    import odoo
    from odoo import Command, api, fields
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        company = env.company
        company.partner_id.write({"ocpi_country_code": "DE", "ocpi_party_id": "OWN",
                                  "ocpi_is_cpo": True, "ocpi_is_emsp": True})
        eur = env.ref("base.EUR")
        eur.active = True
        taxes = {use: env["account.tax"].create({
            "name": "Bench VAT 20%% %s" % use, "amount": 20.0, "amount_type": "percent",
            "type_tax_use": use}) for use in ("sale", "purchase")}
        today = fields.Date.today()
        first = today.replace(day=1)
        start = first.replace(year=first.year - 3)
        partners = env["res.partner"].create([{
            "name": "Bench %s %03d" % ("eMSP" if i % 2 == 0 else "CPO", i),
            "is_company": True, "ocpi_country_code": "FR", "ocpi_party_id": "B%02d" % i,
            "ocpi_is_emsp": i % 2 == 0, "ocpi_is_cpo": i % 2 == 1,
        } for i in range(n_contracts)])
        contracts = env["clearing.contract"].create([{
            "partner_id": partner.id, "role": "cpo" if i % 2 == 0 else "emsp",
            "currency_id": eur.id, "date_start": start, "tz": "Europe/Paris",
            "tax_ids": [Command.set(taxes["sale" if i % 2 == 0 else "purchase"].ids)],
            "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.30}),
                               Command.create({"dimension": "FLAT", "price": 0.50})],
        } for i, partner in enumerate(partners)])
        contracts.action_activate()
        # monthly periods from the start to the current month
        Period = env["clearing.period"]
        vals = []
        for contract in contracts:
            day = start
            while day <= today:
                vals.append(Period._period_vals(contract, day))
                day += relativedelta(months=1)
        periods = Period.sudo().create(vals)
        env.flush_all()
        cr.execute("""UPDATE clearing_period SET state = CASE
                          WHEN date_end < %(first)s - interval '2 months' THEN 'paid'
                          WHEN date_end < %(first)s THEN 'invoiced'
                          WHEN window_date <= %(today)s THEN 'control' ELSE 'open' END""",
                   {"first": first, "today": today})
        print("  %d contracts, %d periods (%.0f s)" % (len(contracts), len(periods),
                                                      time.monotonic() - t), flush=True)
        cr.commit()
        step = 3 * 365 * 24 * 3600 / n_sessions
        t = time.monotonic()
        for index, contract in enumerate(contracts):
            cr.execute(
                """
                INSERT INTO clearing_cdr (
                    ocpi_id, country_code, party_id, session_id, token_uid,
                    token_country_code, token_party_id, start_datetime, end_datetime,
                    currency_id, company_id, contract_id, partner_id, period_id, match_state,
                    state, dispute_state, locked, is_late, credit, energy_kwh, duration_hours,
                    amount_energy, amount_fixed, amount_untaxed, amount_tax, amount_total,
                    price_mismatch, price_difference, raw_json,
                    create_uid, write_uid, create_date, write_date)
                SELECT 'OV' || %(contract)s || '-' || g, s.cc, s.pp, 'S-' || g,
                       'TOK' || (g %% 700), s.tc, s.tp, e - interval '45 minutes', e,
                       %(currency)s, %(company)s, %(contract)s, %(partner)s, period.id,
                       'matched', CASE WHEN period.state IN ('open', 'control') THEN 'priced'
                                       WHEN g %% 997 = 0 THEN 'excluded' ELSE 'locked' END,
                       CASE WHEN g %% 499 = 0 THEN 'rejected' ELSE 'none' END,
                       period.state NOT IN ('open', 'control'), g %% 211 = 0, FALSE,
                       kwh, 0.75, round(kwh * 0.30, 2), 0.50, round(kwh * 0.30, 2) + 0.50,
                       round((round(kwh * 0.30, 2) + 0.50) * 0.2, 2),
                       round((round(kwh * 0.30, 2) + 0.50) * 1.2, 2),
                       g %% 97 = 0, CASE WHEN g %% 97 = 0 THEN 0.37 ELSE 0 END,
                       '{}'::jsonb, 1, 1, now(), now()
                  FROM (SELECT g, %(start)s::timestamp + g * %(step)s * interval '1 second' AS e,
                               round((3 + (g %% 40013) / 1000.0)::numeric, 3) AS kwh,
                               CASE WHEN %(cpo)s THEN 'DE' ELSE 'FR' END AS cc,
                               CASE WHEN %(cpo)s THEN 'OWN' ELSE %(party)s END AS pp,
                               CASE WHEN %(cpo)s THEN 'FR' ELSE 'DE' END AS tc,
                               CASE WHEN %(cpo)s THEN %(party)s ELSE 'OWN' END AS tp
                          FROM generate_series(0, %(n)s - 1) AS g) AS s
                  JOIN clearing_period period ON period.contract_id = %(contract)s
                   AND ((s.e AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Paris')::date
                       BETWEEN period.date_start AND period.date_end
                """,
                {"contract": contract.id, "currency": eur.id, "company": company.id,
                 "partner": contract.partner_id.id, "start": start, "step": step,
                 "n": n_sessions, "cpo": contract.role == "cpo",
                 "party": contract.partner_id.ocpi_party_id})
            cr.commit()
            if index % 10 == 9:
                print("  sessions of %d contracts inserted (%.0f s)" % (
                    index + 1, time.monotonic() - t), flush=True)
    invoice_last_year(db)
    pg_exec("VACUUM ANALYZE", db=db)


def invoice_last_year(db):
    """One posted invoice (CPO hat) or vendor bill (eMSP hat) per contract for each of the
    last 12 months, when the database has none yet."""
    import odoo
    from odoo import Command, api, fields
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        if env["account.move"].search_count([("clearing_period_id", "!=", False)]):
            return
        company = env.company
        today = fields.Date.today()
        first = today.replace(day=1)
        contracts = env["clearing.contract"].search([("state", "=", "active")])
        t = time.monotonic()
        cr.execute("""SELECT id, contract_id, date_end, state FROM clearing_period
                       WHERE date_end < %s AND date_end >= %s ORDER BY contract_id, date_end""",
                   [first, first.replace(year=first.year - 1)])
        rows = cr.fetchall()
        journals = {role: env["account.journal"].search(
            [("type", "=", kind), ("company_id", "=", company.id)], limit=1)
            for role, kind in (("cpo", "sale"), ("emsp", "purchase"))}
        by_contract = {c.id: c for c in contracts}
        move_vals = []
        for period_id, contract_id, date_end, state in rows:
            contract = by_contract[contract_id]
            move_vals.append({
                "move_type": "out_invoice" if contract.role == "cpo" else "in_invoice",
                "partner_id": contract.partner_id.id, "journal_id": journals[contract.role].id,
                "invoice_date": date_end, "date": date_end,
                "invoice_date_due": date_end + timedelta(days=30),
                "clearing_period_id": period_id,
                "invoice_line_ids": [Command.create({
                    "name": "Charging sessions", "price_unit": 1000.0 + contract_id,
                    "tax_ids": []})]})
        moves = env["account.move"].create(move_vals)
        moves.action_post()
        env.flush_all()
        # paid: all but the last two months (outstanding; the older one overdue)
        paid = moves.filtered(lambda m: m.clearing_period_id.state == "paid")
        cr.execute("UPDATE account_move SET amount_residual = 0, amount_residual_signed = 0, "
                   "payment_state = 'paid' WHERE id = ANY(%s)", [paid.ids])
        cr.commit()
        print("  %d invoices and vendor bills posted (%.0f s)" % (
            len(moves), time.monotonic() - t), flush=True)


def settings(db):
    conn = pg_connect(db)
    try:
        cur = conn.cursor()
        out = []
        for name in ("server_version", "jit", "work_mem", "shared_buffers",
                     "max_parallel_workers_per_gather"):
            cur.execute("SHOW %s" % name)
            out.append("%s=%s" % (name, cur.fetchone()[0]))
        cur.execute("SELECT count(*) FROM clearing_cdr")
        sessions = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM clearing_contract WHERE state = 'active'")
        contracts = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM clearing_contract_day")
        days = cur.fetchone()[0]
        return ", ".join(out), sessions, contracts, days
    finally:
        conn.close()


def summary(name, times):
    return "%-32s median %6.0f ms   max %6.0f ms   first %6.0f ms" % (
        name, statistics.median(times) * 1000, max(times) * 1000, times[0] * 1000)


def server_side(db, runs):
    import odoo
    from odoo import api
    registry = registry_of(db)
    over, form = [], []
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        env = api.Environment(cr, admin.id, {"lang": "en_US", "tz": "Europe/Paris"})
        Contract = env["clearing.contract"]
        contract_id = Contract.search(DOMAIN + [("role", "=", "cpo")], limit=1).id
        for _run in range(runs):
            env.invalidate_all()
            t = time.perf_counter()
            result = Contract.web_search_read(DOMAIN, OVERVIEW_SPEC)
            over.append(time.perf_counter() - t)
            env.invalidate_all()
            t = time.perf_counter()
            record = Contract.browse(contract_id).web_read(FORM_SPEC)
            form.append(time.perf_counter() - t)
        cr.rollback()
    card = result["records"][0]
    print("  %d cards; first: %s, billed %s, paid %s, overdue %s, margin this month %s, "
          "%d months in its graph" % (
              result["length"], card["name"], card["overview_billed"], card["overview_paid"],
              card["overview_overdue"], card["overview_margin_month"],
              len(json.loads(card["overview_graph"])[0]["values"])))
    print("  form: %d months of figures" % record[0]["figures_html"].count("<tr>"))
    return over, form, contract_id


def over_http(db, runs, contract_id):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "odoo", *odoo_args(db), "--http-port", str(port),
         "--http-interface", "127.0.0.1", "--workers", "0", "--max-cron-threads", "0",
         "--log-level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%d" % port
    try:
        for _attempt in range(120):
            try:
                urllib.request.urlopen(base + "/web/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

        def rpc(path, params):
            body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}).encode()
            request = urllib.request.Request(base + path, body,
                                             {"Content-Type": "application/json"})
            reply = json.loads(opener.open(request, timeout=120).read())
            if "error" in reply:
                raise RuntimeError(reply["error"])
            return reply["result"]

        rpc("/web/session/authenticate", {"db": db, "login": "admin", "password": "admin"})
        context = {"lang": "en_US", "tz": "Europe/Paris"}
        over, form = [], []
        for _run in range(runs):
            t = time.perf_counter()
            rpc("/web/dataset/call_kw/clearing.contract/web_search_read", {
                "model": "clearing.contract", "method": "web_search_read", "args": [],
                "kwargs": {"domain": DOMAIN, "specification": OVERVIEW_SPEC,
                           "context": context}})
            over.append(time.perf_counter() - t)
            t = time.perf_counter()
            rpc("/web/dataset/call_kw/clearing.contract/web_read", {
                "model": "clearing.contract", "method": "web_read", "args": [[contract_id]],
                "kwargs": {"specification": FORM_SPEC, "context": context}})
            form.append(time.perf_counter() - t)
        return over, form
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="emsp_bench_overview")
    ap.add_argument("--contracts", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=36000, help="per contract")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--update", action="store_true", help="upgrade emsp_clearing first")
    args = ap.parse_args()
    if args.rebuild or not db_exists(args.db):
        t = time.monotonic()
        build(args.db, args.contracts, args.sessions)
        print("database %s built (%.0f s)" % (args.db, time.monotonic() - t), flush=True)
    else:
        if args.update:
            odoo_run(args.db, "-u", "emsp_clearing")
        invoice_last_year(args.db)
    conf, sessions, contracts, days = settings(args.db)
    print("%s: %d sessions, %d active contracts, %d rows of figures per day; %s" % (
        args.db, sessions, contracts, days, conf))
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    over, form, contract_id = server_side(args.db, args.runs)
    print(summary("overview (server side)", over))
    print(summary("contract form figures (server)", form))
    h_over, h_form = over_http(args.db, args.runs, contract_id)
    print(summary("overview (HTTP)", h_over))
    print(summary("contract form figures (HTTP)", h_form))
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
