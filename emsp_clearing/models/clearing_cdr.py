import json
import logging
from datetime import timezone
from decimal import Decimal

import pytz

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression

from ..clearing_core import currencies, ocpi, pricing
from ..clearing_core.errors import OcpiValidationError

_logger = logging.getLogger(__name__)

AMOUNT_PARTS = (
    ("amount_fixed", "total_fixed_cost"),
    ("amount_energy", "total_energy_cost"),
    ("amount_time", "total_time_cost"),
    ("amount_parking", "total_parking_cost"),
    ("amount_reservation", "total_reservation_cost"),
)
STATED_PRICES = (
    ("stated_total_fixed_cost", "total_fixed_cost"),
    ("stated_total_energy_cost", "total_energy_cost"),
    ("stated_total_time_cost", "total_time_cost"),
    ("stated_total_parking_cost", "total_parking_cost"),
    ("stated_total_reservation_cost", "total_reservation_cost"),
)


def _naive(dt):
    """Aware UTC datetime -> naive UTC datetime as Odoo stores it."""
    if dt is None:
        return False
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.replace(tzinfo=None)


def _float(value):
    return float(value) if value is not None else 0.0


def _json_decimal(value):
    if value is None:
        return None
    return str(value)


def pretty_json(value):
    """JSON shown in a form (Odoo 18's web client has no widget for a Json field)."""
    return json.dumps(value, indent=2, sort_keys=True) if value else False


class ClearingCdr(models.Model):
    _name = "clearing.cdr"
    _description = "Charge Detail Record (OCPI)"
    _inherit = ["mail.thread"]
    _order = "end_datetime desc, id desc"
    _rec_name = "ocpi_id"
    _rec_names_search = ["ocpi_id", "session_id", "token_uid"]
    _check_company_auto = True

    # ---------------------------------------------------------------- identity
    # indexed with the sender, as the idempotency checks look CDRs up (init of
    # clearing_cdr_ingest.py)
    ocpi_id = fields.Char("CDR ID", required=True, readonly=True)
    country_code = fields.Char(
        "Sender Country Code", required=True, readonly=True,
        help="OCPI country code of the CPO that sent the CDR.",
    )
    party_id = fields.Char(
        "Sender Party ID", required=True, readonly=True,
        help="OCPI party ID of the CPO that sent the CDR.",
    )
    sender_identity = fields.Char(compute="_compute_identities", string="Sender")
    session_id = fields.Char("Session ID", readonly=True)
    # ---------------------------------------------------------------- token
    token_uid = fields.Char("Token UID", readonly=True, index=True)
    token_type = fields.Char("Token Type", readonly=True)
    token_contract_id = fields.Char("Token Contract ID", readonly=True)
    token_country_code = fields.Char("Token Country Code", readonly=True, index=True)
    token_party_id = fields.Char("Token Party ID", readonly=True, index=True)
    token_identity = fields.Char(compute="_compute_identities", string="Token Issuer")
    auth_method = fields.Char("Authentication Method", readonly=True)
    authorization_reference = fields.Char(readonly=True)
    # ---------------------------------------------------------------- location
    location_id = fields.Char("Location ID", readonly=True)
    location_name = fields.Char(readonly=True)
    location_address = fields.Char(readonly=True)
    location_city = fields.Char(readonly=True)
    location_postal_code = fields.Char(readonly=True)
    location_state = fields.Char(readonly=True)
    location_country = fields.Char(readonly=True)
    location_latitude = fields.Char(readonly=True)
    location_longitude = fields.Char(readonly=True)
    evse_uid = fields.Char("EVSE UID", readonly=True)
    evse_id = fields.Char("EVSE ID", readonly=True)
    connector_id = fields.Char("Connector ID", readonly=True)
    connector_standard = fields.Char(readonly=True)
    connector_format = fields.Char(readonly=True)
    connector_power_type = fields.Char(readonly=True)
    meter_id = fields.Char("Meter ID", readonly=True)
    # ---------------------------------------------------------------- session
    start_datetime = fields.Datetime("Start", required=True, readonly=True)
    end_datetime = fields.Datetime("End", required=True, readonly=True, index=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    charging_periods = fields.Json(readonly=True)
    tariffs = fields.Json(readonly=True)
    signed_data = fields.Json(readonly=True)
    # ---------------------------------------------------------------- stated totals
    stated_total_cost_excl = fields.Monetary("Stated Total (excl. VAT)", readonly=True)
    stated_total_cost_incl = fields.Monetary("Stated Total (incl. VAT)", readonly=True)
    stated_total_fixed_cost = fields.Monetary("Stated Fixed Cost", readonly=True)
    stated_total_energy = fields.Float("Stated Energy (kWh)", digits=(16, 3), readonly=True)
    stated_total_energy_cost = fields.Monetary("Stated Energy Cost", readonly=True)
    stated_total_time = fields.Float("Stated Session Duration (h)", digits=(16, 4), readonly=True)
    stated_total_time_cost = fields.Monetary("Stated Time Cost", readonly=True)
    stated_total_parking_time = fields.Float(
        "Stated Parking Time (h)", digits=(16, 4), readonly=True
    )
    stated_total_parking_cost = fields.Monetary("Stated Parking Cost", readonly=True)
    stated_total_reservation_cost = fields.Monetary("Stated Reservation Cost", readonly=True)
    remark = fields.Text(readonly=True)
    invoice_reference_id = fields.Char(readonly=True)
    credit = fields.Boolean(readonly=True, index=True)
    credit_reference_id = fields.Char(readonly=True)
    credited_cdr_id = fields.Many2one(
        "clearing.cdr", string="Credited CDR", readonly=True, index=True,
        help="The CDR this credit CDR cancels.",
    )
    credit_cdr_ids = fields.One2many("clearing.cdr", "credited_cdr_id", string="Credit CDRs")
    home_charging_compensation = fields.Boolean(readonly=True)
    last_updated = fields.Datetime(readonly=True)
    raw_json = fields.Json("Raw OCPI JSON", readonly=True)
    raw_json_text = fields.Text("Raw JSON", compute="_compute_raw_json_text")
    # ---------------------------------------------------------------- our pricing
    amount_fixed = fields.Monetary("Fixed", readonly=True)
    amount_energy = fields.Monetary("Energy Cost", readonly=True)
    amount_time = fields.Monetary("Time Cost", readonly=True)
    amount_parking = fields.Monetary("Parking Cost", readonly=True)
    amount_reservation = fields.Monetary("Reservation Cost", readonly=True)
    amount_adjustment = fields.Monetary(
        "Min/Max Adjustment", readonly=True,
        help="What the contract minimum/maximum price added or removed.",
    )
    amount_untaxed = fields.Monetary("Untaxed Amount", readonly=True)
    amount_tax = fields.Monetary("Tax", readonly=True)
    amount_total = fields.Monetary("Total", readonly=True)
    energy_kwh = fields.Float("Energy (kWh)", digits=(16, 3), readonly=True)
    duration_hours = fields.Float("Session Duration (h)", digits=(16, 4), readonly=True)
    parking_hours = fields.Float("Parking Time (h)", digits=(16, 4), readonly=True)
    price_breakdown = fields.Json(readonly=True)
    price_breakdown_html = fields.Html(
        "Breakdown", compute="_compute_price_breakdown_html", sanitize=False
    )
    applied_tariff = fields.Json(
        readonly=True, help="Snapshot of the OCPI tariff the CDR was priced with."
    )
    price_difference = fields.Monetary(
        "Difference (excl. VAT)", readonly=True,
        help="Stated total excl. VAT minus our untaxed amount.",
    )
    price_difference_incl = fields.Monetary(
        "Difference (incl. VAT)", readonly=True,
        help="Stated total incl. VAT minus our total.",
    )
    price_mismatch = fields.Boolean(readonly=True, index=True)
    priced_date = fields.Datetime("Priced On", readonly=True)
    # ---------------------------------------------------------------- clearing
    contract_id = fields.Many2one(
        "clearing.contract", readonly=True, index=True, check_company=True,
        tracking=True,
    )
    partner_id = fields.Many2one(
        "res.partner", string="Counterparty", readonly=True, index=True, tracking=True
    )
    match_state = fields.Selection(
        [("matched", "Matched"), ("unmatched", "Unmatched")],
        default="unmatched", required=True, readonly=True, index=True,
    )
    unmatched_reason = fields.Char(readonly=True)
    state = fields.Selection(
        [("unmatched", "Unmatched"), ("priced", "Priced")],
        default="unmatched", required=True, readonly=True, index=True, tracking=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, index=True,
        default=lambda self: self.env.company,
    )

    # One CDR per (company, sender, id), the sender compared case-insensitively as OCPI
    # compares CiStrings: a unique index (clearing_cdr_ingest.py, ``init``), not a table
    # constraint, which cannot hold expressions.

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------
    @api.depends("country_code", "party_id", "token_country_code", "token_party_id")
    def _compute_identities(self):
        for cdr in self:
            cdr.sender_identity = "%s*%s" % (cdr.country_code or "", cdr.party_id or "")
            cdr.token_identity = "%s*%s" % (
                cdr.token_country_code or "", cdr.token_party_id or ""
            )

    @api.depends("raw_json")
    def _compute_raw_json_text(self):
        for cdr in self:
            cdr.raw_json_text = pretty_json(cdr.raw_json)

    @api.depends("price_breakdown")
    # ------------------------------------------------------------------
    # Ingestion
    # ------------------------------------------------------------------
    @api.model
    def _parse_ocpi(self, data):
        """Validate ``data`` with the core; ValidationError naming the JSON path."""
        try:
            return ocpi.parse_cdr(data, strict=True)
        except OcpiValidationError as error:
            raise ValidationError(_("Invalid OCPI CDR: %s", error)) from error

    @api.model
    def _vals_from_ocpi(self, parsed, data, company, currency=None):
        """Record values for the parsed OCPI CDR ``parsed`` (input dict ``data``).
        ``currency``: the res.currency of ``parsed.currency`` when the caller already has it
        (batch ingestion looks the codes of a whole batch up at once)."""
        if currency is None:
            currency = self.env["res.currency"].with_context(active_test=False).search(
                [("name", "=", parsed.currency)], limit=1
            )
        if not currency:
            raise ValidationError(
                _("Invalid OCPI CDR: $.currency: currency %s is not available in Odoo.",
                  parsed.currency)
            )
        token = parsed.cdr_token
        location = parsed.cdr_location
        coordinates = getattr(location, "coordinates", None)
        if isinstance(coordinates, dict):
            latitude, longitude = coordinates.get("latitude"), coordinates.get("longitude")
        else:
            latitude = getattr(coordinates, "latitude", None)
            longitude = getattr(coordinates, "longitude", None)
        total_cost = parsed.total_cost
        vals = {
            "company_id": company.id,
            "ocpi_id": parsed.id,
            "country_code": parsed.country_code,
            "party_id": parsed.party_id,
            "session_id": parsed.session_id,
            "token_uid": token.uid,
            "token_type": token.type,
            "token_contract_id": token.contract_id,
            "token_country_code": token.country_code,
            "token_party_id": token.party_id,
            "auth_method": parsed.auth_method,
            "authorization_reference": parsed.authorization_reference,
            "location_id": location.id,
            "location_name": location.name,
            "location_address": location.address,
            "location_city": location.city,
            "location_postal_code": location.postal_code,
            "location_state": getattr(location, "state", None),
            "location_country": location.country,
            "location_latitude": latitude,
            "location_longitude": longitude,
            "evse_uid": location.evse_uid,
            "evse_id": location.evse_id,
            "connector_id": location.connector_id,
            "connector_standard": location.connector_standard,
            "connector_format": location.connector_format,
            "connector_power_type": location.connector_power_type,
            "meter_id": parsed.meter_id,
            "start_datetime": _naive(parsed.start_date_time),
            "end_datetime": _naive(parsed.end_date_time),
            "currency_id": currency.id,
            "charging_periods": data.get("charging_periods"),
            "tariffs": data.get("tariffs"),
            "signed_data": data.get("signed_data"),
            "stated_total_cost_excl": _float(total_cost.excl_vat),
            "stated_total_cost_incl": _float(total_cost.incl_vat),
            "stated_total_energy": _float(parsed.total_energy),
            "stated_total_time": _float(parsed.total_time),
            "stated_total_parking_time": _float(parsed.total_parking_time),
            "remark": parsed.remark,
            "invoice_reference_id": parsed.invoice_reference_id,
            "credit": bool(parsed.credit),
            "credit_reference_id": parsed.credit_reference_id,
            "home_charging_compensation": bool(parsed.home_charging_compensation),
            "last_updated": _naive(parsed.last_updated),
            "raw_json": data,
        }
        for fname, attr in STATED_PRICES:
            price = getattr(parsed, attr)
            vals[fname] = _float(price.excl_vat) if price is not None else 0.0
        return vals

    @api.model
    def _ingest_ocpi(self, data, company=None, tariff_cache=None):
        """Store, match and price one OCPI 2.2.1 CDR (dict as received).

        Raises ValidationError (nothing stored) when the CDR is invalid or was
        already received. Returns the new clearing.cdr record.
        """
        company = company or self.env.company
        parsed = self._parse_ocpi(data)
        # the sender compared case-insensitively, as the unique index compares it
        if self._existing_keys(company, {(parsed.country_code, parsed.party_id, parsed.id)}):
            raise ValidationError(
                _(
                    "CDR %(id)s from %(country)s*%(party)s was already received.",
                    id=parsed.id,
                    country=parsed.country_code,
                    party=parsed.party_id,
                )
            )
        cdr = self.with_context(mail_create_nolog=True).create(
            self._vals_from_ocpi(parsed, data, company)
        ).with_context(mail_create_nolog=False)
        cdr._resolve_credit_links()
        cdr._match_and_price(tariff_cache=tariff_cache, parsed={cdr.id: parsed})
        return cdr

    @api.model
    def _ingest_ocpi_batch(self, items, company=None):
        """Ingest several CDRs; one bad item does not spoil the others.

        Returns one dict per item, in order: ``{"index": i, "record": cdr or None,
        "error": message or None}``.
        """
        results = []
        tariff_cache = {}
        for index, data in enumerate(items):
            try:
                with self.env.cr.savepoint():
                    if not isinstance(data, dict):
                        raise ValidationError(
                            _("Invalid OCPI CDR: $: a CDR must be a JSON object.")
                        )
                    cdr = self._ingest_ocpi(data, company=company, tariff_cache=tariff_cache)
                results.append({"index": index, "record": cdr, "error": None})
            except (ValidationError, UserError) as error:
                self.env.invalidate_all()
                results.append({"index": index, "record": None, "error": str(error)})
        return results

    def _resolve_credit_links(self):
        """Link credit CDRs to the CDR they credit (in both arrival orders)."""
        for cdr in self:
            if cdr.credit and cdr.credit_reference_id and not cdr.credited_cdr_id:
                original = self.search(
                    [
                        ("company_id", "=", cdr.company_id.id),
                        ("country_code", "=", cdr.country_code),
                        ("party_id", "=", cdr.party_id),
                        ("ocpi_id", "=", cdr.credit_reference_id),
                        ("id", "!=", cdr.id),
                    ],
                    limit=1,
                )
                if original:
                    cdr.credited_cdr_id = original
            if not cdr.credit:
                credits = self.search(
                    [
                        ("company_id", "=", cdr.company_id.id),
                        ("country_code", "=", cdr.country_code),
                        ("party_id", "=", cdr.party_id),
                        ("credit", "=", True),
                        ("credit_reference_id", "=", cdr.ocpi_id),
                        ("credited_cdr_id", "=", False),
                    ]
                )
                credits.credited_cdr_id = cdr

    # ------------------------------------------------------------------
    # Matching and pricing
    # ------------------------------------------------------------------
    def _match(self):
        """Attach each CDR to its contract (``clearing.contract._find_for_cdr``) or store it
        unmatched, with the reason and the counterparty its OCPI identities name.

        Set-based, for the thousands of CDRs a contract or partner change moves: the candidate
        contracts are searched once per (company, sender, token issuer), the choice among them
        made once per (those, currency, end date in each of their time zones) -- all that
        ``_find_for_cdr`` reads --, the counterparty of unmatched CDRs looked up once per
        (company, sender, issuer), and the CDRs given the same values written together (one
        ``write``, hence one period assignment, per group; the tracked fields are still tracked
        per CDR by mail.thread). Stores what the CDR-by-CDR reference path of
        tests/test_rematch_batch.py stores."""
        if not self:
            return
        # the first locked CDR refuses the whole call, as the first write on it did
        self._check_not_locked()
        contract_model = self.env["clearing.contract"]
        candidates_memo, select_memo, partner_memo = {}, {}, {}
        groups = {}
        for cdr in self:
            company = cdr.company_id
            ident = (company.id, cdr.country_code, cdr.party_id, cdr.token_country_code,
                     cdr.token_party_id)
            if ident not in candidates_memo:
                contracts, reason = contract_model._match_candidates(company, *ident[1:])
                zones = tuple(pytz.timezone(tz) for tz in sorted(set(contracts.mapped("tz"))))
                candidates_memo[ident] = (contracts, reason, zones)
            contracts, reason, zones = candidates_memo[ident]
            contract = contract_model
            if not reason:
                end = cdr.end_datetime
                utc_end = pytz.utc.localize(end)
                key = (ident, cdr.currency_id.id,
                       tuple(utc_end.astimezone(zone).date() for zone in zones))
                if key not in select_memo:
                    select_memo[key] = contracts._match_select(cdr.currency_id, end)
                contract, reason = select_memo[key]
            if contract:
                vals = (contract.id, contract.partner_id.id, "matched", False)
            else:
                if ident not in partner_memo:
                    partner_memo[ident] = self._match_unmatched_partner(*ident).id
                vals = (False, partner_memo[ident], "unmatched", reason)
            groups.setdefault(vals, []).append(cdr.id)
        for (contract_id, partner_id, match_state, reason), ids in groups.items():
            self.browse(ids).write({
                "contract_id": contract_id,
                "partner_id": partner_id,
                "match_state": match_state,
                "unmatched_reason": reason,
            })

    @api.model
    def _identities_domain(self, identities):
        """CDRs sent by, or for a token of, one of ``identities`` (``(country code, party id)``
        pairs; incomplete ones are left out), compared case-insensitively as ``_match`` reads
        them (OCPI CiString): "=ilike" is an exact comparison here, an identity being letters
        and digits only (res.partner._check_ocpi_identity)."""
        return expression.OR([
            ["|", "&", ("token_country_code", "=ilike", country),
             ("token_party_id", "=ilike", party),
             "&", ("country_code", "=ilike", country), ("party_id", "=ilike", party)]
            for country, party in identities if country and party])

    @api.model
    def _match_unmatched_partner(self, company_id, country_code, party_id, token_country_code,
                                 token_party_id):
        """The counterparty of an unmatched CDR: the token issuer's when we sent it, else the
        sender's (``res.partner._find_by_ocpi_identity``)."""
        company = self.env["res.company"].browse(company_id)
        own = company.partner_id
        partner_model = self.env["res.partner"]
        if (country_code, party_id) == (own.ocpi_country_code, own.ocpi_party_id):
            return partner_model._find_by_ocpi_identity(token_country_code, token_party_id,
                                                        company)
        return partner_model._find_by_ocpi_identity(country_code, party_id, company)

    def _match_and_price(self, tariff_cache=None, parsed=None):
        """(Re)attach the contract of each CDR and price the matched ones (set-based: see
        ``_match`` and ``_price``)."""
        self._match()
        matched = self.filtered(lambda c: c.match_state == "matched")
        # unpriced values depend on the CDR's volumes only: CDRs alike are written together
        groups = {}
        for cdr in self - matched:
            vals = cdr._empty_pricing_vals()
            groups.setdefault(tuple(sorted(vals.items())), []).append(cdr.id)
        for vals, ids in groups.items():
            self.browse(ids).write(dict(vals))
        matched._price(tariff_cache=tariff_cache, parsed=parsed)

    def _volumes(self):
        """(kWh, charging hours, parking hours) of the CDR, signed like its amounts.

        Taken from the charging periods as sent, without any tariff: unmatched CDRs
        still show their volumes.
        """
        self.ensure_one()
        energy = parking = Decimal(0)
        for period in self.charging_periods or []:
            for dimension in period.get("dimensions") or []:
                if dimension.get("type") == "ENERGY":
                    energy += self._json_number(dimension.get("volume"))
                elif dimension.get("type") == "PARKING_TIME":
                    parking += self._json_number(dimension.get("volume"))
        seconds = (self.end_datetime - self.start_datetime).total_seconds()
        sign = -1 if self.credit else 1
        return sign * float(energy), sign * seconds / 3600.0, sign * float(parking)

    def _empty_pricing_vals(self):
        """Values of a CDR that is not priced (no contract)."""
        self.ensure_one()
        vals = {fname: 0.0 for fname, _attr in AMOUNT_PARTS}
        energy, hours, parking = self._volumes()
        vals.update(
            amount_adjustment=0.0, amount_untaxed=0.0, amount_tax=0.0, amount_total=0.0,
            energy_kwh=energy, duration_hours=hours, parking_hours=parking,
            price_breakdown=False, applied_tariff=False, price_difference=0.0,
            price_difference_incl=0.0, price_mismatch=False, priced_date=False,
            state="unmatched",
        )
        return vals

    @api.model
    def _contract_tariff(self, contract, tariff_cache):
        """``(tariff_dict, ocpi.Tariff)`` of a contract's grid, built once per contract
        version within ``tariff_cache`` (a dict shared by a batch)."""
        key = (contract.id, str(contract.write_date))
        if key not in tariff_cache:
            tariff_cache[key] = self._tariff_memo(*key)
        return tariff_cache[key]

    @api.model
    @tools.ormcache("contract_id", "write_date")
    def _tariff_memo(self, contract_id, write_date):
        """``_contract_tariff`` across requests and batches: the contract's grid, its lines and
        taxes clear the memo when they change (clearing_ingest_cache.py). The tariff dict is
        shared: read it, never change it in place."""
        contract = self.env["clearing.contract"].sudo().browse(contract_id)
        tariff_dict = contract.to_ocpi_tariff()
        try:
            tariff = ocpi.parse_tariff(tariff_dict, strict=True)
        except OcpiValidationError as error:
            raise ValidationError(
                _("Contract %(contract)s: invalid price grid: %(error)s",
                  contract=contract.name, error=error)
            ) from error
        return tariff_dict, tariff

    def _price(self, tariff_cache=None, parsed=None):
        """Price matched CDRs with their contract grid and store rounded amounts.

        Every CDR is priced before any is written (a CDR that cannot be priced refuses the
        call, as it did CDR by CDR); its OCPI JSON is parsed once."""
        tariff_cache = {} if tariff_cache is None else tariff_cache
        parsed = parsed or {}
        vals_list = [cdr._priced_vals(tariff_cache, parsed) for cdr in self]
        for cdr, vals in zip(self, vals_list):
            cdr.write(vals)

    def _priced_vals(self, tariff_cache, parsed):
        """Stored pricing values of the matched CDR under its contract grid (``parsed``: its
        OCPI CDR by record id when already parsed)."""
        self.ensure_one()
        contract = self.contract_id
        tariff_dict, tariff = self._contract_tariff(contract, tariff_cache)
        ocpi_cdr = parsed.get(self.id) or self._parse_ocpi(self.raw_json)
        return self._pricing_vals(self._price_ocpi(ocpi_cdr, tariff, contract), tariff_dict)

    @api.model
    def _price_ocpi(self, ocpi_cdr, tariff, contract):
        """``pricing.PriceResult`` of the parsed OCPI CDR under ``tariff`` (the grid of
        ``contract``, in its time zone); a ValidationError naming the CDR when it cannot be
        priced."""
        try:
            return pricing.price_cdr(ocpi_cdr, tariff, tz=contract.tz)
        except OcpiValidationError as error:
            raise ValidationError(
                _("CDR %(cdr)s cannot be priced: %(error)s", cdr=ocpi_cdr.id, error=error)
            ) from error

    def _pricing_vals(self, result, tariff_dict):
        """Stored values for a pricing.PriceResult, rounded to the CDR currency."""
        self.ensure_one()
        code = self.currency_id.name
        sign = Decimal(-1) if self.credit else Decimal(1)

        def money(value):
            return currencies.round_money(sign * Decimal(value or 0), code)

        vals = {}
        untaxed = Decimal(0)
        tax = Decimal(0)
        for fname, attr in AMOUNT_PARTS:
            price = getattr(result, attr)
            excl = money(price.excl_vat) if price is not None else Decimal(0)
            vals[fname] = float(excl)
            untaxed += excl
        adjustment = result.min_max_adjustment
        adjustment_excl = money(adjustment.excl_vat) if adjustment is not None else Decimal(0)
        vals["amount_adjustment"] = float(adjustment_excl)
        untaxed += adjustment_excl
        total_cost = result.total_cost
        if total_cost.incl_vat is not None:
            tax = money(Decimal(total_cost.incl_vat) - Decimal(total_cost.excl_vat))
        total = untaxed + tax
        # Compare with the exact stated values (the Monetary fields are rounded).
        stated = (self.raw_json or {}).get("total_cost") or {}
        stated_excl = self._json_number(stated.get("excl_vat"))
        stated_incl = self._json_number(stated.get("incl_vat"))
        difference = stated_excl - untaxed
        difference_incl = stated_incl - total if "incl_vat" in stated else Decimal(0)
        tolerance = Decimal(repr(self.contract_id.price_tolerance))
        vals.update(
            amount_untaxed=float(untaxed),
            amount_tax=float(tax),
            amount_total=float(total),
            energy_kwh=float(sign * Decimal(result.total_energy or 0)),
            duration_hours=float(sign * Decimal(result.total_time or 0)),
            parking_hours=float(sign * Decimal(result.total_parking_time or 0)),
            price_breakdown=[self._priced_line_json(line) for line in result.lines],
            applied_tariff=tariff_dict,
            price_difference=float(difference),
            price_difference_incl=float(difference_incl),
            price_mismatch=abs(difference) > tolerance,
            priced_date=fields.Datetime.now(),
            state="priced",
        )
        return vals

    @staticmethod
    def _json_number(value):
        if value is None:
            return Decimal(0)
        if isinstance(value, float):
            return Decimal(repr(value))
        return Decimal(value)

    @api.model
    def _priced_line_json(self, line):
        def fmt_dt(value):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None

        return {
            "period_start": fmt_dt(line.period_start),
            "period_end": fmt_dt(line.period_end),
            "dimension": line.dimension,
            "category": line.category,
            "volume": _json_decimal(line.volume),
            "billed_volume": _json_decimal(line.billed_volume),
            "unit_price": _json_decimal(line.unit_price),
            "vat": _json_decimal(line.vat),
            "excl_vat": _json_decimal(line.excl_vat),
            "incl_vat": _json_decimal(line.incl_vat),
            "element_index": line.element_index,
            "step_size": line.step_size,
        }

    def _repriceable(self):
        """CDRs that may still be re-priced (later states lock them)."""
        return self.filtered(lambda c: c.state in ("unmatched", "priced"))

    @api.model
    def _contract_movable_domain(self):
        """CDRs that may still change contract: when the rule of theirs changes and they no
        longer fit it, they are matched again (``clearing.contract.write``); a CDR outside this
        domain refuses such a change. Later states keep their contract (see also
        clearing_cdr_period.py)."""
        return [("state", "in", ("unmatched", "priced"))]

    def action_reprice(self):
        if not self.env.user.has_group("emsp_clearing.group_clearing_manager"):
            raise UserError(_("Only clearing managers can re-price CDRs."))
        cdrs = self._repriceable()
        if not cdrs:
            raise UserError(_("None of the selected CDRs can be re-priced."))
        cdrs._match_and_price(tariff_cache={})
        return True
