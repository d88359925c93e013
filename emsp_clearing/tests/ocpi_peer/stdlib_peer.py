"""A small OCPI peer (standard library only, in a thread of the test process) speaking the
versions it is given (2.2.1 and/or 2.3.0): what the tests of OCPI 2.3.0 need, since the
extrawest-ocpi peer (``peer.py``) only speaks 2.2.1.

It plays the CPO (or, with ``invoice_receiver``, an eMSP receiving our invoice reconciliation
records: POST/PUT on its ``invoicereconciliation`` Receiver, kept in ``records``): versions and version details (``credentials``, ``cdrs`` SENDER), a
paginated CDRs Sender (``offset``/``limit``/``date_from``/``date_to``, ``Link``,
``X-Total-Count``, ``X-Limit``) serving its CDRs in the form of the version asked for (the
page at an offset of ``fail_offsets`` answers HTTP ``fail_status`` its first ``fail_times``
times: a transient failure mid-pull; ``answers`` keeps ``(offset, HTTP status)`` of each page
served), and
``register``: the credentials Sender side of the handshake (GET our versions, pick the highest
version both speak, POST/PUT its credentials). It checks Token B on every call.
"""

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDER = ("2.3.0", "2.2.1")  # highest first


def _auth(token):
    return "Token " + base64.b64encode(token.encode()).decode()


class StdlibPeer:
    def __init__(self, cdrs, versions=ORDER, token_b="peer-token-b", max_limit=10,
                 convert=None, invoice_receiver=False, fail_offsets=(), fail_times=1,
                 fail_status=500):
        """``cdrs``: 2.2.1 CDR dicts; ``convert(cdr, version)``: their form in a version."""
        self.fail_left = {int(offset): fail_times for offset in fail_offsets}
        self.fail_status = fail_status
        self.answers = []  # (offset, HTTP status) of each CDR page asked for
        self.cdrs = cdrs
        self.versions = tuple(versions)
        self.token_b = token_b
        self.max_limit = max_limit
        self.convert = convert or (lambda cdr, version: cdr)
        self.requests = []
        self.token_c = None
        self.invoice_receiver = invoice_receiver
        self.records = {}  # id -> InvoiceReconciliationRecord received

    # ------------------------------------------------------------------ server
    def __enter__(self):
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                peer.requests.append(("GET", self.path))
                if self.headers.get("Authorization") != _auth(peer.token_b):
                    return self._send(401, {"status_code": 2000, "status_message": "Unauthorized",
                                            "timestamp": "2026-01-01T00:00:00Z"})
                url = urllib.parse.urlsplit(self.path)
                parts = [p for p in url.path.split("/") if p]
                if parts == ["versions"]:
                    return self._ok([{"version": v, "url": peer.base + "/" + v} for v in peer.versions])
                if len(parts) == 1 and parts[0] in peer.versions:
                    v = parts[0]
                    endpoints = [
                        {"identifier": "credentials", "role": "RECEIVER", "url": peer.base + "/%s/credentials" % v},
                        {"identifier": "cdrs", "role": "SENDER", "url": peer.base + "/%s/cdrs" % v}]
                    if peer.invoice_receiver and v != "2.2.1":
                        endpoints.append({"identifier": "invoicereconciliation", "role": "RECEIVER",
                                          "url": peer.base + "/%s/invoicereconciliation" % v})
                    return self._ok({"version": v, "endpoints": endpoints})
                if len(parts) == 2 and parts[0] in peer.versions and parts[1] == "cdrs":
                    return self._cdrs(parts[0], urllib.parse.parse_qs(url.query))
                return self._send(404, {"status_code": 2000, "status_message": "unknown",
                                        "timestamp": "2026-01-01T00:00:00Z"})

            def do_POST(self):
                return self._write("POST")

            def do_PUT(self):
                return self._write("PUT")

            def _write(self, method):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                peer.requests.append((method, self.path))
                if self.headers.get("Authorization") != _auth(peer.token_b):
                    return self._send(401, {"status_code": 2000, "status_message": "Unauthorized",
                                            "timestamp": "2026-01-01T00:00:00Z"})
                parts = [p for p in self.path.split("/") if p]
                if (peer.invoice_receiver and len(parts) >= 2 and parts[1] == "invoicereconciliation"
                        and (method == "POST") == (len(parts) == 2)):
                    if method == "PUT" and parts[2:] != [body["country_code"], body["party_id"], body["id"]]:
                        return self._send(200, {"status_code": 2001, "status_message": "URL/body",
                                                "timestamp": "2026-01-01T00:00:00Z"})
                    peer.records[body["id"]] = (method, body)
                    return self._send(201 if method == "POST" else 200, {
                        "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"})
                return self._send(404, {"status_code": 2000, "status_message": "unknown",
                                        "timestamp": "2026-01-01T00:00:00Z"})

            def _cdrs(self, version, query):
                def one(key, default=None):
                    return query.get(key, [default])[0]
                items = [c for c in peer.cdrs
                         if (one("date_from") is None or c["last_updated"] >= one("date_from"))
                         and (one("date_to") is None or c["last_updated"] < one("date_to"))]
                offset = int(one("offset", 0))
                if peer.fail_left.get(offset, 0) > 0:
                    peer.fail_left[offset] -= 1
                    peer.answers.append((offset, peer.fail_status))
                    return self._send(peer.fail_status, {
                        "status_code": 3000, "status_message": "injected failure",
                        "timestamp": "2026-01-01T00:00:00Z"})
                peer.answers.append((offset, 200))
                limit = min(int(one("limit", peer.max_limit)), peer.max_limit)
                page = [peer.convert(c, version) for c in items[offset:offset + limit]]
                headers = {"X-Total-Count": str(len(items)), "X-Limit": str(limit)}
                if offset + limit < len(items):
                    params = {k: v[0] for k, v in query.items()}
                    params.update(offset=offset + limit, limit=limit)
                    headers["Link"] = '<%s/%s/cdrs?%s>; rel="next"' % (
                        peer.base, version, urllib.parse.urlencode(params))
                return self._ok(page, headers)

            def _ok(self, data, headers=None):
                return self._send(200, {"data": data, "status_code": 1000,
                                        "timestamp": "2026-01-01T00:00:00Z"}, headers)

            def _send(self, status, body, headers=None):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.versions_url = self.base + "/versions"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def cdrs_url(self, version):
        return "%s/%s/cdrs" % (self.base, version)

    # ------------------------------------------------------------------ client side
    def call(self, method, url, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": _auth(token), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), dict(e.headers)

    def register(self, our_versions_url, token, method="POST"):
        """The handshake as credentials Sender with ``token`` (Token A, or C for PUT)."""
        _s, versions, _h = self.call("GET", our_versions_url, token)
        offered = {v["version"]: v["url"] for v in versions["data"]}
        version = next(v for v in self.versions if v in offered)
        _s, details, _h = self.call("GET", offered[version], token)
        creds_url = next(e["url"] for e in details["data"]["endpoints"]
                         if e["identifier"] == "credentials")
        status, body, _h = self.call(method, creds_url, token, {
            "token": self.token_b, "url": self.versions_url,
            "roles": [{"role": "CPO", "country_code": "NL", "party_id": "CPO",
                       "business_details": {"name": "Stdlib Peer CPO"}}]})
        if body and body.get("status_code") == 1000:
            self.token_c = body["data"]["token"]
        return {"status": status, "body": body, "version": version, "details": details["data"]}
