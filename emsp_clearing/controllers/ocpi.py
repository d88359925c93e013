"""OCPI 2.2.1 and 2.3.0 endpoints (plain JSON over HTTP, not JSON-RPC).

Every module below is served under ``/ocpi/2.2.1`` and ``/ocpi/2.3.0`` by the same handlers;
the version is the one of the path (``_version``) and only the core's parsing depends on it
(``clearing_core.ocpi``: the 2.3.0 Price and Tariff).

* ``GET /ocpi/versions``, ``GET /ocpi/<version>`` — versions module (Token A or C);
* ``/ocpi/<version>/credentials`` — GET/POST/PUT/DELETE (Token A or C, see credentials.asciidoc);
* ``POST /ocpi/<version>/cdrs`` — CDRs receiver (Token C) -> 201 + Location once checked and
  queued (models/clearing_cdr_inbox.py); ``GET /ocpi/<version>/cdrs/<id>`` — the CDR there;
* any other path under ``/ocpi/`` -> 404, any other method on a path above -> 405 (with
  ``Allow``), both as OCPI envelopes with status 2000, after the token check (unknown token:
  401 first, on every path).

Every answer is the OCPI envelope and echoes ``X-Request-ID``/``X-Correlation-ID``; every call
is written to ``clearing.ingestion.log``. ``auth='none'`` + our own ``Authorization: Token``
check (the header is OCPI's, not Odoo's session), ``csrf=False`` (machine-to-machine),
``readonly=False`` (every call writes its log line). The database is the one Odoo serves for the
request's host, as for any public Odoo URL; serve it with ``-d <db>`` and no ``--db-filter``
(docs/OCPI.md: a db-filter lists the databases on every cookie-less call).
"""

import logging
import time

from odoo import SUPERUSER_ID, http
from odoo.http import request
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..clearing_core import ocpi
from ..clearing_core.transport import envelope as ot

_logger = logging.getLogger(__name__)

ROLES = {"CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"}
BASES = {version: "/ocpi/" + version for version in ocpi.VERSIONS}  # highest first


def _routes(suffix=""):
    """The routes of ``suffix`` under every version we serve."""
    return [base + suffix for base in BASES.values()]


def _version():
    """The OCPI version of the request's path (``/ocpi/2.3.0/...``)."""
    parts = request.httprequest.path.split("/")
    return parts[2] if len(parts) > 2 and parts[2] in BASES else ocpi.V221
MAX_ID = 2**31 - 1  # PostgreSQL integer: a larger number is no id of ours


class _Reply(Exception):
    """Stop handling and answer: ``(http_status, envelope kwargs, headers)``."""

    def __init__(self, http_status, status_code, message=None, data=ot._MISSING, headers=None):
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code
        self.message = message
        self.data = data
        self.headers = headers or {}


def _validate_credentials(body, version=ocpi.V221):
    """``(path, message)`` of the first problem of a credentials object, or ``None``."""
    if not isinstance(body, dict):
        return "$", "a credentials object is expected"
    hub = body.get("hub_party_id")
    if version != ocpi.V221 and hub is not None and (
            not isinstance(hub, str) or len(hub) != 5 or not hub.isascii() or not hub.isalnum()):
        return "$.hub_party_id", "must be the hub's country code and party id (5 characters)"
    token = body.get("token")
    if not isinstance(token, str) or not ot.is_valid_token(token):
        return "$.token", "must be 1 to 64 printable non-whitespace ASCII characters"
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 255:
        return "$.url", "must be the http(s) URL of your versions endpoint"
    roles = body.get("roles")
    if not isinstance(roles, list) or not roles:
        return "$.roles", "at least one CredentialsRole is required"
    for i, r in enumerate(roles):
        p = "$.roles[%d]" % i
        if not isinstance(r, dict):
            return p, "must be an object"
        if r.get("role") not in ROLES:
            return p + ".role", "must be one of %s" % ", ".join(sorted(ROLES))
        cc, party = r.get("country_code"), r.get("party_id")
        if not isinstance(cc, str) or len(cc) != 2 or not cc.isascii():
            return p + ".country_code", "must be a 2-letter ISO 3166-1 country code"
        if not isinstance(party, str) or not 1 <= len(party) <= 3 or not party.isascii():
            return p + ".party_id", "must be 1 to 3 ASCII characters"
        bd = r.get("business_details")
        if not isinstance(bd, dict) or not isinstance(bd.get("name"), str) or not bd["name"]:
            return p + ".business_details.name", "required"
    return None


class OcpiController(http.Controller):

    # ------------------------------------------------------------------ plumbing
    def _handle(self, channel, handler, token_kinds=("C",), **kw):
        """Authenticate, run ``handler(conn, kind, call, **kw)``, answer, log — for every route.

        ``call``: ``{"vals": the log values so far, "log": the log row when the handler wrote
        it, "final": True when that row already holds the final outcome}``; otherwise the
        call's log row is written once, at the end."""
        started = time.monotonic()
        hreq = request.httprequest
        ids = ot.echo_ids(hreq.headers)
        request.update_env(user=SUPERUSER_ID)
        env = request.env
        endpoint = "%s %s" % (hreq.method, hreq.path)
        log_vals = {"channel": channel, "endpoint": endpoint[:255],
                    "request_id": ids["X-Request-ID"], "correlation_id": ids["X-Correlation-ID"]}
        call = {"vals": log_vals, "log": None, "final": False, "started": started}
        try:
            try:
                auth = ot.parse_authorization(hreq.headers.get("Authorization"))
            except ot.OcpiAuthError as e:
                raise _Reply(401, ot.CLIENT_ERROR, "Unauthorized: %s" % e)
            conn, entry = env["clearing.ocpi.connection"]._find_by_token(auth)
            if not conn:
                raise _Reply(401, ot.CLIENT_ERROR, "Unauthorized: unknown credentials token")
            log_vals.update(connection_id=entry.conn_id, partner_id=entry.partner_id,
                            company_id=entry.company_id)
            if entry.kind not in token_kinds:
                raise _Reply(401, ot.CLIENT_ERROR,
                             "Unauthorized: the registration token (Token A) is only valid for "
                             "the versions and credentials modules")
            env = env(context=dict(env.context, allowed_company_ids=[entry.company_id]))
            reply = handler(conn.with_env(env), entry.kind, call, **kw)
        except _Reply as r:
            reply = r
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise  # Odoo retries the whole request in a new transaction
        except Exception as e:  # noqa: BLE001 — answer 3000 and keep a trace, never a bare 500
            _logger.exception("OCPI %s failed", endpoint)
            request.env.cr.rollback()
            call.update(log=None, final=False)
            reply = _Reply(500, ot.SERVER_ERROR, "Generic server error: %s" % type(e).__name__)
        body = ot.envelope_bytes(reply.data, status_code=reply.status_code,
                                 status_message=reply.message)
        headers = [("Content-Type", "application/json")] + list(ids.items()) + list(reply.headers.items())
        if not call["final"]:
            self._log_outcome(call, reply)
        return request.make_response(body, headers=headers, status=reply.http_status)

    @staticmethod
    def _log_outcome(call, reply):
        log_vals = call["vals"]
        log = call["log"]
        if reply.http_status == 401:
            outcome = "unauthorized"
        elif ot.is_success(reply.status_code) and reply.http_status < 400:
            outcome = None  # from the counts
        elif reply.status_code >= 3000 or reply.http_status >= 500:
            outcome = "error"
        else:
            outcome = "rejected"
        vals = {"http_status": reply.http_status, "ocpi_status_code": reply.status_code,
                "duration": time.monotonic() - call["started"]}
        if outcome:
            vals["outcome"] = outcome
        message = reply.message if not ot.is_success(reply.status_code) else None
        if log is None:
            if message is not None:
                vals["message"] = message
            request.env["clearing.ingestion.log"].sudo().create(dict(log_vals, **vals))
        else:
            log._set_outcome(message=message, **vals)

    @staticmethod
    def _base():
        """Our base URL as the caller reached it (``host_url`` without its IDNA/IRI decoding,
        9 % of a push's time: the host is the validated Host header, ASCII on the wire)."""
        hreq = request.httprequest
        return "%s://%s%s" % (hreq.scheme, hreq.host, hreq.root_path.rstrip("/"))

    @staticmethod
    def _json_body():
        try:
            return ot.parse_json_body(request.httprequest.get_data())
        except ot.OcpiBadJson as e:
            raise _Reply(400, ot.CLIENT_ERROR, "Bad request: %s" % e)

    def _not_allowed(self, channel, allowed, token_kinds=("C",)):
        """405 envelope for a method this endpoint does not serve (after the token check)."""
        def handler(conn, kind, call):
            hreq = request.httprequest
            raise _Reply(405, ot.CLIENT_ERROR, "Method not allowed: %s %s accepts %s" % (
                hreq.method, hreq.path, ", ".join(allowed)),
                headers={"Allow": ", ".join(allowed)})
        return self._handle(channel, handler, token_kinds=token_kinds)

    @http.route(["/ocpi", "/ocpi/", "/ocpi/<path:subpath>"], type="http", auth="none",
                csrf=False, save_session=False, readonly=False)
    def ocpi_unknown(self, subpath=None, **kw):
        """Any other path under /ocpi/: a 404 envelope, after the token check."""
        def handler(conn, kind, call):
            hreq = request.httprequest
            raise _Reply(404, ot.CLIENT_ERROR, "Unknown OCPI endpoint: %s %s (see %s/ocpi/versions "
                         "for ours)" % (hreq.method, hreq.path, self._base()))
        return self._handle("other", handler, token_kinds=("A", "C"))

    # ------------------------------------------------------------------ versions
    @http.route("/ocpi/versions", type="http", auth="none", csrf=False,
                save_session=False, readonly=False)
    def ocpi_versions(self, **kw):
        if request.httprequest.method != "GET":
            return self._not_allowed("versions", ["GET"], token_kinds=("A", "C"))
        def handler(conn, kind, call):
            return _Reply(200, ot.SUCCESS, None, data=[
                {"version": version, "url": self._base() + base}
                for version, base in sorted(BASES.items())])
        return self._handle("versions", handler, token_kinds=("A", "C"))

    @http.route(_routes() + _routes("/"), type="http", auth="none", csrf=False,
                save_session=False, readonly=False)
    def ocpi_version_details(self, **kw):
        if request.httprequest.method != "GET":
            return self._not_allowed("versions", ["GET"], token_kinds=("A", "C"))
        version = _version()
        def handler(conn, kind, call):
            base = self._base() + BASES[version]
            return _Reply(200, ot.SUCCESS, None, data={
                "version": version,
                "endpoints": self._prepare_endpoints(version, base)})
        return self._handle("versions", handler, token_kinds=("A", "C"))

    def _prepare_endpoints(self, version, base):
        """Hook: the endpoints of our version details for ``version`` (``base``: its URL)."""
        return [
                    {"identifier": "credentials", "role": "SENDER", "url": base + "/credentials"},
                    {"identifier": "cdrs", "role": "RECEIVER", "url": base + "/cdrs"},
                ] + ([{"identifier": "invoicereconciliation", "role": role,
                       "url": base + "/invoicereconciliation"} for role in ("SENDER", "RECEIVER")]
                     if version != ocpi.V221 else [])

    # ------------------------------------------------------------------ credentials
    @http.route(_routes("/credentials") + _routes("/credentials/"), type="http", auth="none",
                csrf=False, save_session=False, readonly=False)
    def ocpi_credentials(self, **kw):
        if request.httprequest.method not in ("GET", "POST", "PUT", "DELETE"):
            return self._not_allowed("credentials", ["GET", "POST", "PUT", "DELETE"],
                                     token_kinds=("A", "C"))
        return self._handle("credentials", self._credentials, token_kinds=("A", "C"))

    def _credentials(self, conn, kind, call):
        method = request.httprequest.method
        auth = ot.parse_authorization(request.httprequest.headers.get("Authorization"))
        used_token = auth.decoded if auth.decoded is not None else auth.value
        if method == "GET":
            creds = conn._our_credentials(used_token, self._base())
            if creds is None:
                raise _Reply(200, ot.SERVER_ERROR, "Our OCPI identity (country code, party id) "
                             "is not configured on the company")
            return _Reply(200, ot.SUCCESS, None, data=creds)
        if method == "DELETE":
            if kind != "C":
                raise _Reply(405, ot.CLIENT_ERROR, "Method not allowed: not registered")
            conn._unregister()
            conn.message_post(body="Unregistered by the partner (credentials DELETE).")
            return _Reply(200, ot.SUCCESS, None)
        # POST registers (Token A), PUT updates (Token C)
        if method == "POST" and kind == "C":
            raise _Reply(405, ot.CLIENT_ERROR, "Method not allowed: already registered, use PUT")
        if method == "PUT" and kind != "C":
            raise _Reply(405, ot.CLIENT_ERROR, "Method not allowed: not registered yet, use POST")
        body = self._json_body()
        problem = _validate_credentials(body, _version())
        if problem:
            raise _Reply(200, ot.INVALID_PARAMETERS, "%s: %s" % problem,
                         data={"path": problem[0], "reason": problem[1]})
        new_token = ot.generate_token()
        creds = conn._our_credentials(new_token, self._base())
        if creds is None:
            raise _Reply(200, ot.SERVER_ERROR, "Our OCPI identity (country code, party id) is "
                         "not configured on the company")
        code, message = conn._register_partner(body, new_token)
        if code != ot.SUCCESS:
            raise _Reply(200, code, message)
        conn.message_post(body="Partner %s its credentials (%s)." % (
            "registered" if method == "POST" else "updated", body["url"]))
        return _Reply(200, ot.SUCCESS, None, data=creds)

    # ------------------------------------------------------------------ CDRs receiver
    @http.route(_routes("/cdrs") + _routes("/cdrs/"), type="http", auth="none",
                csrf=False, save_session=False, readonly=False)
    def ocpi_cdrs_post(self, **kw):
        if request.httprequest.method != "POST":
            # we are the receiver of the CDRs module: no list of CDRs to GET, nothing to DELETE
            return self._not_allowed("other", ["POST"])
        return self._handle("push", self._cdr_post)

    def _cdr_post(self, conn, kind, call):
        """Check the CDR and acknowledge it; it is stored from the push queue
        (models/clearing_cdr_inbox.py) under the id of its Location."""
        body = self._json_body()
        version = _version()
        outcome, cdr_ref, path, reason, log = conn.env["clearing.cdr.inbox"]._receive(
            body, conn, call, version=version)
        call["log"] = log
        if outcome == "rejected":
            raise _Reply(200, ot.INVALID_PARAMETERS, "%s: %s" % (path, reason),
                         data={"path": path, "reason": reason})
        location = "%s%s/cdrs/%d" % (self._base(), BASES[version], cdr_ref)
        if outcome == "duplicate":
            return _Reply(200, ot.SUCCESS, "CDR already received (identical), nothing stored",
                          headers={"Location": location})
        call["final"] = True  # the log row was written with the CDR, as 201
        return _Reply(201, ot.SUCCESS, None, headers={"Location": location})

    @http.route(_routes("/cdrs/<string:cdr_ref>"), type="http", auth="none",
                csrf=False, save_session=False, readonly=False)
    def ocpi_cdr_get(self, cdr_ref, **kw):
        if request.httprequest.method != "GET":
            return self._not_allowed("cdr_get", ["GET"])
        return self._handle("cdr_get", self._cdr_get, cdr_ref=cdr_ref)

    def _cdr_get(self, conn, kind, call, cdr_ref):
        # the id of a Location we gave; anything else is no CDR of ours
        if not (cdr_ref.isascii() and cdr_ref.isdigit()) or not 0 < int(cdr_ref) <= MAX_ID:
            raise _Reply(404, ot.CLIENT_ERROR, "Unknown CDR")
        cdr_id = int(cdr_ref)
        record = conn.env["clearing.cdr"].browse(cdr_id).exists()
        if not record:  # acknowledged, not stored yet (or stored under another id)
            queued = conn.env["clearing.cdr.inbox"]._find_queued(conn.company_id, cdr_id)
            record = queued.cdr_id or queued
        if (not record or record.company_id != conn.company_id or not record.raw_json
                or (record.country_code.upper(), record.party_id.upper())
                not in conn._allowed_parties()):
            raise _Reply(404, ot.CLIENT_ERROR, "Unknown CDR")
        return _Reply(200, ot.SUCCESS, None, data=record.raw_json)

    # ------------------------------------------------------------------ invoice reconciliation
    # 2.3.0 edition 2: our CPO hat's records (Sender interface: GET on the endpoint) and, our
    # eMSP hat, the CPO's records (Receiver interface: the other methods).
    @http.route([BASES[ocpi.V230] + "/invoicereconciliation",
                 BASES[ocpi.V230] + "/invoicereconciliation/",
                 BASES[ocpi.V230] + "/invoicereconciliation/<string:country_code>/"
                 "<string:party_id>/<string:record_id>"],
                type="http", auth="none", csrf=False, save_session=False, readonly=False)
    def ocpi_invoice_reconciliation(self, country_code=None, party_id=None, record_id=None,
                                    **kw):
        method = request.httprequest.method
        if record_id is None and method == "GET":
            return self._handle("other", self._invoice_reconciliation_list)
        if record_id is None and method != "POST":
            return self._not_allowed("other", ["GET", "POST"])
        if record_id is not None and method not in ("GET", "POST", "PUT", "DELETE"):
            return self._not_allowed("other", ["GET", "POST", "PUT", "DELETE"])
        key = (country_code, party_id, record_id) if record_id is not None else None

        def handler(conn, kind, call):
            body = self._json_body() if method in ("POST", "PUT") else None
            http_status, code, message, data = conn.env[
                "clearing.invoice.reconciliation"]._receive(conn, method, body, key)
            if code != ot.SUCCESS or http_status >= 400:
                raise _Reply(http_status, code, message,
                             data=data if data is not None else ot._MISSING)
            return _Reply(http_status, code, message,
                          data=data if data is not None else ot._MISSING)
        return self._handle("other", handler)

    MAX_LIMIT = 100

    def _invoice_reconciliation_list(self, conn, kind, call):
        """Our published records for the caller (Sender interface), last_updated in
        [date_from, date_to), paginated (Link, X-Total-Count, X-Limit)."""
        args = request.httprequest.args
        domain = [("direction", "=", "published"), ("company_id", "=", conn.company_id.id),
                  ("partner_id", "=", conn.partner_id.commercial_partner_id.id)]
        filters = {}
        for name, operator in (("date_from", ">="), ("date_to", "<")):
            value = args.get(name)
            if value:
                try:
                    moment = ocpi.parse_datetime(value, name, strict=False)
                except ValueError as error:
                    raise _Reply(200, ot.INVALID_PARAMETERS, str(error),
                                 data={"path": name, "reason": str(error)}) from None
                domain.append(("last_updated", operator, moment.replace(tzinfo=None)))
                filters[name] = value
        try:
            offset = max(0, int(args.get("offset") or 0))
            limit = min(self.MAX_LIMIT, max(1, int(args.get("limit") or self.MAX_LIMIT)))
        except ValueError:
            raise _Reply(200, ot.INVALID_PARAMETERS, "offset and limit must be integers") from None
        Record = conn.env["clearing.invoice.reconciliation"]
        total = Record.search_count(domain)
        records = Record.search(domain, order="last_updated, id", offset=offset, limit=limit)
        headers = {"X-Total-Count": str(total), "X-Limit": str(limit)}
        if offset + len(records) < total:
            url = self._base() + request.httprequest.path
            headers["Link"] = ot.link_next_header(url, offset + len(records), limit, **filters)
        return _Reply(200, ot.SUCCESS, None, data=records.mapped("raw_json"), headers=headers)
