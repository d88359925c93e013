"""OCPI 2.2.1 / 2.3.0 pull client (no Odoo): versions/endpoints discovery and negotiation, paginated CDR GET.

``iter_cdr_pages`` yields one :class:`Page` at a time so the caller can store each page and
commit its progress (the page's ``next_url``) before asking for the next one: after a failure the
caller resumes from the last stored ``next_url`` — no gap (the query window is fixed by
``date_to``) and no duplicate (CDR ingestion is idempotent anyway).

Transport rules (transport_and_format.asciidoc, pagination): ``date_from`` inclusive, ``date_to``
exclusive, ``offset``/``limit``; follow ``Link: <...>; rel="next"`` to the end; ``X-Total-Count``
and ``X-Limit`` read on every page (a total that drops while crawling makes the client re-read
with the offset lowered, as the spec advises; a missing Link while ``X-Total-Count`` says more
objects exist makes it continue by offset). Timeouts, retries with exponential back-off on
connection errors, timeouts, HTTP 5xx/429 and OCPI 3xxx; never on 4xx or 2xxx.
"""

import logging
import random
import time

import requests

from . import envelope as t
from .. import json_text
from ..ocpi import VERSIONS

_logger = logging.getLogger(__name__)


class OcpiClientError(Exception):
    """The peer could not be used; ``retryable`` tells whether a later run may succeed."""

    def __init__(self, message, url=None, http_status=None, status_code=None, retryable=False):
        super().__init__(message)
        self.url = url
        self.http_status = http_status
        self.status_code = status_code
        self.retryable = retryable


class OcpiAuthFailed(OcpiClientError):
    """HTTP 401/403: our token is not (or no longer) accepted by the peer."""


class Response:
    __slots__ = ("url", "http_status", "data", "status_code", "status_message", "headers")

    def __init__(self, url, http_status, data, status_code, status_message, headers):
        self.url = url
        self.http_status = http_status
        self.data = data
        self.status_code = status_code
        self.status_message = status_message
        self.headers = headers


class Page:
    """One page of a paginated GET.

    ``url`` what was fetched, ``items`` its data (raw JSON objects, not validated here),
    ``next_url`` where the next page is (``None`` on the last one), ``total`` (X-Total-Count),
    ``x_limit``, ``offset``, ``number`` (1-based within this run), ``fetched`` (objects so far in
    this run, this page included).
    """

    __slots__ = ("url", "items", "next_url", "total", "x_limit", "offset", "number", "fetched")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def __repr__(self):
        return "Page(#%s, offset=%s, %d items, total=%s, next=%s)" % (
            self.number, self.offset, len(self.items), self.total, self.next_url)


class OcpiClient:
    def __init__(self, token, raw_token=False, timeout=(10, 60), retries=3, backoff=1.0,
                 backoff_max=60.0, session=None, sleep=time.sleep, correlation_id=None):
        if not t.is_valid_token(token or ""):
            raise ValueError("a valid credentials token is needed to call the peer")
        self.token = token
        self.raw_token = raw_token
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.session = session or requests.Session()
        self.sleep = sleep
        self.correlation_id = correlation_id or t.new_request_id()
        self.attempts = 0  # HTTP requests made (retries included), for logs and tests

    # -- one request ---------------------------------------------------------------------------

    def _delay(self, attempt):
        d = min(self.backoff_max, self.backoff * (2 ** attempt))
        return d * (0.8 + 0.4 * random.random())

    def request(self, method, url, params=None, json_body=None, expect_success=True):
        last_error = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self._delay(attempt - 1)
                _logger.info("OCPI %s %s: retry %d/%d in %.1fs (%s)", method, url, attempt,
                             self.retries, delay, last_error)
                self.sleep(delay)
            self.attempts += 1
            headers = t.request_headers(self.token, raw=self.raw_token,
                                        correlation_id=self.correlation_id)
            try:
                r = self.session.request(method, url, params=params, json=json_body,
                                         headers=headers, timeout=self.timeout)
            except requests.Timeout as e:
                last_error = OcpiClientError("timeout: %s" % e, url=url, retryable=True)
                continue
            except requests.RequestException as e:
                last_error = OcpiClientError("connection error: %s" % e, url=url, retryable=True)
                continue
            if r.status_code in (401, 403):
                raise OcpiAuthFailed("HTTP %d: the peer refused our credentials token" % r.status_code,
                                     url=r.url, http_status=r.status_code)
            if r.status_code >= 500 or r.status_code == 429:
                last_error = OcpiClientError("HTTP %d from peer" % r.status_code, url=r.url,
                                             http_status=r.status_code, retryable=True)
                continue
            try:
                body = json_text.loads(r.content)
                data, code, message = t.unwrap_envelope(body)
            except ValueError as e:
                raise OcpiClientError("HTTP %d, not an OCPI response: %s" % (r.status_code, e),
                                      url=r.url, http_status=r.status_code)
            if 3000 <= code <= 3999:
                last_error = OcpiClientError("OCPI %d %s" % (code, message or ""), url=r.url,
                                             http_status=r.status_code, status_code=code, retryable=True)
                continue
            if r.status_code >= 400 or (expect_success and not t.is_success(code)):
                raise OcpiClientError("HTTP %d, OCPI %s %s" % (r.status_code, code, message or ""),
                                      url=r.url, http_status=r.status_code, status_code=code)
            return Response(r.url, r.status_code, data, code, message, r.headers)
        raise OcpiClientError("gave up after %d attempts: %s" % (self.retries + 1, last_error),
                              url=url, http_status=last_error.http_status,
                              status_code=last_error.status_code, retryable=True)

    def get(self, url, params=None):
        return self.request("GET", url, params=params)

    # -- versions module -------------------------------------------------------------------------

    def get_versions(self, versions_url):
        data = self.get(versions_url).data
        if not isinstance(data, list) or not all(isinstance(v, dict) and v.get("version") and v.get("url") for v in data):
            raise OcpiClientError("versions: data must be a list of {version, url}", url=versions_url)
        return data

    def get_version_details(self, url):
        data = self.get(url).data
        eps = data.get("endpoints") if isinstance(data, dict) else None
        if not isinstance(eps, list) or not all(isinstance(e, dict) and e.get("identifier") and e.get("url") for e in eps):
            raise OcpiClientError("version details: data.endpoints must be a list of "
                                  "{identifier, role, url}", url=url)
        return data

    def discover(self, versions_url, version=t.VERSION):
        """``(details_url, endpoints)`` of ``version`` at a peer; ``OcpiClientError`` with
        ``status_code`` 3002 when the peer does not offer that version."""
        versions = self.get_versions(versions_url)
        match = [v for v in versions if v["version"] == version]
        if not match:
            raise OcpiClientError("peer offers versions %s, not %s" % (
                ", ".join(str(v["version"]) for v in versions), version),
                url=versions_url, status_code=t.UNSUPPORTED_VERSION)
        details = self.get_version_details(match[0]["url"])
        return match[0]["url"], details["endpoints"]

    def negotiate(self, versions_url, ours=None):
        """``(version, details_url, endpoints)`` of the highest of ``ours`` (default: every
        version we speak, ``ocpi.VERSIONS``) that the peer offers; ``OcpiClientError`` with
        ``status_code`` 3002 when it offers none of them."""
        ours = tuple(ours or VERSIONS)
        versions = self.get_versions(versions_url)
        offered = {str(v["version"]): v["url"] for v in versions}
        for version in ours:
            if version in offered:
                details = self.get_version_details(offered[version])
                return version, offered[version], details["endpoints"]
        raise OcpiClientError("peer offers versions %s, none of %s" % (
            ", ".join(offered), ", ".join(ours)), url=versions_url,
            status_code=t.UNSUPPORTED_VERSION)

    # -- paginated GET ---------------------------------------------------------------------------

    def iter_pages(self, url, params=None, start_url=None, max_pages=100000):
        """Yield :class:`Page` objects from ``url`` (with ``params``) or from ``start_url``
        (a ``next`` link stored by an interrupted run), following the pagination to the end."""
        current = start_url or (t.set_query_params(url, **params) if params else url)
        fetched = 0
        prev_total = None
        seen = set()
        for number in range(1, max_pages + 1):
            resp = self.get(current)
            items = resp.data if resp.data is not None else []
            if not isinstance(items, list):
                raise OcpiClientError("paginated GET: data must be a list", url=current)
            total = t.parse_int_header(resp.headers.get("X-Total-Count"))
            x_limit = t.parse_int_header(resp.headers.get("X-Limit"))
            offset = t.parse_int_header(t.query_param(current, "offset")) or 0
            if prev_total is not None and total is not None and total < prev_total and offset > 0:
                # objects vanished from the window while crawling: re-read a little earlier
                back = max(0, offset - (prev_total - total))
                _logger.info("OCPI pagination: X-Total-Count dropped %s -> %s, re-reading from "
                             "offset %d", prev_total, total, back)
                prev_total = total
                current = t.set_query_params(current, offset=back)
                resp = self.get(current)
                items = resp.data if isinstance(resp.data, list) else []
                total = t.parse_int_header(resp.headers.get("X-Total-Count"))
                x_limit = t.parse_int_header(resp.headers.get("X-Limit"))
                offset = back
            prev_total = total if total is not None else prev_total
            fetched += len(items)
            nxt = t.parse_link_header(resp.headers.get("Link")).get("next")
            if not nxt and items and total is not None and offset + len(items) < total:
                # no Link although X-Total-Count says there is more: continue by offset
                nxt = t.set_query_params(current, offset=offset + len(items),
                                         limit=x_limit or len(items))
            if nxt:
                key = (nxt, len(items))
                if nxt == current or key in seen or not items:
                    raise OcpiClientError("pagination does not advance (next=%s after %d items)"
                                          % (nxt, len(items)), url=current)
                seen.add(key)
            yield Page(url=current, items=items, next_url=nxt, total=total, x_limit=x_limit,
                       offset=offset, number=number, fetched=fetched)
            if not nxt:
                return
            current = nxt
        raise OcpiClientError("pagination: more than %d pages" % max_pages, url=current)

    def iter_cdr_pages(self, cdrs_url, date_from=None, date_to=None, limit=None, start_url=None,
                       max_pages=100000):
        """Pages of the peer's CDRs sender endpoint for ``[date_from, date_to)``."""
        params = {}
        if date_from is not None:
            params["date_from"] = t.format_datetime(date_from)
        if date_to is not None:
            params["date_to"] = t.format_datetime(date_to)
        if limit:
            params["limit"] = int(limit)
        return self.iter_pages(cdrs_url, params=params, start_url=start_url, max_pages=max_pages)


def find_endpoint(endpoints, identifier, role=None):
    """URL of the endpoint ``identifier`` (and ``role`` when given) in a version details list."""
    for e in endpoints or ():
        if e.get("identifier") == identifier and (role is None or e.get("role") in (role, None)):
            return e.get("url")
    return None
