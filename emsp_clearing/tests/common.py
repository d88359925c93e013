from datetime import datetime, timedelta

from odoo import Command
from odoo.tests import TransactionCase


def ocpi_dt(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_ocpi_cdr(
    cdr_id,
    start,
    periods,
    end=None,
    sender=("FR", "TST"),
    issuer=("FR", "TEM"),
    currency="EUR",
    total_cost=None,
    **extra,
):
    """A valid OCPI 2.2.1 CDR dict.

    ``periods``: list of ``(minutes_from_start, {dimension: volume})``;
    ``end``: session end (default: last period start + 1h).
    """
    end = end or start + timedelta(minutes=periods[-1][0] + 60)
    charging_periods = [
        {
            "start_date_time": ocpi_dt(start + timedelta(minutes=offset)),
            "dimensions": [
                {"type": dim, "volume": volume} for dim, volume in dims.items()
            ],
        }
        for offset, dims in periods
    ]
    energy = sum(d.get("ENERGY", 0) for _o, d in periods)
    time = sum(d.get("TIME", 0) for _o, d in periods)
    parking = sum(d.get("PARKING_TIME", 0) for _o, d in periods)
    data = {
        "country_code": sender[0],
        "party_id": sender[1],
        "id": cdr_id,
        "start_date_time": ocpi_dt(start),
        "end_date_time": ocpi_dt(end),
        "session_id": "S-%s" % cdr_id,
        "cdr_token": {
            "country_code": issuer[0],
            "party_id": issuer[1],
            "uid": "04A1B2C3D4E5F6",
            "type": "RFID",
            "contract_id": "%s-%s-C00001234-X" % issuer,
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC-PARIS-01",
            "name": "Parking Bercy",
            "address": "12 Quai de Bercy",
            "city": "Paris",
            "postal_code": "75012",
            "country": "FRA",
            "coordinates": {"latitude": "48.835100", "longitude": "2.380300"},
            "evse_uid": "EVSE-0001",
            "evse_id": "FR*TST*E0001",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": currency,
        "charging_periods": charging_periods,
        "total_cost": total_cost or {"excl_vat": 0, "incl_vat": 0},
        "total_energy": round(energy, 3),
        "total_time": round(time, 6),
        "last_updated": ocpi_dt(end),
    }
    if parking:
        data["total_parking_time"] = round(parking, 6)
    data.update(extra)
    return data


class ClearingCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.company = cls.env.company
        # over the demo data too, whose locked CDRs keep our demo identity: without the
        # context key the change would be refused (test_partner_rematch.py)
        cls.company.partner_id.with_context(clearing_identity_keep_cdrs=True).write(
            {"ocpi_country_code": "FR", "ocpi_party_id": "TST", "ocpi_is_cpo": True}
        )
        cls.company.clearing_price_tolerance = 0.01
        cls.eur = cls.env.ref("base.EUR")
        cls.usd = cls.env.ref("base.USD")
        cls.eur.active = True
        cls.emsp = cls.env["res.partner"].create(
            {
                "name": "Test eMSP",
                "is_company": True,
                "ocpi_country_code": "FR",
                "ocpi_party_id": "TEM",
                "ocpi_is_emsp": True,
            }
        )
        cls.cpo = cls.env["res.partner"].create(
            {
                "name": "Test CPO",
                "is_company": True,
                "ocpi_country_code": "DE",
                "ocpi_party_id": "CPX",
                "ocpi_is_cpo": True,
            }
        )
        cls.sale_tax = cls.env["account.tax"].create(
            {
                "name": "Clearing VAT 20% (sale)",
                "amount": 20.0,
                "amount_type": "percent",
                "type_tax_use": "sale",
                "company_id": cls.company.id,
            }
        )
        cls.purchase_tax = cls.env["account.tax"].create(
            {
                "name": "Clearing VAT 19% (purchase)",
                "amount": 19.0,
                "amount_type": "percent",
                "type_tax_use": "purchase",
                "company_id": cls.company.id,
            }
        )

    @classmethod
    def _contract(cls, partner=None, role="cpo", lines=None, activate=True, **vals):
        values = {
            "partner_id": (partner or cls.emsp).id,
            "role": role,
            "currency_id": cls.eur.id,
            "date_start": "2026-01-01",
            "tz": "Europe/Paris",
            "tax_ids": [Command.set((cls.sale_tax if role == "cpo" else cls.purchase_tax).ids)],
            "price_line_ids": [
                Command.create(line)
                for line in (lines or [{"dimension": "ENERGY", "price": 0.30}])
            ],
        }
        values.update(vals)
        contract = cls.env["clearing.contract"].create(values)
        if activate:
            contract.action_activate()
        return contract

    @classmethod
    def _raw_cdr(cls, ocpi_id, end, sender=("FR", "TST"), issuer=("FR", "TEM"),
                 currency=None, company=None):
        """A clearing.cdr stored directly (no OCPI parsing), for matching tests."""
        end = end if isinstance(end, datetime) else datetime.fromisoformat(end)
        return cls.env["clearing.cdr"].create(
            {
                "ocpi_id": ocpi_id,
                "country_code": sender[0],
                "party_id": sender[1],
                "token_country_code": issuer[0],
                "token_party_id": issuer[1],
                "start_datetime": end - timedelta(hours=1),
                "end_datetime": end,
                "currency_id": (currency or cls.eur).id,
                "company_id": (company or cls.company).id,
                "raw_json": {},
            }
        )
