#!/usr/bin/env python3
"""What-if before signing: 100k sessions priced again under a draft grid.

    python3 bench/bench_whatif.py [--n 100000] [--template DB] [--keep-db]

On a scratch database (created, emsp_clearing installed, dropped at the end unless --keep-db;
``--template`` clones a database that has account installed instead of a fresh one): our
company is the eMSP DE*MSP, contract A with the CPO NL*CPO; ``--n`` CDRs (one every 5 minutes
from 2025-01-01, about a year for 100k) are stored through the batch ingestion path. Then, as
the administrator, the "Simulate" wizard of A over the whole range with a draft grid (energy
0.35/kWh instead of 0.30): ``action_simulate`` (every session read in chunks, priced by the
engine, compared per month and component), then ``action_download_xlsx``. Prints the time of
each, the SQL statements, and the peak RSS of the process (``ru_maxrss``) before and after.
"""

import argparse
import os
import resource
import sys
import time

from odoo_bench import bench_contract, bench_parties, create_db, drop_db, launcher, registry_of


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def setup(db, n, page=2000):
    import odoo
    from odoo import api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        company, cpo, tax = bench_parties(env)
        contract = bench_contract(env, cpo, tax, "2015-01-01", 0.30)
        cr.commit()
        model = env["clearing.cdr"]
        t = time.monotonic()
        for start in range(0, n, page):
            count = min(page, n - start)
            cdrs = launcher().make_cdrs(count, prefix="W%03d-" % (start // page),
                                        step_seconds=300, start=_start(start))
            res = model.ingest_ocpi_batch(cdrs, company=company)
            bad = [r["error"] for r in res if not r["record"]]
            assert not bad, bad[:3]
            cr.commit()
            env.invalidate_all()
        print("setup: %d CDRs ingested on %s (%.1fs)" % (n, contract.name,
                                                          time.monotonic() - t), flush=True)
        return contract.id


def _start(offset):
    import datetime as dt
    t0 = dt.datetime(2025, 1, 1) + dt.timedelta(seconds=300 * offset)
    return t0.strftime("%Y-%m-%dT%H:%M:%S")


def run(db, contract_id, n):
    import odoo
    from odoo import api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        env = api.Environment(cr, admin.id, {"lang": "en_US", "tz": "UTC"})
        contract = env["clearing.contract"].browse(contract_id)
        wizard = env["clearing.whatif"].with_context(default_contract_id=contract_id).create({
            "date_from": "2024-12-31", "date_to": "2026-06-30"})
        wizard.line_ids.filtered(lambda line: line.dimension == "ENERGY").price = 0.35
        env.flush_all()
        rss0 = peak_rss_mb()
        q0, t0, c0 = cr.sql_log_count, time.monotonic(), time.process_time()
        wizard.action_simulate()
        env.flush_all()
        t1, q1, c1 = time.monotonic(), cr.sql_log_count, time.process_time()
        assert wizard.session_count == n, (wizard.session_count, n)
        print("simulate %d sessions: %.2f s (Odoo process CPU %.2f s), %d queries, "
              "%.0f sessions/s; peak RSS %.0f -> %.0f MB"
              % (n, t1 - t0, c1 - c0, q1 - q0, n / (t1 - t0), rss0, peak_rss_mb()), flush=True)
        print("  current %.2f, simulated %.2f, difference %.2f %s (%d result lines)"
              % (wizard.current_untaxed, wizard.simulated_untaxed, wizard.difference_untaxed,
                 contract.currency_id.name, len(wizard.result_ids)), flush=True)
        t2 = time.monotonic()
        wizard.action_download_xlsx()
        print("xlsx: %.2f s, %d bytes; peak RSS %.0f MB" % (
            time.monotonic() - t2, len(wizard.xlsx_file or b""), peak_rss_mb()), flush=True)
        cr.rollback()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--template", help="clone this database (account installed)")
    ap.add_argument("--keep-db", help="reuse (when it exists) and keep this database")
    args = ap.parse_args()
    db = args.keep_db or "bench_whatif_%d" % os.getpid()
    fresh = True
    if args.keep_db:
        from odoo_bench import pg_connect
        conn = pg_connect()
        cur = conn.cursor()
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
        fresh = not cur.fetchone()
        conn.close()
    if fresh:
        create_db(db, args.template)
    try:
        if fresh:
            contract_id = setup(db, args.n)
        else:
            contract_id = _contract_of(db)
        print("load: %s" % " ".join("%.2f" % x for x in os.getloadavg()), flush=True)
        run(db, contract_id, args.n)
    finally:
        if args.keep_db:
            print("kept database %s" % db)
        else:
            drop_db(db)


def _contract_of(db):
    import odoo
    from odoo import api
    with registry_of(db).cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        return env["clearing.contract"].search([("state", "=", "active")], limit=1).id


if __name__ == "__main__":
    sys.exit(main())
