"""Shared set-up of the OCPI ingestion tests: we are the eMSP DE*MSP, the partner the CPO NL*CPO
(the identities of ``ocpi_peer/launcher.make_cdrs``)."""

import base64
import copy
import importlib.util
import json
import os

from odoo import Command
from odoo.tests import HttpCase

from ..clearing_core import ocpi
from ..clearing_core.transport import envelope as ot

HERE = os.path.dirname(os.path.abspath(__file__))
OCPI_DIR = os.environ.get("OCPI_REFERENCE_DIR") or os.path.join(HERE, os.pardir, os.pardir, os.pardir,
                                                               "shared", "ocpi")


def load_launcher():
    """``ocpi_peer/launcher.py`` (stdlib only; the peer itself runs in its own venv)."""
    spec = importlib.util.spec_from_file_location(
        "emsp_clearing_ocpi_peer_launcher", os.path.join(HERE, "ocpi_peer", "launcher.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


launcher = load_launcher()


def spec_example(name, version="2.2.1"):
    path = os.path.join(OCPI_DIR, "examples" if version == "2.2.1" else "examples-" + version, name)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def credit_cdr(cdr, version, **vals):
    """The credit CDR of ``cdr`` (a CDR dict of either version) in the form of ``version``:
    ``credit`` set, ``credit_reference_id`` = its id, its total cost negated; ``vals``
    override members (``id``...)."""
    out = ocpi.cdr_dict_to_version(copy.deepcopy(cdr), ocpi.V221)
    out.update(credit=True, credit_reference_id=cdr["id"],
               total_cost={k: -v for k, v in out["total_cost"].items()}, **vals)
    return ocpi.cdr_dict_to_version(out, version)


class OcpiHttpCase(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True, ocpi_backoff=0.01))
        cls.company = cls.env.company
        # over the demo data too (see ClearingCase in common.py)
        cls.company.partner_id.with_context(clearing_identity_keep_cdrs=True).write({
            "ocpi_country_code": "DE", "ocpi_party_id": "MSP", "ocpi_is_emsp": True})
        cls.eur = cls.env.ref("base.EUR")
        cls.eur.active = True
        cls.cpo = cls.env["res.partner"].create({
            "name": "Peer CPO", "is_company": True, "ocpi_country_code": "NL",
            "ocpi_party_id": "CPO", "ocpi_is_cpo": True})
        tax = cls.env["account.tax"].create({
            "name": "OCPI test VAT 21% (purchase)", "amount": 21.0, "amount_type": "percent",
            "type_tax_use": "purchase", "company_id": cls.company.id})
        cls.contract = cls.env["clearing.contract"].create({
            "partner_id": cls.cpo.id, "role": "emsp", "currency_id": cls.eur.id,
            "date_start": "2015-01-01", "tz": "Europe/Amsterdam",
            "tax_ids": [Command.set(tax.ids)],
            "price_line_ids": [Command.create({"dimension": "ENERGY", "price": 0.30})],
        })
        cls.contract.action_activate()

    def _connection(self, partner=None, registered=True, raw_token=False, **vals):
        """A connection; registered ones get a known Token C (returned with it)."""
        conn = self.env["clearing.ocpi.connection"].create(dict({
            "name": "conn %s" % (partner or self.cpo).name, "partner_id": (partner or self.cpo).id,
            "raw_token": raw_token}, **vals))
        token_c = None
        if registered:
            token_c = ot.generate_token()
            conn.sudo().write({"state": "registered", "token_c_hash": ot.hash_token(token_c),
                               "token_c_hint": token_c[-4:]})
        return conn, token_c

    def ocpi(self, method, path, token=None, body=None, raw_body=None, raw_token=False,
             headers=None):
        h = {"Content-Type": "application/json"}
        if token is not None:
            h["Authorization"] = ("Token " + token) if raw_token else ot.authorization_header(token)
        h.update(headers or {})
        data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        url = self.base_url() + path
        r = self.opener.request(method, url, data=data, headers=h, timeout=30)
        try:
            payload = r.json()
        except ValueError:
            payload = None
        return r, payload

    def drain(self):
        """What the push-queue cron does: store every acknowledged CDR."""
        self.env.flush_all()
        count = self.env["clearing.cdr.inbox"]._process_queue()
        self.env.invalidate_all()
        return count

    def last_log(self, **domain):
        dom = [(k, "=", v) for k, v in domain.items()]
        return self.env["clearing.ingestion.log"].search(dom, order="id desc", limit=1)

    def cdr_count(self, **domain):
        """CDRs of the test partners (NL*... senders; demo data may hold others)."""
        domain.setdefault("country_code", "NL")
        dom = [(k, "=", v) for k, v in domain.items()]
        return self.env["clearing.cdr"].search_count(dom)

    @staticmethod
    def b64(token):
        return base64.b64encode(token.encode()).decode()


class OcpiPushCase(OcpiHttpCase):
    """``cls.cdrs``: six CDRs of the peer CPO in the form of ``VERSION``; ``self.conn`` /
    ``self.token_c``: its registered connection; ``push``: POST one to our CDRs receiver of
    ``VERSION`` (``cls.V``: its base path). A subclass setting ``VERSION`` runs every test of
    its parent in that version."""

    VERSION = ocpi.V221

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.V = "/ocpi/" + cls.VERSION
        cls.cdrs = [ocpi.cdr_dict_to_version(c, cls.VERSION) for c in launcher.make_cdrs(6)]

    @classmethod
    def price(cls, excl, incl):
        """A cost of ``excl``/``incl`` in the form of ``VERSION``."""
        return ocpi.cdr_dict_to_version(
            {"total_cost": {"excl_vat": excl, "incl_vat": incl}}, cls.VERSION)["total_cost"]

    def setUp(self):
        super().setUp()
        self.conn, self.token_c = self._connection()

    def push(self, cdr, token=None):
        return self.ocpi("POST", self.V + "/cdrs", token or self.token_c, body=cdr)
