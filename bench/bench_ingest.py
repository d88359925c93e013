#!/usr/bin/env python3
"""CDR ingestion throughput: Odoo batch (pull/file) path, concurrent OCPI POSTs, PostgreSQL COPY.

    python3 bench/bench_ingest.py [--n 50000] [--workers 1,2] [--concurrency 8] [--page 500]
                                  [--template DB] [--keep-db] [--skip-post] [--trigger-ab]
                                  [--resale-ab]

On a scratch database (created, emsp_clearing installed, dropped at the end unless --keep-db):

(a) batch: ``clearing.ingestion.log._ingest_cdrs`` page by page, committing each page — what an
    OCPI pull does after each GET (and the file import): validation, idempotency check,
    contract matching, pricing, storage; in OCPI 2.2.1 and, with other ids, the same CDRs in
    2.3.0 (``--versions``), pages of the two versions alternating so that the growing tables and
    the machine's load weigh on both alike, each version timed on its own pages;
(b) POST: the same number of other CDRs POSTed one by one to ``/ocpi/<version>/cdrs`` (one run
    per version and worker count) by
    ``--concurrency`` client threads, Odoo started by this script on a free loopback port with
    each of the ``--workers`` counts (and one cron worker, which stores the push queue
    meanwhile); prints the rate at which the POSTs were answered (201, the CDR queued), the rate
    at which they were all stored, and -- measured just before with the same clients -- the
    rate of Odoo's empty ``/web/health`` route, the floor any request pays on this machine;
(c) ceiling: PostgreSQL ``COPY`` of the same rows (identity columns + raw JSON) into a scratch
    table.

``--resale-ab``: the batch path in the first version twice, pages alternating, once for the
contract above and once for a second CPO (NL*RSL) whose eMSP contract has the same grid plus a
resale grid (1.00 per session + 0.55/kWh): every CDR of the second is also priced with it
(``clearing.cdr.resale_amount``); prints the throughput without and with the resale grid.

Targets (issue #3): batch >= 2,000 CDR/s; POST >= 200 CDR/s per worker. Odoo 18 must be
importable by this Python; PostgreSQL from PGHOST/PGPORT/PGUSER (default 127.0.0.1/5432/you).
"""

import argparse
import datetime
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from odoo_bench import (REPO, bench_contract, bench_parties, create_db, drop_db, free_port, launcher,
                        odoo_args, pg_connect, registry_of)


def odoo_env(db):
    import odoo
    return odoo, registry_of(db)


def setup_data(db):
    """Our company = eMSP DE*MSP, partner CPO NL*CPO with an active contract and a registered
    connection; returns (connection id, token C)."""
    odoo, registry = odoo_env(db)
    from odoo import api
    sys.path.insert(0, os.path.join(REPO, "emsp_clearing"))
    from clearing_core.transport import envelope as ot
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        _company, cpo, tax = bench_parties(env)
        bench_contract(env, cpo, tax)
        token = ot.generate_token()
        conn = env["clearing.ocpi.connection"].create({
            "name": "bench", "partner_id": cpo.id, "state": "registered",
            "token_c_hash": ot.hash_token(token)})
        return conn.id, token


RESALE = " with resale grid"
RESALE_PARTY = ("NL", "RSL")


def setup_resale(db):
    """A second CPO NL*RSL whose eMSP contract has the bench grid plus a resale grid, and its
    registered connection (``--resale-ab``); returns the connection id."""
    odoo, registry = odoo_env(db)
    from odoo import Command, api
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        tax = env["account.tax"].search([("name", "=", "Bench VAT 21%")], limit=1)
        cpo = env["res.partner"].create({
            "name": "Bench CPO (resale)", "is_company": True, "ocpi_is_cpo": True,
            "ocpi_country_code": RESALE_PARTY[0], "ocpi_party_id": RESALE_PARTY[1]})
        contract = bench_contract(env, cpo, tax)
        contract.write({"resale_line_ids": [
            Command.create({"dimension": "FLAT", "price": 1.00, "resale": True}),
            Command.create({"dimension": "ENERGY", "price": 0.55, "resale": True})]})
        assert contract.has_resale_grid
        conn = env["clearing.ocpi.connection"].create({
            "name": "bench resale", "partner_id": cpo.id, "state": "registered"})
        return conn.id


def check_resale(db, n):
    """Every CDR of the resale contract got its resale amount, the others none."""
    conn = pg_connect(db)
    with conn.cursor() as cr:
        cr.execute("""SELECT contract.has_resale_grid, count(*),
                             count(*) FILTER (WHERE cdr.resale_amount > 0)
                        FROM clearing_cdr cdr
                        JOIN clearing_contract contract ON contract.id = cdr.contract_id
                       GROUP BY 1""")
        counts = {row[0]: row[1:] for row in cr.fetchall()}
    conn.close()
    assert counts.get(True) == (n, n) and counts.get(False, (0, 0))[1] == 0, counts


# the trigger keeping the figures per contract and day (clearing_contract_day.py)
FIGURES_TRIGGERS = ("clearing_cdr_contract_day_insert", "clearing_cdr_contract_day_update",
                    "clearing_cdr_contract_day_delete")


def bench_batch(db, conn_id, cdrs_by_version, page, conn_ids=None):
    """Ingest each version's CDRs page by page, the versions' pages alternating; returns
    {version: seconds spent on its pages}. A version named ``"<version> without trigger"``
    is ingested with the figures trigger disabled during its pages (``--trigger-ab``).
    ``conn_ids``: {version: connection id} for the versions another connection sends
    (``--resale-ab``); the others come through ``conn_id``."""
    odoo, registry = odoo_env(db)
    from odoo import api
    elapsed = {v: 0.0 for v in cdrs_by_version}
    created = {v: 0 for v in cdrs_by_version}
    total = sum(len(c) for c in cdrs_by_version.values())
    done = 0
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {"tracking_disable": True})
        conns = {v: env["clearing.ocpi.connection"].browse((conn_ids or {}).get(v, conn_id))
                 for v in cdrs_by_version}
        parties_of = {v: conn._allowed_parties() for v, conn in conns.items()}
        longest = max(len(c) for c in cdrs_by_version.values())
        for k, start in enumerate(range(0, longest, page)):
            for version, cdrs in cdrs_by_version.items():
                chunk = cdrs[start:start + page]
                if not chunk:
                    continue
                without = version.endswith(" without trigger")
                if without:
                    for name in FIGURES_TRIGGERS:
                        cr.execute("ALTER TABLE clearing_cdr DISABLE TRIGGER %s" % name)
                conn, parties = conns[version], parties_of[version]
                t = time.monotonic()
                log = env["clearing.ingestion.log"].create({
                    "channel": "pull", "connection_id": conn.id, "partner_id": conn.partner_id.id,
                    "company_id": conn.company_id.id})
                res = log._ingest_cdrs(chunk, connection=conn, company=conn.company_id,
                                       allowed_parties=parties, version=version.split()[0])
                created[version] += sum(1 for r in res if r["outcome"] == "created")
                cr.commit()
                env.invalidate_all()
                elapsed[version] += time.monotonic() - t
                if without:
                    for name in FIGURES_TRIGGERS:
                        cr.execute("ALTER TABLE clearing_cdr ENABLE TRIGGER %s" % name)
                    cr.commit()
                done += len(chunk)
            if k % 10 == 0:
                print("  batch: %d/%d (%s)" % (done, total, ", ".join(
                    "%s %.0f CDR/s" % (v, min(len(cdrs_by_version[v]), start + page) / elapsed[v])
                    for v in elapsed if elapsed[v])), flush=True)
    for version, cdrs in cdrs_by_version.items():
        assert created[version] == len(cdrs), "%s: only %d of %d CDRs stored" % (
            version, created[version], len(cdrs))
    return elapsed


def bench_post(db, token, cdrs, workers, concurrency, version="2.2.1"):
    """POST ``cdrs`` one by one; returns (seconds until every POST was answered, seconds until
    the push queue had stored them all, requests/s of Odoo's empty /web/health route)."""
    port = free_port()
    tmp = os.environ.get("TMPDIR", "/tmp")
    log = open(os.path.join(tmp, "bench_ingest_odoo_%d.log" % port), "w")
    # a real script as argv[0]: the prefork master re-runs argv[0] for its gevent process,
    # which fails (and is respawned in a loop, eating CPU) when started with "python -m odoo"
    launcher_py = os.path.join(tmp, "bench_ingest_odoo_%d.py" % port)
    with open(launcher_py, "w") as f:
        f.write("from odoo.cli.command import main\nmain()\n")
    # One database given with -d and no --db-filter: Odoo then serves it without listing the
    # server's databases on every request that carries no session cookie -- which is every
    # OCPI call (a --db-filter costs a new PostgreSQL connection per call; see docs/OCPI.md).
    # One cron worker: it stores the push queue while the POSTs arrive.
    proc = subprocess.Popen([sys.executable, launcher_py] + odoo_args(db) + [
        "--gevent-port", str(free_port()),
        "--workers", str(workers), "--http-interface", "127.0.0.1", "--http-port", str(port),
        "--max-cron-threads", "1", "--limit-time-real", "600",
        "--limit-time-cpu", "600", "--limit-request", "100000",
        "--log-level", os.environ.get("BENCH_ODOO_LOG", "warn")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = "http://127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 120
        while True:  # bounded wait for the server
            try:
                urllib.request.urlopen(base + "/web/health", timeout=2).read()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Odoo did not start, see %s" % log.name)
                time.sleep(0.5)
        sys.path.insert(0, os.path.join(REPO, "emsp_clearing"))
        from clearing_core.transport import envelope as ot
        auth = ot.authorization_header(token)
        bodies = [json.dumps(c).encode() for c in cdrs]
        statuses = {}
        lock = threading.Lock()
        nxt = [0]

        def post(i):
            # http.client: a light client, so that the machine's CPU goes to the server
            # (Odoo's prefork workers answer HTTP/1.0 and close each connection)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                c.request("POST", "/ocpi/%s/cdrs" % version, body=bodies[i], headers={
                    "Authorization": auth, "Content-Type": "application/json",
                    "X-Request-ID": "b%d" % i, "X-Correlation-ID": "bench"})
                r = c.getresponse()
                r.read()
                return r.status
            finally:
                c.close()

        def health(i):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                c.request("GET", "/web/health")
                r = c.getresponse()
                r.read()
                return r.status
            finally:
                c.close()

        def worker(call=post, count=len(bodies)):
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= count:
                    return
                status = call(i)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

        def floor(count=2000):
            """Odoo's answer to an empty request (/web/health: no database work) with the
            same clients: what any route costs on this machine."""
            nxt[0] = 0
            t0 = time.monotonic()
            ths = [threading.Thread(target=worker, args=(health, count)) for _ in range(concurrency)]
            for th in ths:
                th.start()
            for th in ths:
                th.join()
            elapsed = time.monotonic() - t0
            nxt[0] = 0
            statuses.clear()
            return count / elapsed

        # warm-up: requests per worker process outside the clock
        for _ in range(workers * 4):
            urllib.request.urlopen(urllib.request.Request(
                base + "/ocpi/versions", headers={"Authorization": auth}), timeout=60).read()
        floor_rate = floor()
        pg = pg_connect(db)
        pg.autocommit = True
        t = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for th in threads:
            th.start()
        last = 0
        while any(th.is_alive() for th in threads):
            time.sleep(1)
            done = nxt[0]
            if done - last and int(time.monotonic() - t) % 5 == 0:
                print("  post: %d/%d (%.0f CDR/s)" % (min(done, len(bodies)), len(bodies),
                                                   done / (time.monotonic() - t)), flush=True)
            last = done
        acked = time.monotonic() - t
        if statuses.get(201) != len(cdrs):
            raise RuntimeError("POST answers %s (expected %d x 201), see %s" % (statuses, len(cdrs), log.name))
        ids = [c["id"] for c in cdrs]
        with pg.cursor() as cr:
            while True:  # the queue cron stores them
                cr.execute("SELECT count(*) FILTER (WHERE state = 'queued'), count(*) "
                           "FROM clearing_cdr_inbox WHERE ocpi_id = ANY(%s)", (ids,))
                queued, total = cr.fetchone()
                if not queued:
                    break
                if time.monotonic() - t > acked + 600:
                    raise RuntimeError("%d CDRs still queued after 10 minutes" % queued)
                time.sleep(0.2)
            stored = time.monotonic() - t
            cr.execute("SELECT count(*) FROM clearing_cdr WHERE ocpi_id = ANY(%s)", (ids,))
            n_stored = cr.fetchone()[0]
        pg.close()
        if (total, n_stored) != (len(cdrs), len(cdrs)):
            raise RuntimeError("queued %d, stored %d of %d CDRs" % (total, n_stored, len(cdrs)))
        return acked, stored, floor_rate
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()
        os.unlink(launcher_py)


def bench_copy(db, cdrs):
    conn = pg_connect(db)
    buf = io.StringIO()
    for c in cdrs:
        raw = json.dumps(c).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        buf.write("%s\t%s\t%s\t%s\n" % (c["country_code"], c["party_id"], c["id"], raw))
    with conn.cursor() as cr:
        cr.execute("CREATE TABLE bench_copy (country_code varchar, party_id varchar, "
                   "ocpi_id varchar, raw jsonb, UNIQUE (country_code, party_id, ocpi_id))")
        conn.commit()
        t = time.monotonic()
        buf.seek(0)
        cr.copy_expert("COPY bench_copy (country_code, party_id, ocpi_id, raw) FROM STDIN", buf)
        conn.commit()
        elapsed = time.monotonic() - t
        cr.execute("SELECT count(*) FROM bench_copy")
        assert cr.fetchone()[0] == len(cdrs)
        cr.execute("DROP TABLE bench_copy")
        conn.commit()
    conn.close()
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--page", type=int, default=500)
    ap.add_argument("--workers", default="1,2",
                    help="comma-separated worker counts, one POST run each (default 1,2)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--template", help="clone this database (account installed) instead of a fresh one")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--post-n", type=int, help="CDRs for each POST run (default: --n)")
    ap.add_argument("--skip-post", action="store_true")
    ap.add_argument("--trigger-ab", action="store_true",
                    help="ingest the first version twice, pages alternating, with and without "
                    "the figures trigger (its cost on the batch path)")
    ap.add_argument("--resale-ab", action="store_true",
                    help="ingest the first version twice, pages alternating, for a contract "
                    "without and one with a resale grid (its cost on the batch path)")
    ap.add_argument("--versions", default="2.2.1,2.3.0",
                    help="comma-separated OCPI versions to ingest in (default 2.2.1,2.3.0)")
    args = ap.parse_args()
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    if args.trigger_ab:
        versions = [versions[0], versions[0] + " without trigger"]
    elif args.resale_ab:
        versions = [versions[0], versions[0] + RESALE]
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    db = "bench_ingest_%d" % os.getpid()
    lm = launcher()
    # recent sessions (last days), as a live feed brings them: old ones would all be "late"
    start = (datetime.datetime.utcnow() - datetime.timedelta(days=5)).strftime("%Y-%m-%dT00:00:00")
    sys.path.insert(0, os.path.join(REPO, "emsp_clearing"))
    from clearing_core import ocpi
    batch_by_version = {
        v: [ocpi.cdr_dict_to_version(c, v.split()[0]) for c in lm.make_cdrs(
            args.n, prefix="B%d" % k, step_seconds=7, start=start,
            **(dict(zip(("country_code", "party_id"), RESALE_PARTY))
               if v.endswith(RESALE) else {}))]
        for k, v in enumerate(versions)}
    batch_cdrs = next(iter(batch_by_version.values()))
    post_n = args.post_n or args.n
    post_runs = []
    try:
        create_db(db, args.template)
        conn_id, token = setup_data(db)
        conn_ids = {versions[1]: setup_resale(db)} if args.resale_ab else None
        print("(a) batch path, %d CDRs per version (%s) in pages of %d ..." % (
            args.n, ", ".join(versions), args.page), flush=True)
        t_batch = bench_batch(db, conn_id, batch_by_version, args.page, conn_ids)
        if args.resale_ab:
            check_resale(db, args.n)
        if not args.skip_post:
            for k, workers in enumerate(worker_counts):
                for j, version in enumerate(versions):
                    post_cdrs = [ocpi.cdr_dict_to_version(c, version.split()[0]) for c in lm.make_cdrs(
                        post_n, prefix="P%d%d" % (k, j), step_seconds=7, start=start)]
                    print("(b) concurrent POSTs in %s, %d CDRs, %d worker(s), %d clients ..." % (
                        version, post_n, workers, args.concurrency), flush=True)
                    post_runs.append((workers, version, bench_post(
                        db, token, post_cdrs, workers, args.concurrency, version)))
        print("(c) PostgreSQL COPY of the same rows ...", flush=True)
        t_copy = bench_copy(db, batch_cdrs)
    finally:
        if not args.keep_db:
            drop_db(db)
    n = args.n
    print()
    print("%-44s %10s %12s" % ("path", "seconds", "CDR/s"))
    for version, seconds in t_batch.items():
        print("%-44s %10.1f %12.0f   target >= 2000: %s" % (
            "(a) batch %s x%d (pull page / file)" % (version, n), seconds, n / seconds,
            "met" if n / seconds >= 2000 else "NOT met"))
    if len(t_batch) > 1 and "2.2.1" in t_batch and "2.3.0" in t_batch:
        print("    2.3.0 / 2.2.1 batch throughput: %.3f (bar: >= 0.90)"
              % (t_batch["2.2.1"] / t_batch["2.3.0"]))
    if args.trigger_ab:
        with_t, without_t = (t_batch[v] for v in versions)
        print("    with / without the figures trigger: %.3f of the throughput (%.0f us more "
              "per CDR)" % (without_t / with_t, (with_t - without_t) / n * 1e6))
    if args.resale_ab:
        without_r, with_r = (t_batch[v] for v in versions)
        print("    with / without a resale grid: %.3f of the throughput (%.0f us more per CDR)"
              % (without_r / with_r, (with_r - without_r) / n * 1e6))
    for workers, version, (acked, stored, floor_rate) in post_runs:
        per_worker = post_n / acked / workers
        print("%-44s %10.1f %12.0f   %.0f per worker, target >= 200: %s" % (
            "(b) POST %s x%d, %d worker(s): answered" % (version, post_n, workers), acked, post_n / acked,
            per_worker, "met" if per_worker >= 200 else "NOT met"))
        print("%-44s %10.1f %12.0f   (queue stored the last one %.1f s after its answer)" % (
            "    ... all stored by the push queue", stored, post_n / stored, stored - acked))
        print("%-44s %10s %12.0f   %.0f per worker: Odoo's floor for any request here" % (
            "    empty route /web/health, same clients", "", floor_rate, floor_rate / workers))
    print("%-44s %10.2f %12.0f   (ceiling)" % ("(c) PostgreSQL COPY x%d" % n, t_copy, n / t_copy))
    print("machine: %d CPU(s), load average %.1f (shared machines make these figures noisy)"
          % (os.cpu_count() or 0, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
