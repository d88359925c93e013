"""OCPI transport helpers: envelope, status codes, Authorization tokens, Link/pagination."""

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest

from clearing_core.transport import envelope as t

UTC = dt.timezone.utc


def test_timestamp_and_date_format():
    assert t.format_datetime(dt.datetime(2015, 6, 29, 21, 39, 9, tzinfo=UTC)) == "2015-06-29T21:39:09Z"
    # naive = UTC; other offsets converted to UTC
    assert t.format_datetime(dt.datetime(2015, 6, 29, 21, 39, 9)) == "2015-06-29T21:39:09Z"
    paris = dt.timezone(dt.timedelta(hours=2))
    assert t.format_datetime(dt.datetime(2015, 6, 29, 23, 39, 9, tzinfo=paris)) == "2015-06-29T21:39:09Z"
    assert t.format_datetime(dt.datetime(2015, 6, 29, 21, 39, 9, 123456, tzinfo=UTC)) == "2015-06-29T21:39:09.123Z"
    assert t.timestamp(dt.datetime(2020, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2020-01-02T03:04:05Z"
    assert len(t.timestamp()) == 20


def test_envelope_success_and_error():
    now = dt.datetime(2015, 6, 30, 21, 59, 59, tzinfo=UTC)
    ok = t.envelope({"a": 1}, now=now)
    assert ok == {"data": {"a": 1}, "status_code": 1000, "status_message": "Generic success code",
                  "timestamp": "2015-06-30T21:59:59Z"}
    # the spec's error example: no data field
    err = t.envelope(status_code=2001, status_message="Missing required field: type", now=now)
    assert err == {"status_code": 2001, "status_message": "Missing required field: type",
                   "timestamp": "2015-06-30T21:59:59Z"}
    assert "data" not in err
    # explicit None data is kept (the caller asked for it)
    assert t.envelope(None, now=now)["data"] is None
    for code, msg in [(2000, "Generic client error"), (2002, "Not enough information"),
                      (2003, "Unknown Location"), (2004, "Unknown Token"),
                      (3000, "Generic server error"), (3001, "Unable to use the client's API"),
                      (3002, "Unsupported version")]:
        assert t.envelope(status_code=code)["status_message"] == msg
    with pytest.raises(ValueError):
        t.envelope(status_code=200)
    with pytest.raises(ValueError):
        t.envelope(status_code="1000")


def test_envelope_bytes_serialises_decimals():
    body = json.loads(t.envelope_bytes({"x": Decimal("4.40"), "n": Decimal("3")}))
    assert body["data"] == {"x": 4.4, "n": 3}
    assert body["status_code"] == 1000


def test_is_success():
    assert t.is_success(1000) and t.is_success(1999)
    assert not t.is_success(2001) and not t.is_success(None) and not t.is_success(3000)


def test_parse_json_body():
    assert t.parse_json_body(b'{"a": [1]}') == {"a": [1]}
    for bad in [b"", b"   ", b"{", b"\xff\xfe", b"{'a': 1}", "not json"]:
        with pytest.raises(t.OcpiBadJson):
            t.parse_json_body(bad)


def test_unwrap_envelope():
    assert t.unwrap_envelope({"data": [1], "status_code": 1000}) == ([1], 1000, None)
    with pytest.raises(ValueError):
        t.unwrap_envelope([])
    with pytest.raises(ValueError):
        t.unwrap_envelope({"data": []})
    with pytest.raises(ValueError):
        t.unwrap_envelope({"status_code": True})


def test_authorization_base64_roundtrip():
    token = "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2"
    header = t.authorization_header(token)
    assert header == "Token " + base64.b64encode(token.encode()).decode()
    parsed = t.parse_authorization(header)
    assert parsed.decoded == token
    assert parsed.candidates() == [token]
    # the raw value is only a candidate when the connection allows raw tokens
    assert parsed.candidates(allow_raw=True) == [token, parsed.value]


def test_authorization_spec_example_with_trailing_newline():
    # transport_and_format: 'Token ZXhhbXBsZS10b2tlbgo=' is base64 of "example-token\n"
    assert t.parse_authorization("Token ZXhhbXBsZS10b2tlbgo=").decoded == "example-token"


def test_authorization_raw_token():
    parsed = t.parse_authorization("Token ebf3b399-779f-4497-9b9d-ac6ad3cc44d2")
    assert parsed.decoded is None  # '-' is not in the base64 alphabet
    assert parsed.candidates() == []
    assert parsed.candidates(allow_raw=True) == ["ebf3b399-779f-4497-9b9d-ac6ad3cc44d2"]
    assert t.authorization_header("abc", raw=True) == "Token abc"


def test_authorization_case_and_spaces():
    enc = t.encode_token("tok")
    assert t.parse_authorization("token  %s " % enc).decoded == "tok"
    assert t.parse_authorization("TOKEN %s" % enc).decoded == "tok"


@pytest.mark.parametrize("header", [None, "", "   ", "Token", "Token ", "Bearer abc",
                                    "Basic dXNlcjpwYXNz", "Token a b"])
def test_authorization_malformed(header):
    with pytest.raises(t.OcpiAuthError):
        t.parse_authorization(header)


def test_authorization_base64_of_invalid_token_is_not_a_candidate():
    # base64 of a token with a space (not printable non-whitespace ASCII) and of non-UTF-8 bytes
    bad = base64.b64encode(b"has space").decode()
    assert t.parse_authorization("Token " + bad).decoded is None
    assert t.parse_authorization("Token " + base64.b64encode(b"\xff\xfe").decode()).decoded is None
    assert t.parse_authorization("Token " + base64.b64encode(b"x" * 65).decode()).decoded is None


def test_generate_and_hash_tokens():
    a, b = t.generate_token(), t.generate_token()
    assert a != b and t.is_valid_token(a) and len(a) <= 64
    assert t.hash_token(a) == t.hash_token(a) != t.hash_token(b)
    assert len(t.hash_token(a)) == 64 and a not in t.hash_token(a)
    assert t.tokens_equal(a, a) and not t.tokens_equal(a, b)
    assert not t.is_valid_token("") and not t.is_valid_token("a b") and not t.is_valid_token(None)
    assert not t.is_valid_token("é")


def test_echo_ids():
    got = t.echo_ids({"X-Request-ID": "r-1", "X-Correlation-ID": "c-1"})
    assert got == {"X-Request-ID": "r-1", "X-Correlation-ID": "c-1"}
    gen = t.echo_ids({})
    assert len(gen["X-Request-ID"]) == 36 and len(gen["X-Correlation-ID"]) == 36
    h = t.request_headers("tok", correlation_id="c-9")
    assert h["Authorization"] == "Token " + t.encode_token("tok")
    assert h["X-Correlation-ID"] == "c-9" and h["X-Request-ID"]
    assert t.request_headers("tok", raw=True)["Authorization"] == "Token tok"


def test_parse_link_header():
    spec = '<https://www.server.com/ocpi/cpo/2.2.1/cdrs/?offset=150&limit=50>; rel="next"'
    assert t.parse_link_header(spec) == {"next": "https://www.server.com/ocpi/cpo/2.2.1/cdrs/?offset=150&limit=50"}
    many = '<http://a/?p=1>; rel="prev", <http://a/?p=3>; rel=next; title="x"'
    assert t.parse_link_header(many) == {"prev": "http://a/?p=1", "next": "http://a/?p=3"}
    assert t.parse_link_header('<http://a/x>; rel="next last"') == {"next": "http://a/x", "last": "http://a/x"}
    assert t.parse_link_header("") == {}
    assert t.parse_link_header(None) == {}
    assert t.parse_link_header("garbage") == {}
    assert t.parse_link_header('<http://a/x>; title="no rel"') == {}


def test_int_headers():
    assert t.parse_int_header("150") == 150
    assert t.parse_int_header(" 7 ") == 7
    assert t.parse_int_header(None) is None
    assert t.parse_int_header("x") is None
    assert t.parse_int_header("-1") is None


def test_query_params_and_next_link():
    url = t.set_query_params("https://h/cdrs/?date_from=2019-01-01T00:00:00Z&offset=0",
                             offset=50, limit=50, date_to=dt.datetime(2019, 1, 2, tzinfo=UTC))
    assert t.query_param(url, "offset") == "50"
    assert t.query_param(url, "limit") == "50"
    assert t.query_param(url, "date_from") == "2019-01-01T00:00:00Z"
    assert t.query_param(url, "date_to") == "2019-01-02T00:00:00Z"
    assert t.query_param(t.set_query_params(url, date_to=None), "date_to") is None
    link = t.link_next_header("https://h/cdrs/", 100, 100, date_from="2016-01-01T00:00:00Z")
    assert t.parse_link_header(link)["next"] == \
        "https://h/cdrs/?offset=100&limit=100&date_from=2016-01-01T00%3A00%3A00Z"
