import re

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

COUNTRY_CODE_RE = re.compile(r"^[A-Z]{2}$")
PARTY_ID_RE = re.compile(r"^[A-Z0-9]{3}$")
IDENTITY_FIELDS = ("ocpi_country_code", "ocpi_party_id")
# Context key: (partner id, country code, party id) of the identity changes whose contracts the
# running partner write re-checks already (the commercial sync writes them again on contacts).
HANDLED_IDENTITIES = "clearing_ocpi_identities_handled"
# Context key: an identity written with it leaves every CDR where it is (no check, no re-match);
# honoured in superuser environments only, for fixtures and data fixes that set an identity
# whatever the CDRs say (the tests' own identities over the demo data: tests/common.py).
KEEP_CDRS = "clearing_identity_keep_cdrs"


class ResPartner(models.Model):
    _inherit = "res.partner"

    ocpi_country_code = fields.Char(
        string="OCPI Country Code",
        size=2,
        index=True,
        help="ISO 3166-1 alpha-2 country code of the party, as used in OCPI "
        "(e.g. FR).",
    )
    ocpi_party_id = fields.Char(
        string="OCPI Party ID",
        size=3,
        index=True,
        help="Three-character party identifier (ISO 15118 / eMI3), as used in "
        "OCPI (e.g. ABC).",
    )
    ocpi_identity = fields.Char(
        string="OCPI Identity",
        compute="_compute_ocpi_identity",
        help="Country code and party id, e.g. FR*ABC.",
    )
    ocpi_is_cpo = fields.Boolean(
        string="Is a CPO", help="The party operates charge points (Charge Point Operator)."
    )
    ocpi_is_emsp = fields.Boolean(
        string="Is an eMSP",
        help="The party issues charging tokens (e-Mobility Service Provider).",
    )
    clearing_billing_contact_ids = fields.Many2many(
        "res.partner",
        "res_partner_clearing_billing_contact_rel",
        "partner_id",
        "contact_id",
        string="Clearing Billing Contacts",
        help="Contacts that receive the clearing invoices and notifications.",
    )
    clearing_contract_ids = fields.One2many(
        "clearing.contract", "partner_id", string="Clearing Contracts"
    )
    clearing_contract_count = fields.Integer(
        compute="_compute_clearing_contract_count", string="Clearing Contract Count"
    )
    clearing_position_net = fields.Monetary(
        "Net Position", compute="_compute_clearing_position",
        currency_field="clearing_position_currency_id",
        help="What the partner owes us minus what we owe them, in the current company's "
        "currency (clearing.partner.position).")
    clearing_position_currency_id = fields.Many2one(
        "res.currency", compute="_compute_clearing_position")
    clearing_position_count = fields.Integer(compute="_compute_clearing_position")

    @api.model
    def _commercial_fields(self):
        return super()._commercial_fields() + [
            "ocpi_country_code",
            "ocpi_party_id",
            "ocpi_is_cpo",
            "ocpi_is_emsp",
        ]

    @api.depends("ocpi_country_code", "ocpi_party_id")
    def _compute_ocpi_identity(self):
        for partner in self:
            if partner.ocpi_country_code and partner.ocpi_party_id:
                partner.ocpi_identity = "%s*%s" % (
                    partner.ocpi_country_code,
                    partner.ocpi_party_id,
                )
            else:
                partner.ocpi_identity = False

    def _compute_clearing_contract_count(self):
        groups = self.env["clearing.contract"]._read_group(
            [("partner_id", "in", self.commercial_partner_id.ids)],
            ["partner_id"],
            ["__count"],
        )
        counts = {partner.id: count for partner, count in groups}
        for partner in self:
            partner.clearing_contract_count = counts.get(
                partner.commercial_partner_id.id, 0
            )

    def _compute_clearing_position(self):
        """One aggregate of the net positions of the commercial partners in this company."""
        company = self.env.company
        groups = {
            partner.id: (count, net) for partner, count, net in
            self.env["clearing.partner.position"].sudo()._read_group(
                [("partner_id", "in", self.commercial_partner_id.ids),
                 ("company_id", "=", company.id)],
                ["partner_id"], ["__count", "net_company:sum"])
        } if self.commercial_partner_id.ids else {}
        for partner in self:
            count, net = groups.get(partner.commercial_partner_id.id, (0, 0.0))
            partner.clearing_position_count = count
            partner.clearing_position_net = net
            partner.clearing_position_currency_id = company.currency_id

    def action_view_clearing_position(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_partner_position")
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        return action

    @api.model
    def _normalize_ocpi_vals(self, vals):
        for fname in ("ocpi_country_code", "ocpi_party_id"):
            if vals.get(fname):
                vals[fname] = vals[fname].strip().upper()
        return vals

    # what _find_by_ocpi_identity (and so CDR matching) reads, beside the identity itself
    _OCPI_LOOKUP_FIELDS = frozenset({"parent_id", "company_id", "active", "is_company"})

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._normalize_ocpi_vals(vals)
        partners = super().create(vals_list)
        if any(vals.get("ocpi_country_code") or vals.get("ocpi_party_id") for vals in vals_list):
            self.env.registry.clear_cache()  # CDR ingestion memo (clearing_ingest_cache.py)
        return partners

    def write(self, vals):
        self._normalize_ocpi_vals(vals)
        had_identity = "ocpi_country_code" in vals or "ocpi_party_id" in vals or (
            not self._OCPI_LOOKUP_FIELDS.isdisjoint(vals)
            and any(p.ocpi_country_code for p in self))
        if self.env.su and self.env.context.get(KEEP_CDRS):
            pending = {}
        else:
            pending = self._ocpi_pending_identities(vals)
        partners = self
        if pending:
            # the contracts whose rule changes and the CDRs leaving them, found (and refused
            # when one of them can no longer change contract) before anything is written
            leaving = self.env["clearing.contract"]._identity_change_prepare(pending)
            handled = [tuple(item) for item in self.env.context.get(HANDLED_IDENTITIES) or ()]
            handled += [(pid, *identity) for pid, identity in pending.items()]
            partners = self.with_context(**{HANDLED_IDENTITIES: tuple(handled)})
        res = super(ResPartner, partners).write(vals)
        if had_identity:
            self.env.registry.clear_cache()  # CDR ingestion memo (clearing_ingest_cache.py)
        if pending:
            self.env["clearing.contract"]._identity_change_apply(leaving, pending)
        return res

    def _ocpi_pending_identities(self, vals):
        """``{partner id: (country code, party id)}``: the OCPI identities that writing ``vals``
        on ``self`` changes, with the contacts to which the write passes them on (a commercial
        entity's written commercial fields go to its non-company contacts, as in
        ``_commercial_sync_to_children``); unchanged identities and those that an enclosing
        write handles already left out.

        A write that also changes ``parent_id`` or ``is_company`` syncs the contacts through
        nested writes, each handling its own identity changes. Empty when an identity is
        invalid: ``_check_ocpi_identity`` refuses the write."""
        if not any(fname in vals for fname in IDENTITY_FIELDS):
            return {}
        partners = self.sudo()  # as the commercial sync, which reads and writes in sudo
        if "parent_id" not in vals and "is_company" not in vals:
            level = partners.filtered(lambda p: p.commercial_partner_id == p)
            while level:
                level = level.child_ids.filtered(lambda c: not c.is_company) - partners
                partners |= level
        handled = {tuple(item) for item in self.env.context.get(HANDLED_IDENTITIES) or ()}
        pending = {}
        for partner in partners:
            old = (partner.ocpi_country_code or False, partner.ocpi_party_id or False)
            new = tuple((vals[fname] or False) if fname in vals else old[index]
                        for index, fname in enumerate(IDENTITY_FIELDS))
            if new == old or (partner.id, *new) in handled:
                continue
            if any(new) and not (new[0] and new[1] and COUNTRY_CODE_RE.match(new[0])
                                 and PARTY_ID_RE.match(new[1])):
                return {}
            pending[partner.id] = new
        return pending

    def unlink(self):
        had_identity = any(p.ocpi_country_code for p in self)
        res = super().unlink()
        if had_identity:
            self.env.registry.clear_cache()
        return res

    @api.onchange("ocpi_country_code", "ocpi_party_id")
    def _onchange_ocpi_identity_upper(self):
        for partner in self:
            if partner.ocpi_country_code:
                partner.ocpi_country_code = partner.ocpi_country_code.strip().upper()
            if partner.ocpi_party_id:
                partner.ocpi_party_id = partner.ocpi_party_id.strip().upper()

    @api.constrains("ocpi_country_code", "ocpi_party_id", "company_id", "parent_id")
    def _check_ocpi_identity(self):
        for partner in self:
            code, party = partner.ocpi_country_code, partner.ocpi_party_id
            if not code and not party:
                continue
            if bool(code) != bool(party):
                raise ValidationError(
                    _(
                        "%(partner)s: an OCPI identity needs both a country code and a "
                        "party ID.",
                        partner=partner.display_name,
                    )
                )
            if not COUNTRY_CODE_RE.match(code):
                raise ValidationError(
                    _(
                        "%(partner)s: OCPI country code %(code)r must be two letters "
                        "(ISO 3166-1 alpha-2, e.g. FR).",
                        partner=partner.display_name,
                        code=code,
                    )
                )
            if not PARTY_ID_RE.match(party):
                raise ValidationError(
                    _(
                        "%(partner)s: OCPI party ID %(party)r must be exactly three "
                        "letters or digits (e.g. ABC).",
                        partner=partner.display_name,
                        party=party,
                    )
                )
            if partner.commercial_partner_id != partner:
                continue
            domain = [
                ("ocpi_country_code", "=", code),
                ("ocpi_party_id", "=", party),
                ("id", "!=", partner.id),
            ]
            if partner.company_id:
                domain.append(("company_id", "in", [partner.company_id.id, False]))
            duplicates = self.search(domain).filtered(
                lambda p: p.commercial_partner_id == p
            )
            if duplicates:
                raise ValidationError(
                    _(
                        "OCPI identity %(identity)s is already used by %(other)s.",
                        identity="%s*%s" % (code, party),
                        other=duplicates[0].display_name,
                    )
                )

    @api.model
    def _find_by_ocpi_identity(self, country_code, party_id, company=None):
        """Commercial partner carrying this OCPI identity (shared or of ``company``)."""
        if not country_code or not party_id:
            return self.browse()
        domain = [
            ("ocpi_country_code", "=", country_code.upper()),
            ("ocpi_party_id", "=", party_id.upper()),
        ]
        if company:
            domain.append(("company_id", "in", [company.id, False]))
        partners = self.search(domain).filtered(lambda p: p.commercial_partner_id == p)
        return partners[:1]

    def action_view_clearing_contracts(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_contract"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {"default_partner_id": self.commercial_partner_id.id}
        return action
