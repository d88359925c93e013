#!/usr/bin/env python3
"""Clearing period at scale: portal list page and lock of a period holding 100k sessions.

    python3 bench/bench_period.py [--n 100000] [--requests 15] [--template DB] [--keep-db]
                                  [--maintenance analyze|vacuum|none]

On a scratch database (``--template`` cloned when given, emsp_clearing installed without demo
data, dropped at the end unless --keep-db):

1. one eMSP contract, its current period opened for control, a portal user of the eMSP, and
   ``--n`` priced sessions inserted in the period with SQL (``INSERT ... SELECT``), then the
   table's statistics computed (``ANALYZE``, what autovacuum's auto-analyze does after such a
   load; ``--maintenance`` none skips it, vacuum runs ``VACUUM ANALYZE``, which also merges
   the trigram index's pending list and sets the visibility map);
2. the portal CDR list page ``/my/clearing/periods/<id>`` requested over HTTP by the portal user
   (Odoo started by this script on a free loopback port, one threaded server): first page,
   a deep page, sorted by energy, filtered by dispute state, searched by EVSE; the figures are
   the server's response times on loopback (median and worst of ``--requests`` requests after a
   warm-up), record rules included;
3. the lock cron (``clearing.period._cron_lock_periods``) locking the whole period, timed
   in-process with its commit.

Targets (issue #4): list page < 300 ms, lock of 100k sessions < 30 s. Odoo 18 must be importable
by this Python; PostgreSQL from PGHOST/PGPORT/PGUSER (default 127.0.0.1/5432/you).
"""

import argparse
import http.cookiejar
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from odoo_bench import create_db, drop_db, free_port, odoo_args, pg_connect, pg_exec, registry_of

PORTAL_LOGIN = "bench_portal"


def populate(env, n):
    from datetime import datetime, timedelta

    from odoo import Command

    company = env.company
    company.partner_id.write({"ocpi_country_code": "FR", "ocpi_party_id": "BCH",
                              "ocpi_is_cpo": True})
    emsp = env["res.partner"].create({
        "name": "Bench eMSP", "is_company": True, "ocpi_country_code": "FR",
        "ocpi_party_id": "BEM", "ocpi_is_emsp": True, "email": "bench@emsp.example"})
    contact = env["res.partner"].create({"name": "Bench Billing", "parent_id": emsp.id,
                                         "email": "billing@emsp.example"})
    emsp.clearing_billing_contact_ids = [Command.set(contact.ids)]
    env["res.users"].create({
        "name": "Bench Portal", "login": PORTAL_LOGIN, "password": PORTAL_LOGIN,
        "partner_id": contact.id,
        "groups_id": [Command.set(env.ref("base.group_portal").ids)]})
    contract = env["clearing.contract"].create({
        "partner_id": emsp.id, "role": "cpo", "currency_id": env.ref("base.EUR").id,
        "date_start": "2020-01-01", "tz": "Europe/Paris",
        "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.30})]})
    contract.action_activate()
    Period = env["clearing.period"]
    period = Period._get_or_create(contract, Period._contract_today(contract))
    period._open_window()
    start, end = period._utc_bounds()
    now = datetime.utcnow()
    end = min(end, now)
    span = max(int((end - start).total_seconds()) - 7200, 3600)
    tariff = json.dumps(contract.to_ocpi_tariff())
    env.flush_all()
    env.cr.execute(
        """
        INSERT INTO clearing_cdr (
            ocpi_id, country_code, party_id, session_id, token_uid, token_country_code,
            token_party_id, location_id, location_name, evse_uid, evse_id,
            start_datetime, end_datetime, currency_id, company_id, contract_id, partner_id,
            period_id, match_state, state, dispute_state, locked, is_late, credit,
            energy_kwh, duration_hours, parking_hours, amount_energy, amount_fixed,
            amount_time, amount_parking, amount_reservation, amount_adjustment,
            amount_untaxed, amount_tax, amount_total, applied_tariff, raw_json,
            price_mismatch, create_uid, write_uid, create_date, write_date)
        SELECT 'BENCH-' || g, 'FR', 'BCH', 'S-BENCH-' || g, 'TOK' || (g %% 5000), 'FR', 'BEM',
               'LOC-' || (g %% 300), 'Location ' || (g %% 300), 'EVSE-' || (g %% 1200),
               'FR*BCH*E' || lpad((g %% 1200)::text, 5, '0'),
               e - interval '45 minutes', e, %(currency)s, %(company)s, %(contract)s,
               %(partner)s, %(period)s, 'matched', 'priced', 'none', FALSE, FALSE, FALSE,
               kwh, 0.75, 0, round(kwh * 0.30, 2), 0, 0, 0, 0, 0,
               round(kwh * 0.30, 2), round(kwh * 0.06, 2), round(kwh * 0.36, 2),
               %(tariff)s::jsonb, '{}'::jsonb, FALSE, 1, 1, now(), now()
          FROM (SELECT g,
                       %(start)s::timestamp + (g * 7919 %% %(span)s) * interval '1 second' AS e,
                       round((5 + (g %% 600) / 10.0)::numeric, 3) AS kwh
                  FROM generate_series(1, %(n)s) AS g) AS s
        """,
        {"currency": contract.currency_id.id, "company": company.id, "contract": contract.id,
         "partner": emsp.id, "period": period.id, "tariff": tariff,
         "start": start + timedelta(hours=1), "span": span, "n": n},
    )
    # a few disputed sessions for the dispute-state filter
    env.cr.execute("UPDATE clearing_cdr SET dispute_state = 'rejected' "
                   "WHERE period_id = %s AND id %% 997 = 0", [period.id])
    env.invalidate_all()
    return period


def pg_show(setting, db):
    conn = pg_connect(db)
    try:
        cr = conn.cursor()
        cr.execute("SHOW %s" % setting)
        return cr.fetchone()[0]
    finally:
        conn.close()


def timed_get(opener, url, count):
    opener.open(url).read()  # warm-up
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        with opener.open(url) as response:
            body = response.read()
            status = response.status
        times.append((time.perf_counter() - t0) * 1000)
    return status, body, times


def bench_portal(db, period_id, n, count):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench_period_odoo_", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "-m", "odoo", *odoo_args(db), "--http-interface", "127.0.0.1",
         "--http-port", str(port), "--max-cron-threads=0", "--workers=0",
         "--log-level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = "http://127.0.0.1:%d" % port
    try:
        for _ in range(240):
            if server.poll() is not None:
                raise SystemExit("Odoo did not start, see %s" % log.name)
            try:
                urllib.request.urlopen(base + "/web/login", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("Odoo did not answer on port %d, see %s" % (port, log.name))
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        request = urllib.request.Request(
            base + "/web/session/authenticate",
            data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": {
                "db": db, "login": PORTAL_LOGIN, "password": PORTAL_LOGIN}}).encode(),
            headers={"Content-Type": "application/json"})
        opener.open(request).read()
        page = "/my/clearing/periods/%d" % period_id
        last = (n + 49) // 50
        cases = [
            ("first page (newest first)", page),
            ("page %d of %d" % (last // 2, last), "%s/page/%d" % (page, last // 2)),
            ("last page", "%s/page/%d" % (page, last)),
            ("sorted by energy", page + "?sortby=kwh"),
            ("filter: dispute rejected", page + "?filterby=rejected"),
            ("search EVSE", page + "?search_in=evse&search=E00042"),
            ("search all fields", page + "?search=TOK42"),
            ("periods list", "/my/clearing/periods"),
        ]
        results = []
        for label, url in cases:
            status, body, times = timed_get(opener, base + url, count)
            rows = body.count(b'class="o_clearing_cdr_row"')
            results.append((label, status, rows, statistics.median(times), max(times)))
        return results
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--template", help="database to clone (e.g. one with account/portal)")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--maintenance", choices=("analyze", "vacuum", "none"),
                        default="analyze",
                        help="after the load: ANALYZE (default), VACUUM ANALYZE, or nothing")
    args = parser.parse_args()

    import odoo
    from odoo import SUPERUSER_ID, api

    db = "emsp_bench_period_%d" % os.getpid()
    create_db(db, args.template)
    try:
        registry = registry_of(db)
        t0 = time.perf_counter()
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            period = populate(env, args.n)
            period_id = period.id
        print("inserted %d sessions in one period in %.1f s" % (args.n, time.perf_counter() - t0))
        # statistics, as autovacuum's auto-analyze computes them after such a load (this
        # script never relies on autovacuum itself: it may be off)
        if args.maintenance != "none":
            pg_exec("%s clearing_cdr" % (
                "VACUUM ANALYZE" if args.maintenance == "vacuum" else "ANALYZE"), db=db)
        print("after the load: %s (server autovacuum: %s)" % (
            {"analyze": "ANALYZE", "vacuum": "VACUUM ANALYZE", "none": "no statistics"}[
                args.maintenance], pg_show("autovacuum", db)))

        print("\nportal CDR list page, server response on loopback (%d requests each):"
              % args.requests)
        print("  %-28s %6s %5s %10s %10s" % ("case", "status", "rows", "median ms", "max ms"))
        results = bench_portal(db, period_id, args.n, args.requests)
        for label, status, rows, median, worst in results:
            print("  %-28s %6s %5d %10.1f %10.1f" % (label, status, rows, median, worst))
        worst_median = max(r[3] for r in results)

        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            period = env["clearing.period"].browse(period_id)
            # statement date reached
            cr.execute("UPDATE clearing_period SET lock_date = %s WHERE id = %s",
                       [period._contract_today(period.contract_id), period_id])
            env.invalidate_all()
            t0 = time.perf_counter()
            env["clearing.period"]._cron_lock_periods()
            cr.commit()
            lock_seconds = time.perf_counter() - t0
            cr.execute("SELECT count(*) FILTER (WHERE locked), count(*) FROM clearing_cdr "
                       "WHERE period_id = %s", [period_id])
            locked, total = cr.fetchone()
            state = env["clearing.period"].browse(period_id).state
        print("\nlock cron: %d / %d sessions locked, period %s, in %.2f s" % (
            locked, total, state, lock_seconds))
        print("\nsummary: slowest list page median %.1f ms (target < 300 ms), "
              "lock %.2f s (target < 30 s)" % (worst_median, lock_seconds))
    finally:
        if not args.keep_db:
            odoo.sql_db.close_all()
            drop_db(db)
        else:
            print("database kept: %s" % db)


if __name__ == "__main__":
    main()
