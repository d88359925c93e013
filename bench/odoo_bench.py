"""Shared by the benchmarks that run Odoo (bench_ingest.py, bench_period.py): the addons
path, Odoo's command-line arguments, scratch databases and free loopback ports.

PostgreSQL from PGHOST/PGPORT/PGUSER (default 127.0.0.1/5432/you); Odoo 18 importable."""

import getpass
import importlib.util
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG = {"host": os.environ.get("PGHOST", "127.0.0.1"), "port": os.environ.get("PGPORT", "5432"),
      "user": os.environ.get("PGUSER") or getpass.getuser()}

_ADDONS = []


def addons_path():
    """Odoo's addons directories + this repository, computed once (parsing Odoo's
    configuration later adds its data directory to odoo.addons.__path__)."""
    if _ADDONS:
        return _ADDONS[0]
    import odoo.addons
    paths = []
    for p in list(odoo.addons.__path__):
        p = os.path.abspath(p)
        if os.path.isdir(p) and p not in paths:
            paths.append(p)
    root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.__file__)))
    if os.path.isdir(os.path.join(root, "addons", "web")):
        paths.append(os.path.join(root, "addons"))
    paths.append(REPO)
    _ADDONS.append(",".join(paths))
    return _ADDONS[0]


def odoo_args(db):
    return ["-d", db, "--db_host", PG["host"], "--db_port", PG["port"], "--db_user", PG["user"],
            "--addons-path", addons_path()]


def pg_connect(db="postgres"):
    import psycopg2
    return psycopg2.connect(dbname=db, **PG)


def pg_exec(sql, db="postgres"):
    conn = pg_connect(db)
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


_LAUNCHER = []


def launcher():
    """The test peer's launcher module (``emsp_clearing/tests/ocpi_peer/launcher.py``: no Odoo
    import): realistic CDRs (``make_cdrs``) and ``free_port``."""
    if not _LAUNCHER:
        spec = importlib.util.spec_from_file_location(
            "bench_launcher", os.path.join(REPO, "emsp_clearing", "tests", "ocpi_peer", "launcher.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _LAUNCHER.append(mod)
    return _LAUNCHER[0]


def free_port():
    return launcher().free_port()


def create_db(db, template=None):
    """A scratch database (cloned from ``template`` when given) with emsp_clearing installed
    without demo data."""
    pg_exec('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    if template:
        pg_exec('CREATE DATABASE "%s" TEMPLATE "%s"' % (db, template))
    print("installing emsp_clearing in %s ..." % db, flush=True)
    t = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "odoo", *odoo_args(db), "-i", "emsp_clearing",
         "--without-demo=all", "--stop-after-init", "--log-level=warn",
         "--max-cron-threads=0", "--http-port", str(free_port())],
        check=True, stdout=subprocess.DEVNULL,
    )
    print("scratch database %s ready (%.0fs)" % (db, time.monotonic() - t), flush=True)


def drop_db(db):
    """Drop the scratch database ``db`` and its filestore."""
    pg_exec('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    subprocess.run(["rm", "-rf", os.path.expanduser("~/.local/share/Odoo/filestore/%s" % db)],
                   check=False)


def bench_parties(env):
    """Our company = the eMSP DE*MSP; the CPO NL*CPO; a 21 % purchase VAT; EUR active.
    Returns ``(company, cpo, tax)``."""
    company = env.company
    company.partner_id.write({"ocpi_country_code": "DE", "ocpi_party_id": "MSP",
                              "ocpi_is_emsp": True})
    env.ref("base.EUR").active = True
    cpo = env["res.partner"].create({"name": "Bench CPO", "is_company": True,
                                     "ocpi_country_code": "NL", "ocpi_party_id": "CPO",
                                     "ocpi_is_cpo": True})
    tax = env["account.tax"].create({"name": "Bench VAT 21%", "amount": 21.0,
                                     "amount_type": "percent", "type_tax_use": "purchase",
                                     "company_id": company.id})
    return company, cpo, tax


def bench_contract(env, cpo, tax, date_start="2015-01-01", price=0.30):
    """An active eMSP-side contract with ``cpo`` in EUR: ``price``/kWh + 1.00/h, VAT ``tax``."""
    from odoo import Command
    contract = env["clearing.contract"].create({
        "partner_id": cpo.id, "role": "emsp", "currency_id": env.ref("base.EUR").id,
        "date_start": date_start, "tz": "Europe/Amsterdam",
        "tax_ids": [Command.set(tax.ids)],
        "price_line_ids": [Command.create({"dimension": "ENERGY", "price": price}),
                           Command.create({"dimension": "TIME", "price": 1.0})]})
    contract.action_activate()
    return contract


_CONFIGURED = []


def registry_of(db):
    """The Odoo registry of ``db`` in this process (Odoo's configuration parsed once: it can
    be parsed once per process)."""
    import odoo
    from odoo.tools import config
    if not _CONFIGURED:
        config.parse_config(odoo_args(db) + ["--log-level=warn"])
        _CONFIGURED.append(db)
    return odoo.modules.registry.Registry(db)
