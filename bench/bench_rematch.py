#!/usr/bin/env python3
"""Re-matching and re-pricing stored CDRs: a contract rule change moving them, and "Re-price".

    python3 bench/bench_rematch.py [--n 10000] [--template DB] [--keep-db]

On a scratch database (created, emsp_clearing installed, dropped at the end unless --keep-db;
``--template`` clones a database that has account installed instead of a fresh one):

* setup: our company is the eMSP DE*MSP; contract A with the CPO NL*CPO (from 2015, open-ended)
  gets ``--n`` CDRs through the batch ingestion path; then contract B with the same CPO is
  activated from 2026-01-01 (it takes none of them: only unmatched CDRs are re-matched);
* (1) move: contract A ends on 2025-12-31 -- every CDR leaves A and is matched to B and priced
  again (``clearing.contract.write`` -> ``_cdrs_leaving`` -> ``_match_and_price``);
* (2) detach: contract B starts in 2027 -- every CDR leaves B and is stored unmatched ("outside
  validity" of A and B);
* (3) re-price: contract B starts in 2026 again (attaches them back), then ``action_reprice``
  of all the CDRs.

Each step runs as the administrator (not the superuser: record rules apply) with tracking on,
as an accountant's form save does; it prints the time and SQL statements of the call (flushed),
then of the commit (the chatter messages of the tracked CDR fields are written then).
"""

import argparse
import os
import sys
import time

from odoo_bench import bench_contract, bench_parties, create_db, drop_db, launcher, registry_of


def setup(db, n, page=500):
    import odoo
    from odoo import api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        company, cpo, tax = bench_parties(env)

        a = bench_contract(env, cpo, tax, "2015-01-01", 0.30)
        cr.commit()
        cdrs = launcher().make_cdrs(n, prefix="R", step_seconds=3000, start="2026-01-01T00:00:00")
        t = time.monotonic()
        model = env["clearing.cdr"]
        for start in range(0, n, page):
            res = model.ingest_ocpi_batch(cdrs[start:start + page], company=company)
            bad = [r["error"] for r in res if not r["record"]]
            assert not bad, bad[:3]
            cr.commit()
            env.invalidate_all()
        print("setup: %d CDRs ingested on %s (%.1fs)" % (n, a.name, time.monotonic() - t),
              flush=True)
        b = bench_contract(env, cpo, tax, "2026-01-01", 0.35)
        cr.commit()
        assert model.search_count([("contract_id", "=", a.id)]) == n
        return a.id, b.id


def step(db, label, n, action):
    """Run ``action(env)`` as the administrator with tracking on; print its figures."""
    import odoo
    from odoo import api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        env = api.Environment(cr, admin.id, {"lang": "en_US", "tz": "UTC"})
        env.invalidate_all()
        q0 = cr.sql_log_count
        t0 = time.monotonic()
        action(env)
        env.flush_all()
        t1 = time.monotonic()
        q1 = cr.sql_log_count
        cr.commit()
        t2 = time.monotonic()
        q2 = cr.sql_log_count
    call, commit = t1 - t0, t2 - t1
    print("%-44s %7.2f s %7d queries  %7.0f CDR/s  %5.2f queries/CDR   "
          "(+ commit: %.2f s, %d queries)"
          % (label, call, q1 - q0, n / call, (q1 - q0) / n, commit, q2 - q1), flush=True)
    return call, q1 - q0


def check(db, expect):
    import odoo
    from odoo import api
    registry = registry_of(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        rows = env["clearing.cdr"]._read_group([], ["contract_id", "state"], ["__count"])
        got = sorted((c.id, s, k) for c, s, k in rows)
        assert got == expect, got


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--template", help="clone this database (account installed)")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    db = "bench_rematch_%d" % os.getpid()
    create_db(db, args.template)
    try:
        a_id, b_id = setup(db, args.n)
        n = args.n
        print("load: %s" % " ".join("%.2f" % x for x in os.getloadavg()), flush=True)
        step(db, "(1) move %d CDRs from A to B (A ends)" % n, n,
             lambda env: env["clearing.contract"].browse(a_id).write({"date_end": "2025-12-31"}))
        check(db, [(b_id, "priced", n)])
        step(db, "(2) detach %d CDRs (B starts later)" % n, n,
             lambda env: env["clearing.contract"].browse(b_id).write({"date_start": "2027-01-01"}))
        check(db, [(False, "unmatched", n)])
        # attach them back (the unmatched CDRs re-matched: _rematch_unmatched_cdrs)
        step(db, "    attach %d CDRs (B starts earlier)" % n, n,
             lambda env: env["clearing.contract"].browse(b_id).write({"date_start": "2026-01-01"}))
        check(db, [(b_id, "priced", n)])
        step(db, "(3) action_reprice of %d CDRs" % n, n,
             lambda env: env["clearing.cdr"].search([]).action_reprice())
        check(db, [(b_id, "priced", n)])
    finally:
        if args.keep_db:
            print("kept database %s" % db)
        else:
            drop_db(db)


if __name__ == "__main__":
    sys.exit(main())
