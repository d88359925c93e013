"""clearing.cdr: a charge detail record (OCPI 2.2.1 CDR) as received, matched to its contract,
priced with the contract grid, put in its clearing period, disputed, locked.

The model is declared here, whole. Batch ingestion (one ``COPY`` per batch) is the named
abstract mixin ``clearing.cdr.ingest.mixin`` (clearing_cdr_ingest_mixin.py) that this model
inherits. Code that is not a model lives in ``tools/``: display formatting, period arithmetic,
shared selections, the bulk writer, the demo generator.

Public entry points (stable, for other modules):

* ``ingest_ocpi(data, company=None)``: store, match and price one OCPI CDR;
* ``ingest_ocpi_batch(items, company=None, ...)``: the same for many, one bad item not spoiling
  the others (clearing_cdr_ingest_mixin.py);
* ``reprice()``: match again and re-price CDRs (``action_reprice`` is the button);
* ``assign_period()``: put sessions in their clearing period.

Hooks to extend (``_prepare_*``, as OCA/contract's ``_prepare_invoice``): ``_prepare_cdr_vals``
(values of a new CDR from OCPI), ``_prepare_pricing_vals`` / ``_prepare_empty_pricing_vals``
(stored pricing of a matched / unmatched CDR), ``_prepare_period_vals`` (period of a session).
Both ingestion paths go through them.
"""

import json
import logging
from datetime import timezone
from decimal import Decimal

import psycopg2
import pytz
from markupsafe import Markup, escape

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL

from ..clearing_core import currencies, ocpi, pricing
from ..clearing_core.errors import OcpiValidationError
from ..tools import demo, display
from ..tools.numbers import to_decimal
from ..tools.selections import CDR_DISPUTE_STATES, WEEKDAYS
from .clearing_period import FIGURES

_logger = logging.getLogger(__name__)

AMOUNT_PARTS = (
    ("amount_fixed", "total_fixed_cost"),
    ("amount_energy", "total_energy_cost"),
    ("amount_time", "total_time_cost"),
    ("amount_parking", "total_parking_cost"),
    ("amount_reservation", "total_reservation_cost"),
)
# the components of the untaxed amount
AMOUNT_FIELDS = tuple(fname for fname, _attr in AMOUNT_PARTS) + ("amount_adjustment",)
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
    _inherit = ["mail.thread", "clearing.cdr.ingest.mixin"]
    _order = "end_datetime desc, id desc"
    _rec_name = "ocpi_id"
    _rec_names_search = ["ocpi_id", "session_id", "token_uid"]
    _check_company_auto = True

    # ---------------------------------------------------------------- identity
    # indexed with the sender, as the idempotency checks look CDRs up (``init``)
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
    ocpi_version = fields.Char(
        "OCPI Version", readonly=True, default="2.2.1",
        help="The OCPI version of the CDR as received (2.2.1 or 2.3.0).")
    stated_taxes = fields.Json(
        readonly=True,
        help="The taxes of the stated total cost as sent (OCPI 2.3.0 TaxAmount objects).")
    tax_comparison = fields.Json(
        readonly=True,
        help="Each stated tax against ours: name, percentage, stated, ours, difference.")
    tax_comparison_html = fields.Html(
        "Taxes", compute="_compute_tax_comparison_html", sanitize=False)
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
    # ours alone (as the costs and margins): not for the counterparty's portal users
    resale_amount = fields.Monetary(
        "Resale (excl. VAT)", readonly=True, groups="emsp_clearing.group_clearing_user",
        help="eMSP hat: what our drivers pay for the session under the contract's resale "
        "grid, priced by the same engine (negative for a credit CDR); 0 without a resale "
        "grid.")
    cost_amount = fields.Monetary(
        "Cost", compute="_compute_margin", groups="emsp_clearing.group_clearing_user",
        help="CPO hat: what the session costs us (energy per kWh and fees per session of the "
        "contract's costs, else the company defaults). eMSP hat with a resale grid: what the "
        "CPO bills us for it (untaxed amount).")
    margin = fields.Monetary(
        compute="_compute_margin", groups="emsp_clearing.group_clearing_user",
        help="CPO hat: untaxed amount minus cost. eMSP hat with a resale grid: resale amount "
        "minus what the CPO bills us.")
    fleet_id = fields.Many2one(
        "clearing.fleet", string="Fleet Grid", readonly=True, index=True, ondelete="set null",
        help="The fleet whose grid priced the session; empty: the contract's grid.",
    )
    price_grid = fields.Char(
        compute="_compute_price_grid", compute_sudo=True,
        help="The grid that priced the session: the contract's, or a fleet's.")
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
        [("unmatched", "Unmatched"), ("priced", "Priced"), ("locked", "Locked"),
         ("excluded", "Excluded")],
        default="unmatched", required=True, readonly=True, index=True, tracking=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, index=True,
        default=lambda self: self.env.company,
    )
    # ---------------------------------------------------------------- clearing period, lock, disputes
    period_id = fields.Many2one(
        "clearing.period", string="Clearing Period", readonly=True, index=True,
        ondelete="restrict", copy=False,
    )
    period_state = fields.Selection(related="period_id.state", string="Period State")
    locked = fields.Boolean(
        readonly=True, copy=False,
        help="Set when the clearing period locks: the session is billable and can no "
        "longer be changed; corrections go through credit CDRs.",
    )
    is_late = fields.Boolean(
        "Late", readonly=True, copy=False,
        help="Received after the period of its end date was locked: billed in the next "
        "open period.",
    )
    carried_from_period_id = fields.Many2one(
        "clearing.period", string="Carried From", readonly=True, copy=False,
        help="Disputed at the lock of this period and carried to the next one.",
    )
    dispute_ids = fields.One2many("clearing.dispute", "cdr_id", string="Disputes", readonly=True)
    dispute_state = fields.Selection(
        CDR_DISPUTE_STATES, compute="_compute_dispute_state", store=True, index=True,
        precompute=True, string="Dispute",
    )
    dispute_credit = fields.Boolean(
        "Dispute Credit", readonly=True, copy=False,
        help="Credit CDR created by us to settle an accepted dispute.",
    )
    # Invoicing: the move that billed the session, the credit note that reversed it
    invoice_move_id = fields.Many2one(
        "account.move", string="Invoice", readonly=True, copy=False, index="btree_not_null",
        ondelete="restrict", help="The invoice, vendor bill or credit note that billed it.",
    )
    refund_move_id = fields.Many2one(
        "account.move", string="Credit Note", readonly=True, copy=False,
        index="btree_not_null", ondelete="restrict",
        help="The credit note that reversed this session.",
    )
    start_local = fields.Char("Start (local time)", compute="_compute_local_times")
    end_local = fields.Char("End (local time)", compute="_compute_local_times")
    duration_display = fields.Char("Duration", compute="_compute_local_times")

    def init(self):
        super().init()
        # One CDR per (company, sender, id), the sender compared case-insensitively as OCPI
        # compares CiStrings: a unique index (below), not a table constraint, which cannot
        # hold expressions.
        # the portal list of a period: WHERE period_id = x ORDER BY end_datetime DESC, id DESC
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS clearing_cdr_period_end_idx
                   ON clearing_cdr (period_id, end_datetime DESC, id DESC)"""
        )
        # the portal's "search in all": one trigram index over the identifiers people type
        # (session, CDR, EVSE, token). Needs PostgreSQL's pg_trgm; without it (no right to
        # create the extension) the search still works, by scanning the period.
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                self.env.cr.execute(SQL(
                    "CREATE INDEX IF NOT EXISTS clearing_cdr_identifiers_trgm_idx"
                    " ON clearing_cdr USING gin ((%s) gin_trgm_ops)", self._identifiers_sql()))
        except psycopg2.Error as error:
            _logger.info("clearing_cdr: no trigram index for the portal search (%s)",
                         str(error).strip())
        # credits waiting for their original: looked up by every ingestion batch (a sequential
        # scan of all CDRs otherwise); only unlinked credit CDRs are in this index
        tools.create_index(self.env.cr, "clearing_cdr_open_credit_ref_idx", self._table,
                           ["company_id", "credit_reference_id"],
                           where="credit AND credited_cdr_id IS NULL")
        # One CDR per (id, sender, company), the sender compared case-insensitively (OCPI
        # CiString), as every look-up of "was this CDR received already?" (push, pull, file)
        # compares it; the same index serves look-ups by id alone. It replaces the
        # case-sensitive table constraint and plain index of earlier versions.
        cr = self.env.cr
        cr.execute(SQL("ALTER TABLE %s DROP CONSTRAINT IF EXISTS clearing_cdr_ocpi_id_uniq",
                       SQL.identifier(self._table)))
        cr.execute(SQL("DROP INDEX IF EXISTS clearing_cdr_ocpi_key_ci_idx"))
        tools.create_unique_index(
            cr, "clearing_cdr_ocpi_key_ci_uniq", self._table,
            ["ocpi_id", "upper(country_code)", "upper(party_id)", "company_id"])

    # ------------------------------------------------------------------ computes
    def _compute_margin(self):
        """One query (``clearing.contract._session_costs_sql``) for the sessions of CPO-side
        contracts (revenue minus costs) and of eMSP-side contracts with a resale grid (resale
        amount minus what the CPO bills us); the others have no margin (0)."""
        ids = [cdr_id for cdr_id in self.ids if cdr_id]
        rows = {}
        if ids:
            self.env["clearing.contract"]._flush_for_costs()
            rows = {row[0]: row for row in self.env.execute_query(
                self.env["clearing.contract"]._session_costs_sql(SQL(
                    "cdr.id = ANY(%s) AND (contract.role = 'cpo' OR contract.has_resale_grid)",
                    ids)))}
        for cdr in self:
            row = rows.get(cdr.id)
            cost = cdr.currency_id.round(float(row[5])) if row else 0.0
            cdr.cost_amount = cost
            cdr.margin = float(row[4]) - cost if row else 0.0

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

    @api.depends("dispute_ids.state")
    def _compute_dispute_state(self):
        for cdr in self:
            disputes = cdr.dispute_ids.sorted("id")
            cdr.dispute_state = disputes[-1].state if disputes else "none"

    @api.depends("start_datetime", "end_datetime", "contract_id.tz")
    def _compute_local_times(self):
        for cdr in self:
            tz = pytz.timezone(cdr.contract_id.sudo().tz or "UTC")

            def local(value):
                if not value:
                    return False
                return pytz.utc.localize(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

            cdr.start_local = local(cdr.start_datetime)
            cdr.end_local = local(cdr.end_datetime)
            if cdr.start_datetime and cdr.end_datetime:
                minutes = int((cdr.end_datetime - cdr.start_datetime).total_seconds() // 60)
                cdr.duration_display = "%d:%02d" % divmod(minutes, 60)
            else:
                cdr.duration_display = False

    @api.depends("price_breakdown", "currency_id", "contract_id.tz")
    def _compute_price_breakdown_html(self):
        headers = (
            _("From (local time)"), _("To"), _("Dimension"), _("Volume"), _("Billed"),
            _("Unit Price"), _("VAT"), _("Excl. VAT"), _("Incl. VAT"), _("Tariff Element"),
        )
        keys = ("start", "end", "dimension", "volume", "billed", "unit_price", "vat",
                "excl_vat", "incl_vat", "element")
        head = Markup("").join(Markup("<th>%s</th>") % h for h in headers)
        for cdr in self:
            rows = cdr._breakdown_rows()
            if not rows:
                cdr.price_breakdown_html = False
                continue
            body = Markup("").join(
                Markup("<tr>%s</tr>")
                % Markup("").join(Markup("<td>%s</td>") % escape(row[k]) for k in keys)
                for row in rows
            )
            cdr.price_breakdown_html = Markup(
                '<table class="table table-sm o_clearing_breakdown">'
                "<thead><tr>%s</tr></thead><tbody>%s</tbody></table>"
            ) % (head, body)

    # ------------------------------------------------------------------ create, write, unlink
    @api.model_create_multi
    def create(self, vals_list):
        # the period is part of the INSERT (no second write per session when ingesting)
        assigned = self._assign_period_in_vals(vals_list)
        records = super().create(vals_list)
        records.filtered(lambda r: r.contract_id and not r.period_id).assign_period()
        if assigned:
            self._invalidate_period_figures()
        return records

    def write(self, vals):
        self._check_not_locked()
        res = super().write(vals)
        if "contract_id" in vals:
            self.assign_period()
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_except_locked(self):
        self._check_not_locked()

    def _check_not_locked(self):
        locked = self.filtered("locked")
        if locked:
            raise UserError(_(
                "CDR %s is locked: its clearing period is closed and it can no longer be "
                "changed. Settle any correction with a credit operation, which creates a "
                "new credit CDR.",
                locked[0].ocpi_id,
            ))

    # ------------------------------------------------------------------ ingestion
    # One CDR here (the ORM path); batches: ``ingest_ocpi_batch`` (clearing_cdr_ingest_mixin.py).
    @api.model
    def ingest_ocpi(self, data, company=None, tariff_cache=None):
        """Store, match and price one OCPI 2.2.1 CDR (``data``: the dict as received) for
        ``company`` (default: the current company); public entry point.

        Raises ValidationError (nothing stored) when the CDR is invalid or was already
        received. Returns the new clearing.cdr record. ``tariff_cache``: optional dict shared
        by calls that price with the same contracts (see ``_contract_tariff``).
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
            self._prepare_cdr_vals(parsed, data, company)
        ).with_context(mail_create_nolog=False)
        cdr._resolve_credit_links()
        cdr._match_and_price(tariff_cache=tariff_cache, parsed={cdr.id: parsed})
        return cdr

    @api.model
    def _ingest_ocpi_each(self, items, company=None):
        """``ingest_ocpi`` item by item, each in its savepoint: the ORM reference of the
        set-based ``ingest_ocpi_batch``, which must store the same (tests/test_ocpi_batch.py).
        Same result format as ``ingest_ocpi_batch``."""
        results = []
        tariff_cache = {}
        for index, data in enumerate(items):
            try:
                with self.env.cr.savepoint():
                    if not isinstance(data, dict):
                        raise ValidationError(
                            _("Invalid OCPI CDR: $: a CDR must be a JSON object.")
                        )
                    cdr = self.ingest_ocpi(data, company=company, tariff_cache=tariff_cache)
                results.append({"index": index, "record": cdr, "error": None})
            except (ValidationError, UserError) as error:
                self.env.invalidate_all()
                results.append({"index": index, "record": None, "error": str(error)})
        return results

    @api.depends("price_breakdown")
    @api.model
    def _parse_ocpi(self, data):
        """Validate ``data`` with the core, in the OCPI version of its form (2.2.1 or 2.3.0);
        ValidationError naming the JSON path."""
        try:
            return ocpi.parse_cdr(data, strict=True, version=ocpi.detect_cdr_version(data))
        except OcpiValidationError as error:
            raise ValidationError(_("Invalid OCPI CDR: %s", error)) from error

    @api.model
    def _prepare_cdr_vals(self, parsed, data, company, currency=None):
        """Hook: values of the new clearing.cdr for the parsed OCPI CDR ``parsed`` (input dict
        ``data``) of ``company``, before matching and pricing; both ingestion paths create
        from them. ``currency``: the res.currency of ``parsed.currency`` when the caller
        already has it (batch ingestion looks the codes of a whole batch up at once)."""
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
            "ocpi_version": ocpi.detect_cdr_version(data),
            # as sent (the JSON of total_cost.taxes)
            "stated_taxes": data["total_cost"].get("taxes") if total_cost.taxes is not None else False,
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

    @api.model
    def _existing_keys(self, company, keys):
        """The ``(COUNTRY, PARTY, id)`` keys of ``keys`` (``(country code, party id, id)``)
        already stored for ``company``, the sender upper-cased: compared case-insensitively
        (OCPI CiString), as the unique index compares it."""
        if not keys:
            return set()
        self.flush_model(["company_id", "country_code", "party_id", "ocpi_id"])
        keys = {(cc.upper(), party.upper(), oid) for cc, party, oid in keys}
        # by id only, the company checked here: see clearing.ingestion.log._existing_cdrs
        self.env.cr.execute(
            "SELECT upper(country_code), upper(party_id), ocpi_id, company_id FROM clearing_cdr "
            "WHERE ocpi_id = ANY(%s)", (list({k[2] for k in keys}),))
        return {row[:3] for row in self.env.cr.fetchall()
                if row[3] == company.id and row[:3] in keys}

    # ------------------------------------------------------------------ matching and pricing
    def action_reprice(self):
        """Button "Re-price" (clearing managers): ``reprice`` the selected CDRs that may
        still change (not locked, excluded or dispute credits)."""
        if not self.env.user.has_group("emsp_clearing.group_clearing_manager"):
            raise UserError(_("Only clearing managers can re-price CDRs."))
        cdrs = self._repriceable()
        if not cdrs:
            raise UserError(_("None of the selected CDRs can be re-priced."))
        return cdrs.reprice()

    def reprice(self):
        """Match these CDRs to their contract again and re-price them with its grid (unmatched
        ones get their volumes and no amounts); public entry point. Set-based; a locked CDR
        refuses the whole call (UserError), a CDR that cannot be priced too
        (ValidationError). Access rights are the caller's (``action_reprice`` checks the
        clearing manager group)."""
        self._match_and_price(tariff_cache={})
        return True

    def _match_and_price(self, tariff_cache=None, parsed=None):
        """(Re)attach the contract of each CDR and price the matched ones (set-based: see
        ``_match`` and ``_price``)."""
        self._match()
        matched = self.filtered(lambda c: c.match_state == "matched")
        # unpriced values depend on the CDR's volumes only: CDRs alike are written together
        groups = {}
        for cdr in self - matched:
            vals = cdr._prepare_empty_pricing_vals()
            groups.setdefault(tuple(sorted(vals.items())), []).append(cdr.id)
        for vals, ids in groups.items():
            self.browse(ids).write(dict(vals))
        matched._price(tariff_cache=tariff_cache, parsed=parsed)

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
                    energy += to_decimal(dimension.get("volume"))
                elif dimension.get("type") == "PARKING_TIME":
                    parking += to_decimal(dimension.get("volume"))
        seconds = (self.end_datetime - self.start_datetime).total_seconds()
        sign = -1 if self.credit else 1
        return sign * float(energy), sign * seconds / 3600.0, sign * float(parking)

    def _prepare_empty_pricing_vals(self):
        """Hook: stored pricing values of a CDR that is not priced (no contract)."""
        self.ensure_one()
        vals = {fname: 0.0 for fname, _attr in AMOUNT_PARTS}
        energy, hours, parking = self._volumes()
        vals.update(
            amount_adjustment=0.0, amount_untaxed=0.0, amount_tax=0.0, amount_total=0.0,
            energy_kwh=energy, duration_hours=hours, parking_hours=parking,
            price_breakdown=False, applied_tariff=False, price_difference=0.0,
            price_difference_incl=0.0, price_mismatch=False, priced_date=False,
            tax_comparison=False,
            state="unmatched", fleet_id=False, resale_amount=0.0,
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

    @api.model
    def _resale_tariff(self, contract, tariff_cache):
        """``ocpi.Tariff`` of the resale grid of ``contract`` (eMSP hat), None when it has
        none or is a CPO contract: parsed once per contract version within ``tariff_cache``
        (a dict shared by a batch) and across batches (``_resale_tariff_memo``), as
        ``_contract_tariff``."""
        if not contract.has_resale_grid:  # set only on eMSP-side contracts
            return None
        key = ("resale", contract.id, str(contract.write_date))
        if key not in tariff_cache:
            tariff_cache[key] = self._resale_tariff_memo(contract.id, str(contract.write_date))
        return tariff_cache[key]

    @api.model
    @tools.ormcache("contract_id", "write_date")
    def _resale_tariff_memo(self, contract_id, write_date):
        """``_resale_tariff`` across requests and batches; the price lines clear the memo
        when they change (clearing_ingest_cache.py)."""
        contract = self.env["clearing.contract"].sudo().browse(contract_id)
        tariff_dict = contract.to_ocpi_resale_tariff()
        if not tariff_dict:
            return None
        try:
            return ocpi.parse_tariff(tariff_dict, strict=True)
        except OcpiValidationError as error:
            raise ValidationError(
                _("Contract %(contract)s: invalid resale grid: %(error)s",
                  contract=contract.name, error=error)
            ) from error

    @api.model
    def _prepare_resale_vals(self, ocpi_cdr, contract, currency_code, credit, tariff_cache):
        """Hook: the resale values of a session of ``contract`` (its parsed OCPI CDR
        ``ocpi_cdr``): ``resale_amount``, what our drivers pay under the contract's resale
        grid, priced by the engine and rounded as the untaxed amount is
        (``_priced_amounts``: negative for a credit CDR); 0 without a resale grid. Both
        ingestion paths and ``reprice`` store them; ``clearing.contract._reprice_resale``
        computes the same set-based."""
        tariff = self._resale_tariff(contract, tariff_cache)
        if tariff is None:
            return {"resale_amount": 0.0}
        result = self._price_ocpi(ocpi_cdr, tariff, contract)
        amounts = self._priced_amounts(result, currency_code, credit)
        return {"resale_amount": float(amounts["amount_untaxed"])}

    @api.model
    def _pricing_grid(self, contract, token_uid, token_contract_id, end_datetime,
                      tariff_cache):
        """``(fleet, tariff_dict, ocpi.Tariff)``: the grid that prices a session of
        ``contract`` with this token ending at ``end_datetime`` (naive UTC) -- the grid of the
        first fleet of the contract the token belongs to on the local end day, else the
        contract's (empty fleet). The one place both ingestion paths and ``reprice`` choose
        it; the fleets and their tariffs are read once per ``tariff_cache`` (a batch)."""
        key = ("fleets", contract.id)
        if key not in tariff_cache:
            fleets = self.env["clearing.fleet"].sudo().search(
                [("contract_id", "=", contract.id)])
            tariff_cache[key] = [fleet._matcher() for fleet in fleets]
        matchers = tariff_cache[key]
        if matchers:
            day = pytz.utc.localize(end_datetime).astimezone(
                pytz.timezone(contract.tz or "UTC")).date()
            fleet_model = self.env["clearing.fleet"]
            for matcher in matchers:
                if fleet_model._fits(matcher, token_uid, token_contract_id, day):
                    fleet = matcher[0]
                    fleet_key = ("fleet", fleet.id)
                    if fleet_key not in tariff_cache:
                        tariff_cache[fleet_key] = self._parse_grid(fleet)
                    return (fleet, *tariff_cache[fleet_key])
        return (self.env["clearing.fleet"], *self._contract_tariff(contract, tariff_cache))

    @api.model
    def _parse_grid(self, grid):
        """``(tariff_dict, ocpi.Tariff)`` of a contract's or a fleet's grid (``grid``: any
        record with ``to_ocpi_tariff``)."""
        tariff_dict = grid.to_ocpi_tariff()
        try:
            return tariff_dict, ocpi.parse_tariff(tariff_dict, strict=True)
        except OcpiValidationError as error:
            raise ValidationError(
                _("%(grid)s: invalid price grid: %(error)s",
                  grid=grid.display_name, error=error)
            ) from error

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
        fleet, tariff_dict, tariff = self._pricing_grid(
            contract, self.token_uid, self.token_contract_id, self.end_datetime, tariff_cache)
        ocpi_cdr = parsed.get(self.id) or self._parse_ocpi(self.raw_json)
        vals = self._prepare_pricing_vals(self._price_ocpi(ocpi_cdr, tariff, contract),
                                          tariff_dict)
        vals["fleet_id"] = fleet.id
        vals.update(self._prepare_resale_vals(ocpi_cdr, contract, self.currency_id.name,
                                              self.credit, tariff_cache))
        return vals

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

    def _prepare_pricing_vals(self, result, tariff_dict):
        """Hook: stored pricing values of the matched CDR for a pricing.PriceResult (amounts
        rounded to the CDR currency) under the OCPI tariff ``tariff_dict`` of its contract.
        Both ingestion paths and ``reprice`` write them."""
        self.ensure_one()
        sign = Decimal(-1) if self.credit else Decimal(1)
        code = self.currency_id.name

        def money(value):
            return currencies.round_money(sign * Decimal(value or 0), code)

        amounts = self._priced_amounts(result, code, self.credit)
        vals = {fname: float(amounts[fname]) for fname in AMOUNT_FIELDS}
        untaxed, total = amounts["amount_untaxed"], amounts["amount_total"]
        # Compare with the exact stated values (the Monetary fields are rounded), in either
        # OCPI version (2.3.0: before_taxes and the tax amounts).
        stated = ocpi.read_price((self.raw_json or {}).get("total_cost"))
        stated_excl = stated.excl_vat if stated is not None else Decimal(0)
        difference = stated_excl - untaxed
        difference_incl = (stated.incl_vat - total if stated is not None
                           and stated.incl_vat is not None else Decimal(0))
        tolerance = to_decimal(self.contract_id.price_tolerance)
        comparison = self._compare_taxes(
            stated.taxes if stated is not None else None,
            [(t.percentage, money(t.amount)) for t in result.tax_amounts()], tolerance)
        vals.update(
            amount_untaxed=float(untaxed),
            amount_tax=float(amounts["amount_tax"]),
            amount_total=float(total),
            energy_kwh=float(sign * Decimal(result.total_energy or 0)),
            duration_hours=float(sign * Decimal(result.total_time or 0)),
            parking_hours=float(sign * Decimal(result.total_parking_time or 0)),
            price_breakdown=[self._priced_line_json(line) for line in result.lines],
            applied_tariff=tariff_dict,
            price_difference=float(difference),
            price_difference_incl=float(difference_incl),
            tax_comparison=comparison or False,
            price_mismatch=abs(difference) > tolerance
            or any(row["mismatch"] for row in comparison or ()),
            priced_date=fields.Datetime.now(),
            state="priced",
        )
        return vals

    @api.model
    def _compare_taxes(self, stated_taxes, ours, tolerance):
        """Rows comparing the sender's taxes (``stated_taxes``: ocpi.TaxAmount, as sent; None
        when the CDR states none, OCPI 2.2.1) with ours (``ours``: ``[(rate, amount)]``
        rounded, by VAT rate), by tax: a stated tax with a percentage meets our tax of that
        rate; without one, our only tax when there is one. Our taxes no stated tax met are
        rows stated 0. ``mismatch``: the difference exceeds ``tolerance``."""
        if stated_taxes is None:
            return None
        ours = list(ours)
        used = set()
        rows = []

        def row(name, rate, stated, our):
            difference = stated - our
            return {"name": name, "percentage": _json_decimal(rate),
                    "stated": _json_decimal(stated), "ours": _json_decimal(our),
                    "difference": _json_decimal(difference),
                    "mismatch": abs(difference) > tolerance}

        for tax in stated_taxes:
            match = None
            for k, (rate, _amount) in enumerate(ours):
                if k not in used and (
                        (tax.percentage is not None and rate == tax.percentage)
                        or (tax.percentage is None and len(stated_taxes) == 1 and len(ours) == 1)):
                    match = k
                    break
            if match is None:
                rows.append(row(tax.name, tax.percentage, tax.amount, Decimal(0)))
            else:
                used.add(match)
                rows.append(row(tax.name, ours[match][0] if tax.percentage is None
                                else tax.percentage, tax.amount, ours[match][1]))
        for k, (rate, amount) in enumerate(ours):
            if k not in used:
                rows.append(row(_("VAT"), rate, Decimal(0), amount))
        return rows

    @api.depends("fleet_id.name", "contract_id")
    def _compute_price_grid(self):
        """"Contract grid" or "Fleet grid <name>" (invoice lines, XLSX and portal say the
        same); empty for a session no contract priced."""
        for cdr in self:
            cdr.price_grid = (_("Fleet grid %s", cdr.fleet_id.name) if cdr.fleet_id
                              else _("Contract grid") if cdr.contract_id else False)

    @api.depends("tax_comparison", "currency_id")
    def _compute_tax_comparison_html(self):
        for cdr in self:
            rows = cdr.tax_comparison or []
            if not rows:
                cdr.tax_comparison_html = False
                continue
            head = Markup("").join(Markup("<th class='text-end'>%s</th>") % h for h in (
                _("Percentage"), _("Stated"), _("Ours"), _("Difference")))
            body = Markup("").join(
                Markup("<tr%s><td>%s</td><td class='text-end'>%s</td><td class='text-end'>%s</td>"
                       "<td class='text-end'>%s</td><td class='text-end'>%s</td></tr>") % (
                    Markup(" class='text-danger'") if r.get("mismatch") else Markup(""),
                    r.get("name") or "",
                    display.format_number(r.get("percentage")) if r.get("percentage") is not None else "",
                    display.format_number(r.get("stated")), display.format_number(r.get("ours")),
                    display.format_number(r.get("difference")))
                for r in rows)
            cdr.tax_comparison_html = Markup(
                "<table class='table table-sm o_clearing_taxes'><thead><tr><th>%s</th>%s</tr>"
                "</thead><tbody>%s</tbody></table>") % (_("Tax"), head, body)

    @api.model
    def _priced_amounts(self, result, currency_code, credit=False):
        """The stored amounts of a pricing.PriceResult, exact ``Decimal`` rounded to the
        currency: each component (``AMOUNT_PARTS``) and the min/max adjustment rounded, the
        untaxed amount their sum, the tax rounded once, the total their sum; negative for a
        credit. ``_prepare_pricing_vals`` stores them; the what-if simulation compares them."""
        sign = Decimal(-1) if credit else Decimal(1)

        def money(value):
            return currencies.round_money(sign * Decimal(value or 0), currency_code)

        amounts = {}
        for fname, attr in AMOUNT_PARTS:
            price = getattr(result, attr)
            amounts[fname] = money(price.excl_vat) if price is not None else Decimal(0)
        adjustment = result.min_max_adjustment
        amounts["amount_adjustment"] = (
            money(adjustment.excl_vat) if adjustment is not None else Decimal(0))
        untaxed = sum((amounts[fname] for fname in AMOUNT_FIELDS), Decimal(0))
        tax = Decimal(0)
        total_cost = result.total_cost
        if total_cost.incl_vat is not None:
            tax = money(Decimal(total_cost.incl_vat) - Decimal(total_cost.excl_vat))
        amounts.update(amount_untaxed=untaxed, amount_tax=tax, amount_total=untaxed + tax)
        return amounts

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
        """CDRs that may still be re-priced: unmatched or priced (later states lock them),
        not our dispute credits."""
        return self.filtered(
            lambda c: c.state in ("unmatched", "priced") and not c.dispute_credit)

    @api.model
    def _contract_movable_domain(self):
        """CDRs that may still change contract: when the rule of theirs changes and they no
        longer fit it, they are matched again (``clearing.contract.write``); a CDR outside this
        domain refuses such a change. Later states, locked (billable), disputed (the
        counterparty disputed it under its contract) and our dispute credits keep their
        contract."""
        return [("state", "in", ("unmatched", "priced")), ("locked", "=", False),
                ("dispute_credit", "=", False), ("dispute_state", "in", ("none", False))]

    # ------------------------------------------------------------------ clearing period
    @api.model
    def _period_target(self, contract, end_datetime, cache):
        """``(period id, late)`` for a session of ``contract`` ending at ``end_datetime``
        (naive UTC); ``cache`` memoises per (contract, local day), and per period found: the
        other days of a period already looked up are answered without a query (sessions of
        past periods, whose target is found by stepping period by period, included)."""
        today_key = ("today", contract.id)
        if today_key not in cache:
            cache[today_key] = self.env["clearing.period"]._contract_today(contract)
        tz = pytz.timezone(contract.tz or "UTC")
        day = pytz.utc.localize(end_datetime).astimezone(tz).date()
        key = (contract.id, day)
        if key not in cache:
            # (first day, last day, target) of the periods of this contract looked up so far
            spans = cache.setdefault(("spans", contract.id), [])
            for first, last, target in spans:
                if first <= day <= last:
                    break
            else:
                Period = self.env["clearing.period"]
                holding = Period._get_or_create(contract, day)
                period, late = Period._target_for(contract, day, today=cache[today_key],
                                                  period=holding)
                target = (period.id, late)
                spans.append((holding.date_start, holding.date_end, target))
            cache[key] = target
        return cache[key]

    @api.model
    def _prepare_period_vals(self, contract, end_datetime, cache):
        """Hook: clearing period values of a session of ``contract`` ending at ``end_datetime``
        (naive UTC): the period of its (local) end date or -- received after that period
        locked -- the next open one, flagged late. ``cache``: a dict shared by the sessions of
        one call (see ``_period_target``). Every path that sets a session's period (``create``,
        ``assign_period``, batch ingestion) takes these values."""
        period_id, late = self._period_target(contract, end_datetime, cache)
        return {"period_id": period_id, "is_late": late}

    @api.model
    def _assign_period_in_vals(self, vals_list):
        """Add the period values to the values of new sessions that have a contract and an end
        and no period yet (the period is part of the INSERT). True when any was added."""
        contracts = self.env["clearing.contract"]
        cache = {}
        assigned = False
        for vals in vals_list:
            if vals.get("contract_id") and vals.get("end_datetime") and "period_id" not in vals:
                vals.update(self._prepare_period_vals(
                    contracts.browse(vals["contract_id"]),
                    fields.Datetime.to_datetime(vals["end_datetime"]), cache))
                assigned = True
        return assigned

    def assign_period(self):
        """Put each session that is not locked in the period of its (local) end date, or --
        received after that period locked -- in the next open period, flagged late; a session
        without contract leaves its period. Public entry point; ``create`` and a change of
        contract call it. Sessions given the same values are written together."""
        groups = {}
        cache = {}
        for cdr in self:
            if cdr.locked:
                continue
            contract = cdr.contract_id
            if not contract:
                if cdr.period_id:
                    groups.setdefault((("is_late", False), ("period_id", False)), []).append(
                        cdr.id)
                continue
            # one lookup per (contract, local day), not per CDR (batch ingestion)
            vals = self._prepare_period_vals(contract, cdr.end_datetime, cache)
            if all(cdr._fields[name].convert_to_write(cdr[name], cdr) == value
                   for name, value in vals.items()):
                continue
            groups.setdefault(tuple(sorted(vals.items())), []).append(cdr.id)
        for vals, ids in groups.items():
            super(ClearingCdr, self.browse(ids)).write(dict(vals))
        if groups:
            self._invalidate_period_figures()
        return True

    def _local_end_day(self):
        self.ensure_one()
        tz = pytz.timezone(self.contract_id.tz or "UTC")
        return pytz.utc.localize(self.end_datetime).astimezone(tz).date()

    def _invalidate_period_figures(self):
        self.env["clearing.period"].invalidate_model(list(FIGURES))

    @api.model
    def _identifiers_sql(self, alias="clearing_cdr"):
        """Lower-cased session, CDR, EVSE and token ids of a row, as one text."""
        return SQL(
            "lower(coalesce(%s, '') || ' ' || coalesce(%s, '') || ' ' || coalesce(%s, '')"
            " || ' ' || coalesce(%s, ''))",
            *(SQL.identifier(alias, f) for f in ("session_id", "ocpi_id", "evse_id", "token_uid")),
        )

    @api.model
    def _identifiers_condition(self, search, alias="clearing_cdr"):
        """SQL condition on the row ``alias``: its session, CDR, EVSE or token id contains
        ``search`` (case-insensitive), served by the trigram index. A condition on the row
        itself (not ``id IN (subquery)``): the planner then weighs the trigram index against
        the period's own index, with or without fresh statistics."""
        escaped = search.lower()
        for char in ("\\", "%", "_"):  # LIKE wildcards, literally
            escaped = escaped.replace(char, "\\" + char)
        return SQL("%s LIKE %s", self._identifiers_sql(alias), "%" + escaped + "%")

    # ------------------------------------------------------------------ dispute credits

    def _create_dispute_credit(self, amount_untaxed=None):
        """New credit CDR settling this session: the full amounts (``amount_untaxed`` None)
        or ``amount_untaxed`` excl. VAT (tax at the contract rate). It lands in the session's
        period while that one is not locked, else in the next open period (late)."""
        self.ensure_one()
        code = self.currency_id.name
        count = self.with_context(active_test=False).search_count(
            [("credited_cdr_id", "=", self.id)])
        vals = {
            "ocpi_id": "%s-CR%d" % (self.ocpi_id, count + 1),
            "country_code": self.country_code,
            "party_id": self.party_id,
            "session_id": self.session_id,
            "token_uid": self.token_uid,
            "token_type": self.token_type,
            "token_contract_id": self.token_contract_id,
            "token_country_code": self.token_country_code,
            "token_party_id": self.token_party_id,
            "location_id": self.location_id,
            "location_name": self.location_name,
            "evse_uid": self.evse_uid,
            "evse_id": self.evse_id,
            "start_datetime": self.start_datetime,
            "end_datetime": self.end_datetime,
            "currency_id": self.currency_id.id,
            "company_id": self.company_id.id,
            "credit": True,
            "credit_reference_id": self.ocpi_id,
            "credited_cdr_id": self.id,
            "dispute_credit": True,
            "applied_tariff": self.applied_tariff,
            "fleet_id": self.fleet_id.id,
            "raw_json": {},
        }
        if amount_untaxed is None:
            for fname in ("amount_fixed", "amount_energy", "amount_time", "amount_parking",
                          "amount_reservation", "amount_adjustment", "amount_untaxed",
                          "amount_tax", "amount_total", "energy_kwh", "duration_hours",
                          "parking_hours", "resale_amount"):
                vals[fname] = -self[fname]
        else:
            rate = self.contract_id.vat_rate or 0.0
            untaxed = currencies.round_money(-to_decimal(amount_untaxed), code)
            tax = currencies.round_money(untaxed * to_decimal(rate) / 100, code)
            vals.update(amount_adjustment=float(untaxed), amount_untaxed=float(untaxed),
                        amount_tax=float(tax), amount_total=float(untaxed + tax))
        credit = self.sudo().create(vals)
        # matched and priced as the original; written as a fresh record, so not locked
        super(ClearingCdr, credit).write({
            "contract_id": self.contract_id.id,
            "partner_id": self.partner_id.id,
            "match_state": "matched",
            "state": "priced",
            "priced_date": fields.Datetime.now(),
        })
        credit.assign_period()
        return credit.sudo(False)

    def _exclude_from_billing(self):
        """Invalidate sessions that are not locked yet (accepted dispute)."""
        self._check_not_locked()
        super(ClearingCdr, self).write({"state": "excluded"})
        self._invalidate_period_figures()

    # ------------------------------------------------------------------ display
    # How the applied tariff and the price breakdown read (backend form, portal); the
    # number, duration and time formats are tools/display.py.
    def _dimension_labels(self):
        return {
            "ENERGY": _("Energy"),
            "FLAT": _("Session fee"),
            "TIME": _("Charging time"),
            "PARKING_TIME": _("Parking time"),
            "RESERVATION": _("Reservation"),
        }

    def _volume_text(self, dimension, value):
        if dimension == "ENERGY":
            return "%s kWh" % display.format_number(value, 3)
        if dimension == "FLAT":
            return display.format_number(value, 0)
        return display.format_hours(value)

    def _unit_price_text(self, dimension, price):
        symbol = self.currency_id.symbol or self.currency_id.name or ""
        unit = {"ENERGY": _("/kWh"), "FLAT": _("/session")}.get(dimension, _("/h"))
        return "%s %s%s" % (display.format_number(price), symbol, unit)

    def _breakdown_rows(self):
        """The priced lines, formatted for display."""
        self.ensure_one()
        labels = self._dimension_labels()
        # the contract's time zone (portal users may read their sessions, not the contract)
        tz = pytz.timezone(self.sudo().contract_id.tz or "UTC")
        rows = []
        for line in self.price_breakdown or []:
            dimension = line.get("dimension", "")
            vat = line.get("vat")
            rows.append({
                "start": display.local_text(line.get("period_start"), tz),
                "end": display.local_text(line.get("period_end"), tz),
                "dimension": labels.get(dimension, dimension),
                "volume": self._volume_text(dimension, line.get("volume")),
                "billed": self._volume_text(dimension, line.get("billed_volume")),
                "unit_price": self._unit_price_text(dimension, line.get("unit_price")),
                "vat": ("%s %%" % display.format_number(vat, 2)) if vat is not None else "",
                "excl_vat": display.format_number(line.get("excl_vat")),
                "incl_vat": display.format_number(line.get("incl_vat")),
                "element": ("#%s" % (line["element_index"] + 1))
                if line.get("element_index") is not None else "",
            })
        return rows

    def _restriction_text(self, restrictions):
        """OCPI TariffRestrictions in words (the snapshot of the applied tariff)."""
        r = restrictions or {}
        parts = []
        if r.get("start_time") or r.get("end_time"):
            parts.append("%s–%s" % (r.get("start_time") or "00:00", r.get("end_time") or "24:00"))
        if r.get("day_of_week"):
            names = {
                "MONDAY": _("Mon"), "TUESDAY": _("Tue"), "WEDNESDAY": _("Wed"),
                "THURSDAY": _("Thu"), "FRIDAY": _("Fri"), "SATURDAY": _("Sat"),
                "SUNDAY": _("Sun"),
            }
            days = sorted(r["day_of_week"],
                          key=lambda d: WEEKDAYS.index(d) if d in WEEKDAYS else 9)
            parts.append("/".join(names.get(d, d) for d in days))
        if r.get("start_date"):
            parts.append(_("from %s", r["start_date"]))
        if r.get("end_date"):
            parts.append(_("before %s", r["end_date"]))
        if r.get("min_kwh") is not None:
            parts.append(_("from %s kWh", display.format_number(r["min_kwh"], 3)))
        if r.get("max_kwh") is not None:
            parts.append(_("below %s kWh", display.format_number(r["max_kwh"], 3)))
        if r.get("min_duration") is not None:
            parts.append(_("after %s", display.format_hours(Decimal(r["min_duration"]) / 3600)))
        if r.get("max_duration") is not None:
            parts.append(_("before %s", display.format_hours(Decimal(r["max_duration"]) / 3600)))
        if r.get("min_power") is not None:
            parts.append(_("from %s kW", display.format_number(r["min_power"], 2)))
        if r.get("max_power") is not None:
            parts.append(_("below %s kW", display.format_number(r["max_power"], 2)))
        if r.get("min_current") is not None:
            parts.append(_("from %s A", display.format_number(r["min_current"], 2)))
        if r.get("max_current") is not None:
            parts.append(_("below %s A", display.format_number(r["max_current"], 2)))
        if r.get("reservation"):
            parts.append(_("reservation"))
        return ", ".join(parts) or _("always")

    def _tariff_rows(self):
        """The applied tariff's components, formatted for display."""
        self.ensure_one()
        labels = self._dimension_labels()
        rows = []
        for element in (self.applied_tariff or {}).get("elements") or []:
            when = self._restriction_text(element.get("restrictions"))
            for component in element.get("price_components") or []:
                dimension = component.get("type", "")
                step = component.get("step_size")
                if not step or dimension == "FLAT":
                    step_text = ""
                elif dimension == "ENERGY":
                    step_text = "%s Wh" % step
                else:
                    step_text = "%s s" % step
                rows.append({
                    "dimension": labels.get(dimension, dimension),
                    "price": self._unit_price_text(dimension, component.get("price")),
                    "step": step_text,
                    "when": when,
                })
        return rows

    # ------------------------------------------------------------------ portal
    TOTAL_FIELDS = ("energy_kwh", "amount_untaxed", "amount_tax", "amount_total")

    @api.model
    def _portal_page(self, domain, order, limit, offset, narrow=False, identifiers=None):
        """One page of sessions with the count and billable totals of all the matching ones.

        Record rules apply. A page costs at most two statements whatever the number of
        sessions: an aggregate (count + sums, excluded sessions left out of the sums) and the
        page itself (served by the (period_id, end_datetime) index in the default order).
        With ``narrow`` (a search or filter that keeps few rows) both come from a single scan
        with window aggregates. ``identifiers``: a text the session, CDR, EVSE or token id must
        contain (``_identifiers_condition``). Returns ``(records, count, totals)``.
        """
        self.flush_model()
        table = self._table

        def search_query(**kwargs):
            query = self._search(domain, **kwargs)
            if identifiers:
                query.add_where(self._identifiers_condition(identifiers, table))
            return query

        def sums(window):
            over = SQL(" OVER ()") if window else SQL()
            return [
                SQL("coalesce(sum(CASE WHEN %s != 'excluded' THEN %s END)%s, 0)",
                    SQL.identifier(table, "state"), SQL.identifier(table, fname), over)
                for fname in self.TOTAL_FIELDS
            ]

        if narrow:
            query = search_query(offset=offset, limit=limit, order=order)
            rows = self.env.execute_query(query.select(
                SQL.identifier(table, "id"), SQL("count(*) OVER ()"), *sums(True)))
            if rows:
                totals = dict(zip(self.TOTAL_FIELDS, (float(v) for v in rows[0][2:])))
                return self.browse([row[0] for row in rows]), rows[0][1], totals
        query = search_query()
        [row] = self.env.execute_query(query.select(SQL("count(*)"), *sums(False)))
        totals = dict(zip(self.TOTAL_FIELDS, (float(v) for v in row[1:])))
        records = self.browse(
            search_query(order=order, limit=limit, offset=offset)) if row[0] else self
        return records, row[0], totals

    def _portal_row(self):
        """Plain dict of one session for the XLSX breakdown."""
        self.ensure_one()
        tariff = self.applied_tariff or {}
        tz = pytz.timezone(self.contract_id.sudo().tz or "UTC")
        end = pytz.utc.localize(self.end_datetime).astimezone(tz).replace(tzinfo=None)
        dims = self.amount_energy + self.amount_time + self.amount_parking + self.amount_fixed
        return {
            "date": end,
            "evse": self.evse_id or self.evse_uid or "",
            "session": self.session_id or "",
            "cdr": self.ocpi_id,
            "kwh": self.energy_kwh,
            "duration_hours": self.duration_hours,
            "tariff": tariff.get("id") or "",
            "amount_energy": self.amount_energy,
            "amount_time": self.amount_time,
            "amount_parking": self.amount_parking,
            "amount_fixed": self.amount_fixed,
            "amount_other": round(self.amount_untaxed - dims, 6),
            "amount_untaxed": self.amount_untaxed,
            "amount_tax": self.amount_tax,
            "amount_total": self.amount_total,
        }

    # ------------------------------------------------------------------ demo data
    @api.model
    def _demo_generate_cdrs(self):
        """Demo data hook (demo/clearing_demo.xml): the generator is tools/demo.py."""
        demo.generate_cdrs(self.env)
        return True
