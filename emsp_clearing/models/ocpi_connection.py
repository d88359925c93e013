"""OCPI connection with one partner: credentials handshake state, tokens, endpoints, pull.

The version is the highest both sides speak (2.3.0, else 2.2.1: ``clearing_core.ocpi.VERSIONS``),
agreed at registration from the partner's versions list; its endpoints are stored with it and the
pull reads the partner's CDRs in that version.

Tokens (credentials.asciidoc): an accountant creates the connection and gets Token A (shown once,
stored as a SHA-256 digest). The partner POSTs its credentials with Token A: Token B (theirs, what
we send when we call them — stored in clear because we must send it, visible to system
administrators only), its versions URL and roles; we fetch its versions and endpoints and answer
with Token C (ours, stored as a digest). Token A is then thrown away.
"""

import datetime as dt
import logging
import time
from types import MappingProxyType
from typing import NamedTuple

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError

from ..clearing_core import ocpi
from ..clearing_core.transport import client as ocpi_client
from ..clearing_core.transport import envelope as ot

_logger = logging.getLogger(__name__)


class TokenEntry(NamedTuple):
    """What a request presenting one of a connection's tokens needs (``_token_index``)."""
    conn_id: int
    kind: str  # 'A' (registration) or 'C'
    raw_token: bool
    company_id: int
    partner_id: int
    parties: frozenset  # allowed (country code, party id), see _allowed_parties


class ClearingOcpiConnection(models.Model):
    _name = "clearing.ocpi.connection"
    _description = "OCPI Connection"
    _inherit = ["mail.thread", "clearing.ingest.cache.mixin"]
    # what the token look-up and the allowed parties read (clearing_ingest_cache.py)
    _clearing_cache_fields = frozenset({
        "active", "token_a_hash", "token_c_hash", "raw_token", "partner_id", "company_id",
        "partner_roles", "state"})
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    partner_id = fields.Many2one("res.partner", required=True, index=True, tracking=True,
                                 check_company=True)
    company_id = fields.Many2one("res.company", required=True, index=True,
                                 default=lambda self: self.env.company)
    our_role = fields.Selection(
        [("emsp", "eMSP (we receive the partner's CDRs)"),
         ("cpo", "CPO (we also clear our own CDRs)")],
        required=True, default="emsp", tracking=True,
        help="The OCPI role this company plays towards the partner in this connection.",
    )
    state = fields.Selection(
        [("new", "Waiting for registration"), ("registered", "Registered"),
         ("unregistered", "Unregistered")],
        required=True, default="new", readonly=True, tracking=True, index=True,
    )
    # --- tokens: digests only for ours; theirs in clear (we have to send it)
    token_a_hash = fields.Char(readonly=True, index=True, copy=False, groups="base.group_system")
    token_a_hint = fields.Char("Token A", readonly=True, copy=False,
                               help="Last characters of the registration token (Token A).")
    token_c_hash = fields.Char(readonly=True, index=True, copy=False, groups="base.group_system")
    token_c_hint = fields.Char("Token C", readonly=True, copy=False,
                               help="Last characters of the token the partner uses (Token C).")
    token_b = fields.Char("Token B", readonly=True, copy=False, groups="base.group_system",
                          help="The partner's token, sent when we call the partner.")
    token_b_hint = fields.Char("Token B (end)", readonly=True, copy=False)
    raw_token = fields.Boolean(
        "Raw Tokens", tracking=True,
        help="The partner sends and expects the credentials token as is in the Authorization "
             "header (pre-2.2 habit) instead of base64-encoded.",
    )
    # --- the partner's side
    versions_url = fields.Char("Partner Versions URL", readonly=True, tracking=True)
    version = fields.Char(readonly=True, tracking=True,
                          help="OCPI version agreed with the partner: the highest both speak.")
    version_details_url = fields.Char(readonly=True)
    endpoints = fields.Json("Endpoints (JSON)", readonly=True)
    endpoints_text = fields.Text("Endpoints", compute="_compute_texts")
    partner_roles = fields.Json("Roles", readonly=True)
    roles_text = fields.Text("Partner Roles", compute="_compute_texts")
    cdrs_sender_url = fields.Char("CDRs Sender URL", compute="_compute_cdrs_sender_url",
                                  store=True)
    registered_date = fields.Datetime(readonly=True)
    # --- pull
    pull_enabled = fields.Boolean("Pull CDRs", default=True, tracking=True,
                                  help="The scheduled action pulls the partner's CDRs.")
    pull_limit = fields.Integer("Page Size", default=100,
                                help="'limit' asked for each page (the partner may give fewer).")
    pull_delay_minutes = fields.Integer(
        "Window Lag (min)", default=5,
        help="Each pull asks for CDRs last updated before now minus this lag (date_to); the next "
             "pull starts exactly there (date_from), so windows neither overlap nor leave gaps, "
             "and CDRs stamped a little late by the partner's clock are not missed.")
    pull_timeout = fields.Integer("Timeout (s)", default=60)
    pull_retries = fields.Integer("Retries", default=3)
    last_sync_date = fields.Datetime(
        "Last Successful Sync", readonly=True, tracking=True,
        help="End (date_to) of the last completely pulled window: the next date_from.")
    pull_window_from = fields.Datetime(readonly=True, copy=False)
    pull_window_to = fields.Datetime(readonly=True, copy=False)
    pull_resume_url = fields.Char(
        readonly=True, copy=False,
        help="Next page of an interrupted pull: the next run continues from here.")
    last_pull_date = fields.Datetime(readonly=True, copy=False)
    last_pull_status = fields.Selection(
        [("ok", "OK"), ("failed", "Failed"), ("partial", "Interrupted, will resume")],
        readonly=True, copy=False)
    last_pull_message = fields.Text(readonly=True, copy=False)
    log_ids = fields.One2many("clearing.ingestion.log", "connection_id", string="Log")
    log_count = fields.Integer(compute="_compute_log_count")

    _sql_constraints = [
        ("token_a_hash_uniq", "unique(token_a_hash)", "Token collision, generate again."),
        ("token_c_hash_uniq", "unique(token_c_hash)", "Token collision, generate again."),
    ]

    @api.depends("endpoints", "partner_roles")
    def _compute_texts(self):
        for c in self:
            c.endpoints_text = "\n".join(
                "%s %s %s" % (e.get("identifier"), e.get("role") or "", e.get("url"))
                for e in (c.endpoints or []) if isinstance(e, dict)) or False
            c.roles_text = "\n".join(
                "%s %s*%s %s" % (r.get("role"), r.get("country_code"), r.get("party_id"),
                                 (r.get("business_details") or {}).get("name") or "")
                for r in (c.partner_roles or []) if isinstance(r, dict)) or False

    @api.depends("endpoints")
    def _compute_cdrs_sender_url(self):
        for c in self:
            c.cdrs_sender_url = ocpi_client.find_endpoint(c.endpoints or [], "cdrs", "SENDER") or False

    def _endpoint_url(self, identifier, role):
        """URL of the partner's endpoint ``identifier`` with ``role`` in the agreed version's
        details, or False (also on an empty recordset, or when not registered)."""
        if len(self) != 1 or self.state != "registered":
            return False
        return ocpi_client.find_endpoint(self.endpoints or [], identifier, role) or False

    def _compute_log_count(self):
        data = self.env["clearing.ingestion.log"]._read_group(
            [("connection_id", "in", self.ids)], ["connection_id"], ["__count"])
        counts = {conn.id: n for conn, n in data}
        for c in self:
            c.log_count = counts.get(c.id, 0)

    # ------------------------------------------------------------------ tokens
    @staticmethod
    def _hint(token):
        return "…" + token[-4:]

    def action_generate_token_a(self):
        """New Token A (registration token), shown once in a notification, stored hashed."""
        self.ensure_one()
        if not self.env.user.has_group("emsp_clearing.group_clearing_manager"):
            raise UserError(_("Only clearing managers can create OCPI registration tokens."))
        if self.state == "registered":
            raise UserError(_("This connection is registered; the partner updates its "
                              "credentials with PUT, or unregister it first."))
        token = self._new_token_a()
        base = self.get_base_url()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Token A for %s — copy it now, it will not be shown again",
                           self.partner_id.display_name),
                "message": _("Versions URL: %(url)s\nToken A: %(token)s",
                             url=base + "/ocpi/versions", token=token),
                "sticky": True,
                "type": "warning",
            },
        }

    def _new_token_a(self):
        """Replace the registration token; returns it in clear (the only time it exists so)."""
        self.ensure_one()
        token = ot.generate_token()
        self.sudo().write({"token_a_hash": ot.hash_token(token), "token_a_hint": self._hint(token),
                           "state": "new"})
        self.message_post(body=_("New registration token (Token A) %(hint)s created by %(user)s.",
                                 hint=self._hint(token), user=self.env.user.name))
        return token

    @api.model
    def _find_by_token(self, auth):
        """``(connection, entry)`` for an ``ot.AuthorizationToken``: the active connection
        (sudo) whose token it is and its ``TokenEntry`` (kind 'A' or 'C', company, partner,
        allowed parties); ``(empty recordset, None)`` when no connection has that token."""
        index = self._token_index()
        for allow_raw in (False, True):
            for candidate in auth.candidates(allow_raw=allow_raw):
                if allow_raw and candidate == auth.decoded:
                    continue
                entry = index.get(ot.hash_token(candidate))
                if entry is None or (allow_raw and not entry.raw_token):
                    continue
                return self.sudo().browse(entry.conn_id), entry
        return self.browse(), None

    @api.model
    @tools.ormcache()
    def _token_index(self):
        """``{token digest: TokenEntry}`` of every active connection holding a token (Token A
        or C): one memo entry for all of them, memoised across requests and cleared when a
        connection or a partner's OCPI identity changes (clearing_ingest_cache.py). A presented
        token is looked up in it, so unknown tokens add nothing to Odoo's shared cache."""
        conns = self.sudo().with_context(active_test=True).search(
            ["|", ("token_a_hash", "!=", False), ("token_c_hash", "!=", False)], order="id")
        index = {}
        for conn in conns:
            parties = conn._read_allowed_parties()
            for kind, digest in (("A", conn.token_a_hash), ("C", conn.token_c_hash)):
                if digest:
                    index[digest] = TokenEntry(conn.id, kind, conn.raw_token, conn.company_id.id,
                                               conn.partner_id.id, parties)
        return MappingProxyType(index)

    def _allowed_parties(self):
        """(country_code, party_id) the partner may send CDRs for: its CPO roles, else its
        OCPI identity on the partner record. A frozenset, from the token index when the
        connection holds a token (shared: read only)."""
        self.ensure_one()
        for entry in self._token_index().values():
            if entry.conn_id == self.id:
                return entry.parties
        return self.sudo()._read_allowed_parties()  # archived or without token: not memoised

    def _read_allowed_parties(self):
        self.ensure_one()
        parties = {((r.get("country_code") or "").upper(), (r.get("party_id") or "").upper())
                   for r in (self.partner_roles or []) if isinstance(r, dict)
                   and r.get("role") in ("CPO", "HUB", "OTHER")}
        p = self.partner_id
        if p.ocpi_country_code and p.ocpi_party_id:
            parties.add((p.ocpi_country_code.upper(), p.ocpi_party_id.upper()))
        return frozenset(parties)

    def _our_credentials(self, token, base_url):
        """Our credentials object (credentials.asciidoc) carrying ``token``."""
        self.ensure_one()
        company = self.company_id
        own = company.partner_id
        if not (own.ocpi_country_code and own.ocpi_party_id):
            return None
        role = "EMSP" if self.our_role == "emsp" else "CPO"
        details = {"name": (company.name or "")[:100]}
        if company.website:
            details["website"] = company.website[:255]
        return {
            "token": token,
            "url": base_url + "/ocpi/versions",
            "roles": [{"role": role, "party_id": own.ocpi_party_id,
                       "country_code": own.ocpi_country_code, "business_details": details}],
        }

    def _client(self, token=None, retries=None):
        self.ensure_one()
        return ocpi_client.OcpiClient(
            token or self.sudo().token_b, raw_token=self.raw_token,
            timeout=(10, max(1, self.pull_timeout or 60)),
            retries=max(0, self.pull_retries if retries is None else retries),
            backoff=float(self.env.context.get("ocpi_backoff", 1.0)))

    def _register_partner(self, creds, new_token_c):
        """Store the partner's credentials (after fetching its endpoints) and our Token C.

        Returns ``(status_code, message)``; 1000 when done. Nothing is stored on failure.
        """
        self.ensure_one()
        try:
            # the partner waits for our answer: one retry, not the pull's patience
            version, details_url, endpoints = self._client(
                creds["token"], retries=1).negotiate(creds["url"])
        except ocpi_client.OcpiClientError as e:
            code = e.status_code if e.status_code == ot.UNSUPPORTED_VERSION else ot.UNABLE_TO_USE_CLIENT_API
            return code, _("Cannot use your API at %(url)s: %(err)s", url=creds["url"], err=e)
        except ValueError as e:
            return ot.UNABLE_TO_USE_CLIENT_API, str(e)
        self.sudo().write({
            "token_b": creds["token"], "token_b_hint": self._hint(creds["token"]),
            "versions_url": creds["url"], "version": version,
            "version_details_url": details_url, "endpoints": endpoints,
            "partner_roles": creds["roles"],
            "token_a_hash": False, "token_a_hint": False,
            "token_c_hash": ot.hash_token(new_token_c), "token_c_hint": self._hint(new_token_c),
            "state": "registered", "registered_date": fields.Datetime.now(),
        })
        return ot.SUCCESS, None

    def _unregister(self):
        self.sudo().write({"token_a_hash": False, "token_a_hint": False, "token_c_hash": False,
                           "token_c_hint": False, "token_b": False, "token_b_hint": False,
                           "state": "unregistered", "pull_resume_url": False})

    def action_unregister(self):
        for c in self:
            c._unregister()
            c.message_post(body=_("Unregistered by %s.", self.env.user.name))

    def action_open_logs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "emsp_clearing.action_clearing_ingestion_log")
        action["domain"] = [("connection_id", "=", self.id)]
        return action

    # ------------------------------------------------------------------ pull
    def action_pull_now(self):
        self.ensure_one()
        if not self.env.user.has_group("emsp_clearing.group_clearing_manager"):
            raise UserError(_("Only clearing managers can pull CDRs from a partner."))
        if self.state != "registered" or not self.cdrs_sender_url:
            raise UserError(_("Pull needs a registered connection whose partner offers a CDRs "
                              "SENDER endpoint."))
        log = self._pull_cdrs(commit=True)
        return {
            "type": "ir.actions.client", "tag": "display_notification",
            "params": {
                "title": _("Pull %s", dict(log._fields["outcome"].selection).get(log.outcome)),
                "message": _("%(pages)s page(s): %(created)s stored, %(dup)s replays, "
                             "%(rej)s rejected. %(msg)s", pages=log.pages,
                             created=log.count_created, dup=log.count_duplicate,
                             rej=log.count_rejected, msg=log.message or ""),
                "sticky": False, "type": "success" if log.outcome == "success" else "warning",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    @api.model
    def _cron_pull(self):
        conns = self.search([("state", "=", "registered"), ("pull_enabled", "=", True),
                             ("cdrs_sender_url", "!=", False)])
        cron = self.env["ir.cron"]
        for n, conn in enumerate(conns):
            try:
                conn._pull_cdrs(commit=True)
            except Exception:  # one partner's trouble must not stop the others
                self.env.cr.rollback()
                _logger.exception("OCPI pull of connection %s failed", conn.id)
            cron._notify_progress(done=n + 1, remaining=len(conns) - n - 1)

    def _pull_cdrs(self, commit=True, now=None):
        """Pull the partner's CDRs for the window [last sync, now - lag), page by page.

        After each page: its CDRs are stored, the next page's URL is kept on the connection and,
        with ``commit``, the transaction is committed — a failure later resumes from there.
        Returns the run's ``clearing.ingestion.log``.
        """
        self.ensure_one()
        started = time.monotonic()
        now = now or fields.Datetime.now()
        resume = self.pull_resume_url
        if not resume:
            self.write({
                "pull_window_from": self.last_sync_date or False,
                "pull_window_to": now - dt.timedelta(minutes=max(0, self.pull_delay_minutes)),
            })
        log = self.env["clearing.ingestion.log"].sudo().create({
            "channel": "pull", "connection_id": self.id, "partner_id": self.partner_id.id,
            "company_id": self.company_id.id, "outcome": "running",
            "endpoint": "GET " + (resume or self.cdrs_sender_url),
        })
        client = self._client()
        parties = self._allowed_parties()
        message = _("resumed from %s", resume) if resume else None
        try:
            pages = client.iter_cdr_pages(
                self.cdrs_sender_url, date_from=self.pull_window_from or None,
                date_to=self.pull_window_to, limit=self.pull_limit or None, start_url=resume)
            for page in pages:
                log._ingest_cdrs(page.items, connection=self, company=self.company_id,
                                 version=self.version or ocpi.V221,
                                 positions=["page %d #%d" % (page.number, i + 1)
                                            for i in range(len(page.items))],
                                 allowed_parties=parties)
                log.write({"pages": log.pages + 1, "total_announced": page.total or 0,
                           "correlation_id": client.correlation_id})
                self.write({"pull_resume_url": page.next_url or False})
                if commit:
                    self.env.cr.commit()
                _logger.info("OCPI pull %s: page %d, %d/%s CDRs", self.name, page.number,
                             page.fetched, page.total)
        except ocpi_client.OcpiClientError as e:
            text = _("Pull interrupted after %(pages)s page(s): %(err)s. %(resume)s",
                     pages=log.pages, err=e,
                     resume=_("The next run resumes at the next page.") if self.pull_resume_url
                     else _("The next run starts the window again."))
            log._set_outcome(outcome="error", message=text, http_status=e.http_status or 0,
                             ocpi_status_code=e.status_code or 0,
                             duration=time.monotonic() - started)
            self.write({"last_pull_date": fields.Datetime.now(),
                        "last_pull_status": "partial" if self.pull_resume_url else "failed",
                        "last_pull_message": text})
            if commit:
                self.env.cr.commit()
            return log
        self.write({"last_sync_date": self.pull_window_to, "pull_resume_url": False,
                    "last_pull_date": fields.Datetime.now(), "last_pull_status": "ok",
                    "last_pull_message": message or False})
        log._set_outcome(message=message, http_status=200, ocpi_status_code=ot.SUCCESS,
                         duration=time.monotonic() - started)
        if commit:
            self.env.cr.commit()
        return log
