"""OCPI pull client: retries/back-off, pagination rules, resume; then against the real peer
(extrawest-ocpi in its own venv, run as a separate process — see emsp_clearing/tests/ocpi_peer)."""

import importlib.util
import json
import os

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from clearing_core.transport import client as oc
from clearing_core.transport import envelope as t

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _launcher():
    path = os.path.join(ROOT, "emsp_clearing", "tests", "ocpi_peer", "launcher.py")
    spec = importlib.util.spec_from_file_location("ocpi_peer_launcher", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class FakeResponse:
    def __init__(self, url, status, body, headers=None):
        self.url = url
        self.status_code = status
        self._body = body
        self.headers = CaseInsensitiveDict(headers or {})

    @property
    def content(self):
        """The body as bytes, as requests gives it (a Python value is written as JSON)."""
        if isinstance(self._body, bytes):
            return self._body
        if isinstance(self._body, str):
            return self._body.encode()
        return json.dumps(self._body).encode()


class FakeSession:
    """Answers from a list of callables/values, records the requests."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, params=None, json=None, headers=None, timeout=None):
        if params:
            url = t.set_query_params(url, **params)
        self.calls.append((method, url, headers, timeout))
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a(url) if callable(a) else a


def ok(data, headers=None):
    return lambda url: FakeResponse(url, 200, t.envelope(data), headers)


def client(session, **kw):
    kw.setdefault("retries", 2)
    return oc.OcpiClient("tok-B", session=session, sleep=lambda s: None, **kw)


def test_headers_and_token_encoding():
    s = FakeSession([ok([])])
    c = client(s, timeout=(1, 2))
    c.get("http://p/x")
    _, _, headers, timeout = s.calls[0]
    assert headers["Authorization"] == "Token " + t.encode_token("tok-B")
    assert headers["X-Request-ID"] and headers["X-Correlation-ID"] == c.correlation_id
    assert timeout == (1, 2)
    s = FakeSession([ok([])])
    client(s, raw_token=True).get("http://p/x")
    assert s.calls[0][2]["Authorization"] == "Token tok-B"


def test_retries_with_exponential_backoff_then_success():
    delays = []
    s = FakeSession([requests.Timeout("slow"), lambda u: FakeResponse(u, 502, "bad gateway"),
                     ok([1, 2])])
    c = oc.OcpiClient("tok", session=s, sleep=delays.append, retries=3, backoff=1.0)
    assert c.get("http://p/x").data == [1, 2]
    assert c.attempts == 3
    assert len(delays) == 2 and 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4


def test_retries_exhausted_is_retryable_error():
    s = FakeSession([lambda u: FakeResponse(u, 500, "x")] * 3)
    with pytest.raises(oc.OcpiClientError) as e:
        client(s).get("http://p/x")
    assert e.value.retryable and e.value.http_status == 500 and len(s.calls) == 3


def test_ocpi_3000_is_retried_2001_is_not():
    s = FakeSession([lambda u: FakeResponse(u, 200, t.envelope(status_code=3000)), ok("fine")])
    assert client(s).get("http://p/x").data == "fine"
    s = FakeSession([lambda u: FakeResponse(u, 200, t.envelope(status_code=2001))])
    with pytest.raises(oc.OcpiClientError) as e:
        client(s).get("http://p/x")
    assert e.value.status_code == 2001 and not e.value.retryable and len(s.calls) == 1


def test_auth_failure_not_retried():
    s = FakeSession([lambda u: FakeResponse(u, 401, t.envelope(status_code=2000))])
    with pytest.raises(oc.OcpiAuthFailed):
        client(s).get("http://p/x")
    assert len(s.calls) == 1


def test_not_ocpi_body():
    s = FakeSession([lambda u: FakeResponse(u, 200, "<html>")])
    with pytest.raises(oc.OcpiClientError):
        client(s).get("http://p/x")


def test_discover_and_unsupported_version():
    versions = [{"version": "2.1.1", "url": "http://p/2.1.1"}, {"version": "2.2.1", "url": "http://p/2.2.1"}]
    eps = {"version": "2.2.1", "endpoints": [{"identifier": "cdrs", "role": "SENDER", "url": "http://p/cdrs"}]}
    s = FakeSession([ok(versions), ok(eps)])
    url, endpoints = client(s).discover("http://p/versions")
    assert url == "http://p/2.2.1" and oc.find_endpoint(endpoints, "cdrs", "SENDER") == "http://p/cdrs"
    assert oc.find_endpoint(endpoints, "cdrs", "RECEIVER") is None
    s = FakeSession([ok(versions[:1])])
    with pytest.raises(oc.OcpiClientError) as e:
        client(s).discover("http://p/versions")
    assert e.value.status_code == 3002


def test_pages_follow_link_and_params():
    def page(items, nxt, total=5):
        h = {"X-Total-Count": str(total), "X-Limit": "2"}
        if nxt:
            h["Link"] = '<%s>; rel="next"' % nxt
        return ok(items, h)
    s = FakeSession([page([1, 2], "http://p/cdrs?offset=2&limit=2"),
                     page([3, 4], "http://p/cdrs?offset=4&limit=2"), page([5], None)])
    import datetime as dt
    pages = list(client(s).iter_cdr_pages("http://p/cdrs", date_from=dt.datetime(2026, 1, 1),
                                          date_to=dt.datetime(2026, 2, 1), limit=2))
    assert [p.items for p in pages] == [[1, 2], [3, 4], [5]]
    assert [p.fetched for p in pages] == [2, 4, 5] and pages[-1].next_url is None
    assert pages[0].total == 5 and pages[0].x_limit == 2
    first = s.calls[0][1]
    assert t.query_param(first, "date_from") == "2026-01-01T00:00:00Z"
    assert t.query_param(first, "date_to") == "2026-02-01T00:00:00Z"
    assert t.query_param(first, "limit") == "2"


def test_missing_link_continues_by_total_count():
    s = FakeSession([ok([1, 2], {"X-Total-Count": "3", "X-Limit": "2"}),
                     ok([3], {"X-Total-Count": "3", "X-Limit": "2"})])
    pages = list(client(s).iter_pages("http://p/cdrs"))
    assert [p.items for p in pages] == [[1, 2], [3]]
    assert t.query_param(s.calls[1][1], "offset") == "2"


def test_total_count_drop_rereads_earlier_offset():
    s = FakeSession([ok([1, 2], {"X-Total-Count": "6", "Link": '<http://p/c?offset=2&limit=2>; rel="next"'}),
                     ok([4, 5], {"X-Total-Count": "5", "Link": '<http://p/c?offset=4&limit=2>; rel="next"'}),
                     ok([3, 4], {"X-Total-Count": "5", "Link": '<http://p/c?offset=3&limit=2>; rel="next"'}),
                     ok([4, 5], {"X-Total-Count": "5"})])
    pages = list(client(s).iter_pages("http://p/c"))
    assert t.query_param(s.calls[2][1], "offset") == "1"
    got = [x for p in pages for x in p.items]
    assert sorted(set(got)) == [1, 2, 3, 4, 5]  # nothing missed; overlap is harmless (idempotent)


def test_pagination_that_does_not_advance_is_an_error():
    s = FakeSession([ok([1], {"Link": '<http://p/c>; rel="next"'})])
    with pytest.raises(oc.OcpiClientError):
        list(client(s).iter_pages("http://p/c"))
    s = FakeSession([ok([], {"Link": '<http://p/c?offset=5>; rel="next"'})])
    with pytest.raises(oc.OcpiClientError):
        list(client(s).iter_pages("http://p/c"))


# --- against the real peer ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def launcher():
    return _launcher()


def test_real_peer_pull_all_pages_with_server_cap(launcher):
    cdrs = launcher.make_cdrs(23)
    with launcher.Peer(cdrs, accept_tokens=["tok-B"], max_limit=5) as peer:
        c = oc.OcpiClient("tok-B", retries=1, backoff=0.01)
        details_url, endpoints = c.discover(peer.versions_url)
        url = oc.find_endpoint(endpoints, "cdrs", "SENDER")
        assert url == peer.cdrs_url
        pages = list(c.iter_cdr_pages(url, limit=10))
        ids = [x["id"] for p in pages for x in p.items]
        assert ids == [x["id"] for x in cdrs]  # every CDR once, in order
        assert len(pages) == 5 and all(p.x_limit == 5 and p.total == 23 for p in pages)


def test_real_peer_date_window(launcher):
    cdrs = launcher.make_cdrs(10, step_seconds=3600)
    import datetime as dt
    lo = dt.datetime.fromisoformat(cdrs[3]["last_updated"].replace("Z", "+00:00"))
    hi = dt.datetime.fromisoformat(cdrs[7]["last_updated"].replace("Z", "+00:00"))
    with launcher.Peer(cdrs, accept_tokens=["tok-B"]) as peer:
        c = oc.OcpiClient("tok-B")
        pages = list(c.iter_cdr_pages(peer.cdrs_url, date_from=lo, date_to=hi, limit=2))
        assert [x["id"] for p in pages for x in p.items] == [x["id"] for x in cdrs[3:7]]


def test_real_peer_failure_then_resume_from_stored_next(launcher):
    cdrs = launcher.make_cdrs(12)
    with launcher.Peer(cdrs, accept_tokens=["tok-B"], fail_offsets=[8], fail_times=3) as peer:
        c = oc.OcpiClient("tok-B", retries=1, backoff=0.01)
        got, stored_next = [], None
        with pytest.raises(oc.OcpiClientError) as e:
            for p in c.iter_cdr_pages(peer.cdrs_url, limit=4):
                got += [x["id"] for x in p.items]
                stored_next = p.next_url  # what the caller commits with the page
        assert e.value.retryable and len(got) == 8
        assert t.query_param(stored_next, "offset") == "8"
        # one failure left at the peer: the resumed run retries once and gets it
        c2 = oc.OcpiClient("tok-B", retries=1, backoff=0.01)
        for p in c2.iter_cdr_pages(peer.cdrs_url, start_url=stored_next):
            got += [x["id"] for x in p.items]
        assert got == [x["id"] for x in cdrs]


def test_real_peer_wrong_token(launcher):
    with launcher.Peer(launcher.make_cdrs(1), accept_tokens=["tok-B"]) as peer:
        with pytest.raises(oc.OcpiAuthFailed):
            list(oc.OcpiClient("wrong").iter_cdr_pages(peer.cdrs_url))
