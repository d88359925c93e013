"""Deterministic demo CDR generator (the demo data only: demo/clearing_demo.xml calls it through
``clearing.cdr._demo_generate_cdrs``)."""

import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from odoo import fields

from ..clearing_core import currencies, ocpi, pricing

DEMO_LOCATIONS = [
    ("LOC-PAR-BERCY", "Parking Bercy Village", "28 Rue François Truffaut", "Paris", "75012",
     "48.833300", "2.386000", "AC_3_PHASE", 22),
    ("LOC-PAR-DEFENSE", "La Défense Grande Arche", "1 Parvis de la Défense", "Puteaux",
     "92800", "48.892600", "2.236000", "DC", 150),
    ("LOC-LYO-PARTDIEU", "Lyon Part-Dieu Gare", "5 Place Charles Béraudier", "Lyon", "69003",
     "45.760600", "4.859600", "AC_3_PHASE", 11),
    ("LOC-NTE-ILE", "Nantes Île de Nantes", "2 Quai François Mitterrand", "Nantes", "44200",
     "47.208500", "-1.556000", "DC", 50),
    ("LOC-BDX-BASTIDE", "Bordeaux Bastide", "15 Quai des Queyries", "Bordeaux", "33100",
     "44.846000", "-0.560000", "AC_3_PHASE", 22),
    ("LOC-A7-MONTELIMAR", "Aire de Montélimar A7", "Autoroute du Soleil", "Montélimar",
     "26200", "44.558000", "4.750000", "DC", 150),
]


def _ocpi_dt(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_cdrs(env, count=320, seed=2026):
    """Ingest ``count`` realistic OCPI CDRs over the two months before today.

    Tokens of the demo eMSPs (plus a few of an unknown eMSP, unmatched); a few
    stated totals deliberately differ from the grid (mismatches) and a few
    sessions are credited. Deterministic for a given day.
    """
    company = env.ref("base.main_company")
    contracts = [
        env.ref("emsp_clearing.demo_contract_electra"),
        env.ref("emsp_clearing.demo_contract_berlin"),
        env.ref("emsp_clearing.demo_contract_sud"),
    ]
    issuers = [(c.partner_id.ocpi_country_code, c.partner_id.ocpi_party_id, c)
               for c in contracts]
    rng = random.Random(seed)
    today = fields.Date.context_today(env["clearing.cdr"])
    first_day = today - timedelta(days=60)
    tariffs = {}
    payloads = []
    for index in range(count):
        if index % 53 == 7:
            issuer = ("NL", "UNK", None)
        else:
            issuer = issuers[index % 3]
        payloads.append(_cdr_payload(rng, index, issuer, first_day, tariffs))
    # Sessions arrive day after day, and the scheduled actions run every day: replay that
    # history so that past periods hold their sessions, were controlled and are locked.
    periods = env["clearing.period"]
    by_day = {}
    for payload in payloads:
        by_day.setdefault(payload["end_date_time"][:10], []).append(payload)
    results = []
    for day in sorted(by_day):
        as_of = {"clearing_today": fields.Date.to_date(day)}
        periods.with_context(**as_of)._cron_lock_periods()
        periods.with_context(**as_of)._cron_open_periods()
        results += env["clearing.cdr"].with_context(**as_of).ingest_ocpi_batch(by_day[day], company=company)
    # credit a few sessions, as a CPO does after a billing complaint
    originals = [r["record"] for r in results if r["record"] and r["record"].contract_id]
    credits = []
    for original in originals[5:len(originals):97]:
        raw = dict(original.raw_json)
        total = raw["total_cost"]
        raw.update(
            id="%s-CR" % original.ocpi_id,
            credit=True,
            credit_reference_id=original.ocpi_id,
            total_cost={"excl_vat": -total["excl_vat"], "incl_vat": -total["incl_vat"]},
            remark="Credit: session interrupted by a charger fault",
            last_updated=_ocpi_dt(datetime.combine(today, time(6, 0))),
        )
        credits.append(raw)
    env["clearing.cdr"].ingest_ocpi_batch(credits, company=company)


def _cdr_payload(rng, index, issuer, first_day, tariffs):
    country, party, contract = issuer
    (loc_id, loc_name, address, city, postal_code, lat, lon, power_type,
     power_kw) = DEMO_LOCATIONS[rng.randrange(len(DEMO_LOCATIONS))]
    day = first_day + timedelta(days=rng.randrange(60))
    # local (Paris) start hour: busier during the day, some night sessions
    hour = rng.choice([0, 6, 7, 8, 8, 9, 11, 12, 13, 15, 17, 18, 18, 19, 20, 21, 22, 23])
    start = datetime.combine(day, time(hour, rng.randrange(60))) - timedelta(hours=1)
    charge_minutes = rng.randrange(15, 60) if power_type == "DC" else rng.randrange(45, 300)
    effective_kw = power_kw * rng.uniform(0.45, 0.9)
    periods = []
    offset = 0
    while offset < charge_minutes:
        length = min(rng.choice([20, 30, 45, 60]), charge_minutes - offset)
        energy = round(effective_kw * length / 60, 3)
        periods.append(
            {
                "start_date_time": _ocpi_dt(start + timedelta(minutes=offset)),
                "dimensions": [
                    {"type": "ENERGY", "volume": energy},
                    {"type": "TIME", "volume": round(length / 60, 6)},
                ],
            }
        )
        offset += length
    parking_minutes = rng.choice([0, 0, 0, 10, 25, 40, 90, 150])
    if parking_minutes:
        periods.append(
            {
                "start_date_time": _ocpi_dt(start + timedelta(minutes=offset)),
                "dimensions": [
                    {"type": "PARKING_TIME", "volume": round(parking_minutes / 60, 6)}
                ],
            }
        )
    end = start + timedelta(minutes=offset + parking_minutes)
    cdr_id = "FR-OUR-%s-%05d" % (day.strftime("%Y%m%d"), index + 1)
    data = {
        "country_code": "FR",
        "party_id": "OUR",
        "id": cdr_id,
        "start_date_time": _ocpi_dt(start),
        "end_date_time": _ocpi_dt(end),
        "session_id": "SES-%05d" % (index + 1),
        "cdr_token": {
            "country_code": country,
            "party_id": party,
            "uid": "%08X" % rng.getrandbits(32),
            "type": rng.choice(["RFID", "RFID", "APP_USER"]),
            "contract_id": "%s-%s-C%08d" % (country, party, rng.randrange(10**8)),
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": loc_id,
            "name": loc_name,
            "address": address,
            "city": city,
            "postal_code": postal_code,
            "country": "FRA",
            "coordinates": {"latitude": lat, "longitude": lon},
            "evse_uid": "%s-E%d" % (loc_id, rng.randrange(1, 5)),
            "evse_id": "FR*OUR*E%s%d" % (loc_id[-4:].replace("-", ""), rng.randrange(1, 5)),
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2_COMBO" if power_type == "DC"
            else "IEC_62196_T2",
            "connector_format": "CABLE" if power_type == "DC" else "SOCKET",
            "connector_power_type": power_type,
        },
        "meter_id": "MTR-%s" % loc_id[-6:],
        "currency": "EUR",
        "charging_periods": periods,
        "last_updated": _ocpi_dt(end + timedelta(minutes=5)),
    }
    data.update(_stated_totals(data, contract, tariffs, rng))
    return data

def _stated_totals(data, contract, tariffs, rng):
    """Totals as the CPO states them: the grid's price, a few deliberately off."""
    parsed = ocpi.parse_cdr(dict(data, total_cost={"excl_vat": 0}, total_energy=0,
                                 total_time=0), strict=True)
    if contract is None or parsed.end_date_time.date() < contract.date_start:
        # a public tariff of 0.49/kWh for tokens without agreement
        tariff_dict = {
            "country_code": "FR", "party_id": "OUR", "id": "PUBLIC-AC", "currency": "EUR",
            "elements": [{"price_components": [
                {"type": "ENERGY", "price": 0.49, "vat": 20, "step_size": 1}]}],
            "last_updated": "2026-01-01T00:00:00Z",
        }
        key, tz = "public", "Europe/Paris"
    else:
        tariff_dict, key, tz = None, contract.id, contract.tz
    if key not in tariffs:
        tariffs[key] = ocpi.parse_tariff(tariff_dict or contract.to_ocpi_tariff())
    result = pricing.price_cdr(parsed, tariffs[key], tz=tz)

    def money(value):
        return currencies.round_money(value, "EUR")

    excl = sum(
        (money(getattr(result, attr).excl_vat) for attr in (
            "total_fixed_cost", "total_energy_cost", "total_time_cost",
            "total_parking_cost", "total_reservation_cost")),
        Decimal(0),
    ) + money(result.min_max_adjustment.excl_vat)
    tax = money(result.total_cost.incl_vat - result.total_cost.excl_vat)
    if rng.random() < 0.04:
        # the CPO back-office applied an outdated price
        excl += Decimal(rng.choice(["0.35", "0.80", "1.50", "-0.60"]))
    totals = result.to_ocpi_totals(places=2, as_float=True)
    totals["total_cost"] = {"excl_vat": float(excl), "incl_vat": float(excl + tax)}
    totals["total_energy"] = float(round(result.total_energy, 3))
    totals["total_time"] = float(round(result.total_time, 4))
    totals["total_parking_time"] = float(round(result.total_parking_time, 4))
    totals.pop("total_reservation_cost")
    return totals


def generate_invoices(env, count=40, seed=10):
    """Invoicing demo (demo/clearing_invoice_demo.xml calls it through
    ``clearing.period._demo_invoice``): sessions of our customers on a CPO's network billed to us,
    sessions of a German eMSP on ours (reverse charge), the past periods invoiced, posted and
    queued for sending, one credit note."""
    periods = env["clearing.period"]
    company = env.ref("base.main_company")
    contract = env.ref("emsp_clearing.demo_contract_bex")
    cdr_model = env["clearing.cdr"]
    rng = random.Random(seed)
    today = fields.Date.context_today(periods)
    first_day = today - timedelta(days=60)
    own = company.partner_id
    rhein = env.ref("emsp_clearing.demo_contract_rhein")
    payloads = []
    for index in range(count):
        # sessions of our customers on Borne Express's network (billed to us)
        data = _cdr_payload(
            rng, 1000 + index, (own.ocpi_country_code, own.ocpi_party_id, contract),
            first_day, {})
        data.update(country_code="FR", party_id="BEX", id="FR-BEX-%05d" % (index + 1))
        data["cdr_location"]["evse_id"] = data["cdr_location"]["evse_id"].replace(
            "FR*OUR*", "FR*BEX*")
        payloads.append(data)
        # sessions of Rhein Mobil's customers on our network (billed in reverse charge)
        payloads.append(_cdr_payload(
            rng, 2000 + index, ("DE", "RMO", rhein), first_day, {}))
    by_day = {}
    for payload in payloads:
        by_day.setdefault(payload["end_date_time"][:10], []).append(payload)
    for day in sorted(by_day):
        as_of = {"clearing_today": fields.Date.to_date(day)}
        periods.with_context(**as_of)._cron_lock_periods()
        cdr_model.with_context(**as_of).ingest_ocpi_batch(by_day[day], company=company)
    periods._cron_lock_periods()
    # what the invoicing cron did on each statement date, then Odoo's sending
    periods._cron_invoice_periods()
    invoices = periods.search([("state", "=", "invoiced")]).invoice_id
    billed = invoices.filtered(lambda m: m.move_type == "out_invoice").clearing_cdr_ids
    credited = billed.filtered(lambda c: not c.credit and not c.credit_cdr_ids)[:1]
    if credited:
        credited._create_dispute_credit()
        periods._invoice_refunds()
    # posted and queued for Odoo's sending: the batch cron (account.ir_cron_account_move_send)
    # renders and mails them once the server runs (no PDF can be rendered while the
    # module installs: wkhtmltopdf reads the report assets from the running server)
    return True
