"""A real, independent OCPI 2.2.1 CPO for the tests: extrawest-ocpi (``py_ocpi``) on loopback.

Run with the peer venv's Python (extrawest-ocpi pins pydantic 1, so it lives in its own venv,
never in Odoo's interpreter; see ``launcher.py``)::

    <peer python> peer.py --port 8199 --cdrs cdrs.json [--accept-token TOKEN_B] [--max-limit 50]
                          [--fail-offset 100 --fail-times 3] [--country-code NL --party-id CPO]

What is extrawest-ocpi's own code, what is ours:

* ``py_ocpi.get_application`` builds the FastAPI app with its routers: ``GET /ocpi/versions``,
  ``GET /ocpi/2.2.1/details``, the CPO credentials module ``/ocpi/cpo/2.2.1/credentials/`` and the
  CDRs *sender* ``GET /ocpi/cpo/2.2.1/cdrs/`` (its ``get_list`` writes ``Link``/``X-Total-Count``/
  ``X-Limit``). Its ``Authenticator`` checks the tokens we present, its pydantic ``Cdr`` model
  re-validates every CDR it serves or pushes, and pushing uses its client side
  (``py_ocpi.core.push.push_object``: GET our version details with Token C, find our CDRs
  RECEIVER endpoint, POST the CDR with ``Authorization: Token <base64>``).
* This file supplies what the library leaves to its user: the ``Crud`` (a JSON data set in
  memory), the ``Authenticator`` token lists and an ``Adapter``.
* Worked around (extrawest-ocpi 2025.7.16 limitations, each marked ``WORKAROUND`` below):
  its ``CdrLocation`` lacks ``evse_uid`` (required by OCPI 2.2.1, so pydantic would silently drop
  it); its ``get_list`` writes ``https://`` into the ``Link`` URL whatever ``PROTOCOL`` says; it
  puts ``date_from=None`` into the next link when a filter was not given (the next page then fails
  validation); it never caps ``limit`` (so ``X-Limit`` can only echo the request).
* Plain FastAPI, because the library has no such thing: the credentials *sender* side
  (``POST /control/register`` — the peer registers at our credentials endpoint with Token A, the
  way a partner does), one-shot failures of a page (``--fail-offset``) for the resume test, and
  ``/control/*`` harness endpoints (loopback test control only, not OCPI).
"""

import argparse
import asyncio
import json
import os
import secrets
import sys


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--cdrs", help="JSON file: array of OCPI CDR objects this CPO owns")
    p.add_argument("--country-code", default="NL")
    p.add_argument("--party-id", default="CPO")
    p.add_argument("--accept-token", action="append", default=[],
                   help="credentials token the peer accepts from us (our Token B use)")
    p.add_argument("--max-limit", type=int, default=0,
                   help="server-side cap of 'limit' (0 = no cap), shown in X-Limit")
    p.add_argument("--default-limit", type=int, default=50)
    p.add_argument("--fail-offset", type=int, action="append", default=[],
                   help="answer HTTP --fail-status for the CDR page at this offset")
    p.add_argument("--fail-times", type=int, default=1, help="how many times each page fails")
    p.add_argument("--fail-status", type=int, default=500)
    return p.parse_args(argv)


ARGS = _parse_args(sys.argv[1:]) if __name__ == "__main__" else None

# py_ocpi reads its settings from the environment when it is imported.
if ARGS is not None:
    os.environ.update({
        "OCPI_HOST": "%s:%d" % (ARGS.host, ARGS.port),
        "PROTOCOL": "http",
        "OCPI_PREFIX": "ocpi",
        "COUNTRY_CODE": ARGS.country_code,
        "PARTY_ID": ARGS.party_id,
        # CiStrings are case-insensitive; the library lower-cases them by default, which would
        # rewrite every id. Upper case keeps our (upper-case) test data as it is.
        "CI_STRING_LOWERCASE_PREFERENCE": "false",
        "ENVIRONMENT": "production",
    })

import httpx  # noqa: E402  (peer venv: extrawest-ocpi depends on it)
import uvicorn  # noqa: E402
from fastapi import HTTPException, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from py_ocpi import get_application  # noqa: E402
from py_ocpi.core import status as ocpi_status  # noqa: E402
from py_ocpi.core.adapter import BaseAdapter  # noqa: E402
from py_ocpi.core.authentication.authenticator import Authenticator  # noqa: E402
from py_ocpi.core.crud import Crud  # noqa: E402
from py_ocpi.core.data_types import CiString, DateTime  # noqa: E402
from py_ocpi.core.dependencies import pagination_filters  # noqa: E402
from py_ocpi.core.enums import ModuleID, RoleEnum  # noqa: E402
from py_ocpi.core.push import push_object  # noqa: E402
from py_ocpi.core.schemas import Push, Receiver  # noqa: E402
from py_ocpi.modules.cdrs.v_2_2_1.schemas import Cdr, CdrLocation  # noqa: E402
from py_ocpi.modules.credentials.v_2_2_1.schemas import Credentials  # noqa: E402
from py_ocpi.modules.versions.enums import VersionNumber  # noqa: E402


# WORKAROUND: extrawest-ocpi's CdrLocation has no evse_uid (OCPI 2.2.1 mod_cdrs: CdrLocation.
# evse_uid, CiString(36), card. 1); pydantic 1 drops unknown fields, so without this the CDRs it
# serves/pushes would be invalid OCPI. The Adapter is the library's extension point for this.
class CdrLocation221(CdrLocation):
    evse_uid: CiString(36)  # type: ignore


class Cdr221(Cdr):
    cdr_location: CdrLocation221


class PeerAdapter(BaseAdapter):
    @classmethod
    def cdr_adapter(cls, data, version=VersionNumber.latest):
        return Cdr221(**data)


class State:
    def __init__(self, args):
        self.args = args
        self.cdrs = []
        if args.cdrs:
            with open(args.cdrs, encoding="utf-8") as f:
                self.cdrs = json.load(f)
        # validate the data set with the library's model up front: a bad fixture fails loudly
        for i, c in enumerate(self.cdrs):
            Cdr221(**c)
        self.accepted_tokens = list(args.accept_token)
        self.token_a = secrets.token_urlsafe(24)  # for a party registering at us (unused by tests)
        self.fail_left = {off: args.fail_times for off in args.fail_offset}
        self.requests = []  # every CDR page request: query params + answer, for the tests
        self.registration = None  # our view of the eMSP after /control/register
        self.own_token_b = None

    def credentials(self, token):
        return {
            "token": token,
            "url": "http://%s:%d/ocpi/versions" % (self.args.host, self.args.port),
            "roles": [{
                "role": "CPO",
                "party_id": self.args.party_id,
                "country_code": self.args.country_code,
                "business_details": {"name": "extrawest-ocpi test CPO"},
            }],
        }


STATE = None


class PeerAuthenticator(Authenticator):
    @classmethod
    async def get_valid_token_c(cls):
        return STATE.accepted_tokens

    @classmethod
    async def get_valid_token_a(cls):
        return [STATE.token_a]


def _sort_key(c):
    return (c["last_updated"], c["id"])


def _as_utc(s):
    # DateTime normalises to '...Z' (or an offset); compare as aware datetimes
    import datetime as dt
    v = str(DateTime.validate(s if isinstance(s, str) else s.isoformat()))
    return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))


class PeerCrud(Crud):
    @classmethod
    async def get(cls, module, role, id, *args, **kwargs):
        if module == ModuleID.credentials_and_registration:
            return STATE.credentials(id)
        if module == ModuleID.cdrs:
            for c in STATE.cdrs:
                if c["id"].upper() == str(id).upper():
                    return c
        return None

    @classmethod
    async def list(cls, module, role, filters, *args, **kwargs):
        if module != ModuleID.cdrs:
            return [], 0, True
        items = STATE.cdrs
        if filters.get("date_from"):
            lo = _as_utc(filters["date_from"])
            items = [c for c in items if _as_utc(c["last_updated"]) >= lo]
        if filters.get("date_to"):
            hi = _as_utc(filters["date_to"])
            items = [c for c in items if _as_utc(c["last_updated"]) < hi]
        items = sorted(items, key=_sort_key)  # oldest first: stable pages
        off, lim = filters["offset"], filters["limit"]
        page = items[off:off + lim]
        return page, len(items), off + lim >= len(items)

    @classmethod
    async def create(cls, module, role, data, *args, **kwargs):
        raise NotImplementedError("the test CPO accepts no registration at its own endpoint")

    @classmethod
    async def update(cls, module, role, data, id, *args, **kwargs):
        raise NotImplementedError

    @classmethod
    async def delete(cls, module, role, id, *args, **kwargs):
        raise NotImplementedError

    @classmethod
    async def do(cls, module, role, action, *args, data=None, **kwargs):
        return None


# WORKAROUND: pagination_filters puts every filter (None included) into the next Link and never
# caps the limit; this replacement keeps only the filters given and applies --max-limit, so
# get_list's Link and X-Limit come out right.
def peer_pagination_filters(request: Request):
    q = request.query_params
    out = {}
    for key in ("date_from", "date_to"):
        if q.get(key):
            out[key] = str(DateTime.validate(q[key]))
    try:
        out["offset"] = max(0, int(q.get("offset", 0)))
        limit = int(q.get("limit", STATE.args.default_limit))
    except ValueError:
        raise HTTPException(400, "offset and limit must be integers")
    if limit <= 0:
        limit = STATE.args.default_limit
    if STATE.args.max_limit:
        limit = min(limit, STATE.args.max_limit)
    out["limit"] = limit
    return out


def build_app():
    app = get_application(
        version_numbers=[VersionNumber.v_2_2_1],
        roles=[RoleEnum.cpo],
        crud=PeerCrud,
        modules=[ModuleID.credentials_and_registration, ModuleID.cdrs],
        authenticator=PeerAuthenticator,
        adapter=PeerAdapter,
    )
    app.dependency_overrides[pagination_filters] = peer_pagination_filters

    @app.middleware("http")
    async def cdr_pages(request: Request, call_next):
        path = request.url.path.rstrip("/")
        is_cdrs = request.method == "GET" and path == "/ocpi/cpo/2.2.1/cdrs"
        if is_cdrs:
            q = dict(request.query_params)
            entry = {"query": q}
            STATE.requests.append(entry)
            off = int(q.get("offset", 0) or 0)
            # Plain FastAPI: a transient server failure of one page (the library has none).
            if STATE.fail_left.get(off, 0) > 0:
                STATE.fail_left[off] -= 1
                entry["answer"] = STATE.args.fail_status
                return JSONResponse({"status_code": 3000, "status_message": "injected failure",
                                     "timestamp": DateTime.validate("2000-01-01T00:00:00Z")},
                                    status_code=STATE.args.fail_status)
        response = await call_next(request)
        if is_cdrs:
            entry["answer"] = response.status_code
            link = response.headers.get("link")
            # WORKAROUND: get_list hard-codes https:// in the Link URL, and on Python 3.11 its
            # f-string renders the enums as ".../cpo/VersionNumber.v_2_2_1/ModuleID.cdrs/".
            # Keep its query string (offset, limit, filters), put back this endpoint's URL.
            if link and link.startswith("<") and "?" in link:
                query = link[1:link.index(">")].split("?", 1)[1]
                response.headers["link"] = '<%s?%s>; rel="next"' % (
                    str(request.url).split("?", 1)[0], query)
            if not link:
                del response.headers["link"]  # last page: no Link at all (get_list sends "")
            entry["link"] = response.headers.get("link")
            entry["total"] = response.headers.get("x-total-count")
            entry["x_limit"] = response.headers.get("x-limit")
        return response

    @app.get("/control/state")
    async def control_state():
        return {"requests": STATE.requests, "registration": STATE.registration,
                "cdr_count": len(STATE.cdrs), "fail_left": STATE.fail_left,
                "accepted_tokens": len(STATE.accepted_tokens)}

    @app.post("/control/cdrs")
    async def control_add_cdrs(request: Request):
        body = await request.json()
        for c in body["cdrs"]:
            Cdr221(**c)
        STATE.cdrs.extend(body["cdrs"])
        return {"cdr_count": len(STATE.cdrs)}

    @app.post("/control/fail")
    async def control_fail(request: Request):
        body = await request.json()
        STATE.fail_left = {int(k): int(v) for k, v in body.items()}
        return {"fail_left": STATE.fail_left}

    @app.post("/control/register")
    async def control_register(request: Request):
        """Register at the eMSP as the credentials Sender (credentials.asciidoc, Registration).

        Plain httpx: extrawest-ocpi implements the credentials *server* only. Body:
        ``{"versions_url": ..., "token_a": ..., "method": "POST"|"PUT"}``.
        """
        body = await request.json()
        token_b = secrets.token_urlsafe(32)
        STATE.accepted_tokens.append(token_b)
        STATE.own_token_b = token_b
        use_token = body["token_a"] if body.get("method", "POST") == "POST" else STATE.registration["token_c"]
        auth = {"Authorization": "Token " + _b64(use_token), "X-Request-ID": secrets.token_hex(8),
                "X-Correlation-ID": secrets.token_hex(8)}
        result = {"steps": []}
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.get(body["versions_url"], headers=auth)
            result["steps"].append({"get": body["versions_url"], "status": r.status_code,
                                    "body": r.text[:2000]})
            if r.status_code != 200:
                return dict(result, status=r.status_code, body=r.text)
            versions = r.json()["data"]
            url = next(v["url"] for v in versions if v["version"] == "2.2.1")
            r = await client.get(url, headers=auth)
            result["steps"].append({"get": url, "status": r.status_code, "body": r.text[:2000]})
            if r.status_code != 200:
                return dict(result, status=r.status_code, body=r.text)
            endpoints = r.json()["data"]["endpoints"]
            cred_url = next(e["url"] for e in endpoints if e["identifier"] == "credentials")
            # our credentials object, validated by the library's own model
            creds = Credentials(**STATE.credentials(token_b)).dict()
            r = await client.request(body.get("method", "POST"), cred_url, headers=auth, json=creds)
            result["steps"].append({"post": cred_url, "status": r.status_code})
            result["status"] = r.status_code
            result["headers"] = dict(r.headers)
            try:
                result["body"] = r.json()
            except ValueError:
                result["body"] = r.text
        data = result["body"].get("data") if isinstance(result["body"], dict) else None
        if r.status_code == 200 and isinstance(data, dict) and data.get("token"):
            Credentials(**data)  # their answer must be a valid OCPI credentials object
            STATE.registration = {"token_c": data["token"], "details_url": url,
                                  "endpoints": endpoints, "credentials": data}
        result["token_b"] = token_b
        return result

    @app.post("/control/push")
    async def control_push(request: Request):
        """Push CDRs of the data set to the eMSP's CDRs receiver with the library's client."""
        body = await request.json()
        reg = STATE.registration
        out = []
        for cdr_id in body["cdr_ids"]:
            push = Push(module_id=ModuleID.cdrs, object_id=cdr_id,
                        receivers=[Receiver(endpoints_url=reg["details_url"], auth_token=reg["token_c"])])
            res = await push_object(VersionNumber.v_2_2_1, push, PeerCrud, PeerAdapter)
            rr = res.receiver_responses[0]
            out.append({"id": cdr_id, "status": rr.status_code,
                        "location": rr.response.get("location")})
        # read each CDR back through the Location URL, as the spec allows the CPO to
        async with httpx.AsyncClient(timeout=30) as client:
            for item in out:
                if item["location"]:
                    r = await client.get(item["location"], headers={"Authorization": "Token " + _b64(reg["token_c"])})
                    item["get_status"] = r.status_code
                    item["get_body"] = r.json()
        return {"results": out}

    return app


def _b64(token):
    import base64
    return base64.b64encode(token.encode()).decode()


def main():
    global STATE
    STATE = State(ARGS)
    app = build_app()
    config = uvicorn.Config(app, host=ARGS.host, port=ARGS.port, log_level="warning",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    print("READY %d" % ARGS.port, flush=True)
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
