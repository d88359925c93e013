"""OCPI 2.2.1 transport helpers: envelope, status codes, tokens, pagination headers.

Pure standard library, no Odoo: used by the Odoo controllers, the pull client and the tests.
Spec chapters: transport_and_format (Authorization header, pagination, response format, unique
message IDs), status_codes, credentials (token format).
"""

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import json
import re
import secrets
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import json_text

# --- status codes (status_codes.asciidoc) -------------------------------------------------------

SUCCESS = 1000
CLIENT_ERROR = 2000
INVALID_PARAMETERS = 2001
NOT_ENOUGH_INFORMATION = 2002
UNKNOWN_LOCATION = 2003
UNKNOWN_TOKEN = 2004
SERVER_ERROR = 3000
UNABLE_TO_USE_CLIENT_API = 3001
UNSUPPORTED_VERSION = 3002
NO_MATCHING_ENDPOINTS = 3003

STATUS_MESSAGES = {
    SUCCESS: "Generic success code",
    CLIENT_ERROR: "Generic client error",
    INVALID_PARAMETERS: "Invalid or missing parameters",
    NOT_ENOUGH_INFORMATION: "Not enough information",
    UNKNOWN_LOCATION: "Unknown Location",
    UNKNOWN_TOKEN: "Unknown Token",
    SERVER_ERROR: "Generic server error",
    UNABLE_TO_USE_CLIENT_API: "Unable to use the client's API",
    UNSUPPORTED_VERSION: "Unsupported version",
    NO_MATCHING_ENDPOINTS: "No matching endpoints or expected endpoints missing between parties",
}

VERSION = "2.2.1"

_MISSING = object()


def is_success(status_code):
    return isinstance(status_code, int) and 1000 <= status_code <= 1999


# --- date-times ---------------------------------------------------------------------------------

def _utc(value):
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def format_datetime(value):
    """OCPI DateTime (RFC 3339, UTC, ``Z``) of a datetime; naive datetimes are taken as UTC.

    Whole seconds unless the value carries microseconds (then milliseconds), e.g.
    ``2015-06-29T21:39:09Z`` — what ``date_from``/``date_to`` and ``timestamp`` use.
    """
    value = _utc(value)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (value.microsecond // 1000)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(now=None):
    """The envelope's ``timestamp``: now (or ``now``) in OCPI DateTime format, whole seconds."""
    now = _utc(now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0)
    return format_datetime(now)


# --- envelope (transport_and_format: response format) ------------------------------------------

def envelope(data=_MISSING, status_code=SUCCESS, status_message=None, now=None):
    """The OCPI response object ``{data, status_code, status_message, timestamp}``.

    ``data`` is left out when not given (the spec's advice for error responses and responses
    without specified data). ``status_message`` defaults to the spec's wording of the code.
    """
    if not isinstance(status_code, int) or not 1000 <= status_code <= 4999:
        raise ValueError("OCPI status code must be an int in 1000..4999, got %r" % (status_code,))
    body = {}
    if data is not _MISSING:
        body["data"] = data
    body["status_code"] = status_code
    message = status_message if status_message is not None else STATUS_MESSAGES.get(status_code)
    if message is not None:
        body["status_message"] = message
    body["timestamp"] = timestamp(now)
    return body


def envelope_bytes(*args, **kwargs):
    """``envelope(...)`` serialised as compact UTF-8 JSON (Decimals written as numbers)."""
    return json.dumps(envelope(*args, **kwargs), separators=(",", ":"), default=_json_default,
                      ensure_ascii=False).encode("utf-8")


def _json_default(value):
    import decimal
    if isinstance(value, decimal.Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    raise TypeError("%r is not JSON serialisable" % (value,))


class OcpiBadJson(ValueError):
    """The request body is not JSON (the spec's HTTP 400 case)."""


def parse_json_body(raw):
    """Decode a request body (bytes or str) as JSON; ``OcpiBadJson`` names what is wrong."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise OcpiBadJson("body is not UTF-8: %s" % e) from None
    if not raw or not raw.strip():
        raise OcpiBadJson("empty body, JSON expected")
    try:
        return json_text.loads(raw)
    except ValueError as e:
        raise OcpiBadJson("body is not valid JSON: %s" % e) from None


def unwrap_envelope(body):
    """Check a peer's response envelope; returns ``(data, status_code, status_message)``.

    Raises ``ValueError`` when the body is not an OCPI response object.
    """
    if not isinstance(body, dict):
        raise ValueError("OCPI response is not a JSON object")
    code = body.get("status_code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ValueError("OCPI response has no integer status_code")
    return body.get("data"), code, body.get("status_message")


# --- credentials tokens (transport_and_format: Authorization header; credentials) -------------

_PRINTABLE = re.compile(r"^[\x21-\x7e]{1,64}$")


class OcpiAuthError(ValueError):
    """Missing or malformed ``Authorization`` header (the spec's HTTP 401 case)."""


def is_valid_token(token):
    """Credentials token: 1..64 printable non-whitespace ASCII characters (U+0021..U+007E)."""
    return isinstance(token, str) and bool(_PRINTABLE.match(token))


def generate_token():
    """A new random credentials token (43 URL-safe characters, 256 bits of entropy)."""
    return secrets.token_urlsafe(32)


def hash_token(token):
    """SHA-256 hex digest of a credentials token, what the database stores.

    Tokens are 256-bit random values, so a fast hash is enough (no dictionary attack possible);
    the digest is used as an exact lookup key.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a, b):
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def encode_token(token):
    """Base64 (RFC 4648 section 4) of the UTF-8 token, as OCPI 2.2.1 puts it in the header."""
    return base64.b64encode(token.encode("utf-8")).decode("ascii")


def authorization_header(token, raw=False):
    """``Token <base64(token)>``; ``raw=True`` for pre-2.2 peers that send the token as is."""
    return "Token " + (token if raw else encode_token(token))


class AuthorizationToken:
    """The credentials token read from an ``Authorization`` header.

    ``value`` is the text after ``Token ``; ``decoded`` the base64-decoded token when that text is
    valid base64 of a valid token, else ``None``. ``candidates(allow_raw)`` lists what to look up:
    the decoded token, plus the raw value for connections configured for raw tokens.
    """

    __slots__ = ("value", "decoded")

    def __init__(self, value, decoded):
        self.value = value
        self.decoded = decoded

    def candidates(self, allow_raw=False):
        out = []
        if self.decoded is not None:
            out.append(self.decoded)
        if allow_raw and is_valid_token(self.value) and self.value not in out:
            out.append(self.value)
        return out

    def __repr__(self):
        return "AuthorizationToken(value=%r, decoded=%r)" % (self.value, self.decoded)


def decode_token(value):
    """Base64-decode a header token; ``None`` when it is not base64 of a valid token.

    Surrounding whitespace of the decoded text is dropped: the spec's own example
    (``ZXhhbXBsZS10b2tlbgo=``) encodes ``example-token`` followed by a newline.
    """
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
        token = raw.decode("utf-8").strip()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    return token if is_valid_token(token) else None


def parse_authorization(header):
    """Parse ``Authorization: Token <encoded token>``; ``OcpiAuthError`` when missing/malformed."""
    if header is None or not header.strip():
        raise OcpiAuthError("missing Authorization header")
    parts = header.strip().split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "token":
        raise OcpiAuthError("Authorization header must be 'Token <base64 token>'")
    value = parts[1].strip()
    if not value or any(c.isspace() for c in value):
        raise OcpiAuthError("Authorization header must be 'Token <base64 token>'")
    return AuthorizationToken(value, decode_token(value))


# --- unique message IDs ------------------------------------------------------------------------

def new_request_id():
    return str(uuid.uuid4())


def echo_ids(headers):
    """Response headers echoing ``X-Request-ID`` and ``X-Correlation-ID``.

    ``headers`` is any case-insensitive mapping with ``.get`` (werkzeug, requests); missing IDs
    are generated so every response carries both (the spec requires them on every message).
    """
    out = {}
    for name in ("X-Request-ID", "X-Correlation-ID"):
        value = headers.get(name)
        out[name] = value.strip()[:255] if value and value.strip() else new_request_id()
    return out


def request_headers(token, raw=False, correlation_id=None):
    """Headers for an outgoing OCPI request: Authorization, fresh X-Request-ID, correlation."""
    return {
        "Authorization": authorization_header(token, raw=raw),
        "X-Request-ID": new_request_id(),
        "X-Correlation-ID": correlation_id or new_request_id(),
        "Accept": "application/json",
    }


# --- pagination (transport_and_format: pagination) --------------------------------------------

_LINK_PART = re.compile(r'\s*<([^>]*)>\s*((?:;\s*[^;,]*)*)')
_LINK_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"([^"]*)"|([^\s;,]*))')


def parse_link_header(value):
    """``{rel: url}`` from an RFC 8288 ``Link`` header (``<url>; rel="next"``, several allowed).

    Empty or missing header -> ``{}``. A ``rel`` holding several space-separated values maps each
    of them. Unparseable parts are skipped.
    """
    links = {}
    if not value:
        return links
    pos = 0
    while pos < len(value):
        m = _LINK_PART.match(value, pos)
        if not m:
            nxt = value.find(",", pos)
            if nxt < 0:
                break
            pos = nxt + 1
            continue
        url, params = m.group(1).strip(), m.group(2) or ""
        for pm in _LINK_PARAM.finditer(params):
            if pm.group(1).lower() == "rel":
                rel = pm.group(2) if pm.group(2) is not None else pm.group(3)
                for r in rel.split():
                    links.setdefault(r.lower(), url)
        pos = m.end()
        while pos < len(value) and value[pos] in " ,":
            pos += 1
    return links


def parse_int_header(value):
    """Non-negative int of ``X-Total-Count``/``X-Limit``; ``None`` when absent or not a number."""
    if value is None:
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        return None
    return n if n >= 0 else None


def set_query_params(url, **params):
    """``url`` with the given query parameters replaced/added (``None`` removes one)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, _dt.datetime):
            v = format_datetime(v)
        query.append((k, str(v)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def query_param(url, name):
    for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if k == name:
            return v
    return None


def link_next_header(base_url, offset, limit, **filters):
    """``<base?offset=..&limit=..&filters>; rel="next"`` keeping the request's filters."""
    return '<%s>; rel="next"' % set_query_params(base_url, offset=offset, limit=limit, **filters)
