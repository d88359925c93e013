#!/usr/bin/env python3
"""Benchmark of the per-session XLSX breakdown (pure core, no Odoo): how long a sheet of N
sessions takes to build and how much memory the process needs, for 10k, 100k and 300k sessions.

    python3 bench/bench_xlsx_breakdown.py [--sizes 10000,100000,300000]

Each size runs in its own process (fresh interpreter), so that its peak RSS is its own: the rows
come from a generator (as the Odoo glue streams them from its SQL cursor), the VAT is shared pro
rata over them (as for an invoice) and the builder writes in xlsxwriter's constant-memory mode.
A third of the sessions are priced under a fleet grid and a third came in OCPI 2.3.0 with two
stated taxes (one column per tax name). Prints, per size: build time (wall and CPU), peak RSS, the RSS of the same process before the
build (interpreter + imports), the file size, and the totals check. Figures only.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "emsp_clearing"))

from clearing_core.formats.xlsx_breakdown import ProRata, build_breakdown_xlsx  # noqa: E402


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rows(n, vat):
    start = datetime(2026, 3, 1)
    cent = Decimal("0.01")
    for i in range(n):
        begin = start + timedelta(seconds=i * 26)
        kwh = Decimal(1000 + (i * 7919) % 60000) / 1000
        energy = (kwh * Decimal("0.49")).quantize(cent)
        time_cost = Decimal((i % 90) * 6) / 100
        fixed = Decimal("0.35")
        untaxed = energy + time_cost + fixed
        tax = vat.share(untaxed)
        yield {
            "start": begin, "end": begin + timedelta(minutes=20 + i % 90),
            "evse": "FR*VOL*E%06d" % (i % 5000), "session": "S%08d" % i, "cdr": "CDR%08d" % i,
            "kwh": kwh, "duration_hours": Decimal(20 + i % 90) / 60, "parking_hours": 0,
            "tariff": "CTR-2026-0001", "amount_energy": energy, "amount_time": time_cost,
            "amount_fixed": fixed, "amount_untaxed": untaxed, "amount_tax": tax,
            "amount_total": untaxed + tax, "late": "Late" if i % 997 == 0 else "",
            "dispute": "Dispute Rejected" if i % 1499 == 0 else "",
            "grid": "Fleet grid Taxis VIP" if i % 3 == 0 else "Contract grid",
            "stated_taxes": ({"VAT": (untaxed * Decimal("0.2")).quantize(cent),
                              "City tax": Decimal("0.05")} if i % 3 == 1 else None),
        }


def untaxed_total(n):
    return sum(row["amount_untaxed"] for row in rows(n, ProRata(0, 1)))


def one(n):
    base = untaxed_total(n)
    tax = (base * Decimal("0.2")).quantize(Decimal("0.01"))
    before = _rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    content = build_breakdown_xlsx(
        rows(n, ProRata(tax, base)), meta=[("Contract", "CTR-2026-0001")],
        expected={"amount_untaxed": base, "amount_tax": tax, "amount_total": base + tax},
        stated_tax_names=["City tax", "VAT"])
    return {"n": n, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
            "rss_before_mb": before, "peak_rss_mb": _rss_mb(), "bytes": len(content),
            "untaxed": str(base), "tax": str(tax)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    print("XLSX breakdown, constant-memory mode; Python %s; load average %s" % (
        sys.version.split()[0], " ".join("%.2f" % x for x in os.getloadavg())))
    print("%9s %9s %9s %12s %14s %10s  %s" % (
        "sessions", "wall s", "cpu s", "peak RSS MB", "RSS before MB", "file MB", "totals"))
    for n in (int(x) for x in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out)
        print("%9d %9.2f %9.2f %12.1f %14.1f %10.2f  untaxed %s, VAT %s (checked)" % (
            r["n"], r["wall_s"], r["cpu_s"], r["peak_rss_mb"], r["rss_before_mb"],
            r["bytes"] / 1e6, r["untaxed"], r["tax"]))


if __name__ == "__main__":
    main()
