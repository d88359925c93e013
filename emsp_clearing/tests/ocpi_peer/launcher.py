"""Start/stop the extrawest-ocpi test peer (``peer.py``) as a separate process on loopback.

Standard library only: imported by the Odoo tests and by the Odoo-free pytest suite (by file
path). The peer runs in its own virtualenv (extrawest-ocpi pins pydantic 1, Odoo's Python must
not get it). Where that Python is:

1. ``$OCPI_PEER_PYTHON`` (a python executable), else
2. ``$OCPI_PEER_VENV/bin/python``, else
3. ``~/.ocpi-peer-venv/bin/python``.

Create it with (see the project README / scripts/setup)::

    python3 -m venv ~/.ocpi-peer-venv
    ~/.ocpi-peer-venv/bin/pip install extrawest-ocpi==2025.7.16 uvicorn==0.32.1

A missing peer is an error, not a skip: the ingestion proof against a real peer must not vanish
silently from a test run.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_SCRIPT = os.path.join(HERE, "peer.py")
SETUP_HINT = ("python3 -m venv ~/.ocpi-peer-venv && ~/.ocpi-peer-venv/bin/pip install "
              "extrawest-ocpi==2025.7.16 uvicorn==0.32.1 (or set OCPI_PEER_PYTHON / OCPI_PEER_VENV)")


class PeerUnavailable(RuntimeError):
    pass


def peer_python():
    if os.environ.get("OCPI_PEER_PYTHON"):
        return os.environ["OCPI_PEER_PYTHON"]
    venv = os.environ.get("OCPI_PEER_VENV") or os.path.expanduser("~/.ocpi-peer-venv")
    return os.path.join(venv, "bin", "python")


def check_peer_python():
    py = peer_python()
    if not os.path.exists(py):
        raise PeerUnavailable("OCPI test peer: no Python at %s. Create the peer venv: %s" % (py, SETUP_HINT))
    r = subprocess.run([py, "-c", "import py_ocpi, uvicorn; print(py_ocpi.__version__)"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise PeerUnavailable("OCPI test peer: %s cannot import py_ocpi/uvicorn (%s). %s"
                              % (py, r.stderr.strip().splitlines()[-1:] or "", SETUP_HINT))
    return py


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Peer:
    """A running peer. ``base`` is its root URL, ``versions_url`` its OCPI versions URL."""

    def __init__(self, cdrs=(), accept_tokens=(), max_limit=0, fail_offsets=(), fail_times=1,
                 fail_status=500, country_code="NL", party_id="CPO", default_limit=50):
        self.py = check_peer_python()
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.versions_url = self.base + "/ocpi/versions"
        self.cdrs_url = self.base + "/ocpi/cpo/2.2.1/cdrs/"
        self._tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(list(cdrs), self._tmp)
        self._tmp.close()
        self._log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        cmd = [self.py, PEER_SCRIPT, "--port", str(self.port), "--cdrs", self._tmp.name,
               "--max-limit", str(max_limit), "--fail-times", str(fail_times),
               "--fail-status", str(fail_status), "--country-code", country_code,
               "--party-id", party_id, "--default-limit", str(default_limit)]
        for t in accept_tokens:
            cmd += ["--accept-token", t]
        for off in fail_offsets:
            cmd += ["--fail-offset", str(off)]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=tempfile.gettempdir())
        self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PeerUnavailable("OCPI test peer exited (%s): %s" % (self.proc.returncode, self.log()))
            try:
                self.control("GET", "/control/state")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise PeerUnavailable("OCPI test peer did not start in %ss: %s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self._log.name, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def control(self, method, path, body=None, timeout=120):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def state(self):
        return self.control("GET", "/control/state")

    def register(self, versions_url, token_a, method="POST"):
        return self.control("POST", "/control/register",
                            {"versions_url": versions_url, "token_a": token_a, "method": method})

    def push(self, cdr_ids):
        return self.control("POST", "/control/push", {"cdr_ids": list(cdr_ids)})["results"]

    def add_cdrs(self, cdrs):
        return self.control("POST", "/control/cdrs", {"cdrs": list(cdrs)})

    def set_failures(self, fail_left):
        return self.control("POST", "/control/fail", {str(k): v for k, v in fail_left.items()})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for name in (self._tmp.name, self._log.name):
            try:
                os.unlink(name)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def make_cdrs(n, country_code="NL", party_id="CPO", start="2026-01-01T00:00:00", prefix="CDR",
              currency="EUR", step_seconds=60):
    """``n`` valid OCPI 2.2.1 CDRs (ids ``<prefix>000001``...), ``last_updated`` ascending."""
    import datetime as dt
    t0 = dt.datetime.fromisoformat(start)
    out = []
    for i in range(n):
        s = t0 + dt.timedelta(seconds=i * step_seconds)
        e = s + dt.timedelta(minutes=45)
        f = "%Y-%m-%dT%H:%M:%SZ"
        kwh = round(5 + (i % 40) * 0.75, 3)
        out.append({
            "country_code": country_code, "party_id": party_id, "id": "%s%06d" % (prefix, i + 1),
            "start_date_time": s.strftime(f), "end_date_time": e.strftime(f),
            "session_id": "S%06d" % (i + 1),
            "cdr_token": {"country_code": "DE", "party_id": "MSP", "uid": "TOK%05d" % (i % 977),
                          "type": "RFID", "contract_id": "DE-MSP-C%05d" % (i % 977)},
            "auth_method": "WHITELIST",
            "cdr_location": {"id": "LOC%03d" % (i % 50), "name": "Station %d" % (i % 50),
                             "address": "Main street %d" % (i % 50), "city": "Utrecht",
                             "postal_code": "3500", "country": "NLD",
                             "coordinates": {"latitude": "52.090736", "longitude": "5.121420"},
                             "evse_uid": "EVSE%04d" % (i % 200), "evse_id": "NL*CPO*E%04d" % (i % 200),
                             "connector_id": "1", "connector_standard": "IEC_62196_T2",
                             "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
            "currency": currency,
            "charging_periods": [{"start_date_time": s.strftime(f),
                                  "dimensions": [{"type": "ENERGY", "volume": kwh},
                                                 {"type": "TIME", "volume": 0.75}]}],
            "total_cost": {"excl_vat": round(kwh * 0.3, 2), "incl_vat": round(kwh * 0.3 * 1.21, 2)},
            "total_energy": kwh, "total_time": 0.75,
            "last_updated": (e + dt.timedelta(minutes=1)).strftime(f),
        })
    return out


if __name__ == "__main__":  # manual use: python launcher.py N -> serve N CDRs until Ctrl-C
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with Peer(make_cdrs(n), accept_tokens=["test-token"]) as p:
        print(p.versions_url, "token: test-token", flush=True)
        try:
            p.proc.wait()
        except KeyboardInterrupt:
            pass
