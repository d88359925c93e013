"""The eMSP portal over HTTP, as portal users of two different eMSPs."""

import io
import re
from datetime import datetime, timedelta

import openpyxl

from odoo import Command
from odoo.tests import HttpCase, tagged

from .period_common import PeriodCase

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@tagged("post_install", "-at_install")
class TestPortal(HttpCase, PeriodCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        portal_group = cls.env.ref("base.group_portal")
        cls.emsp_b = cls.env["res.partner"].create({
            "name": "Other eMSP", "is_company": True, "ocpi_country_code": "FR",
            "ocpi_party_id": "TEB", "ocpi_is_emsp": True, "email": "b@teb.example",
        })
        cls.contract_b = cls._contract(partner=cls.emsp_b)
        contact_b = cls.env["res.partner"].create({
            "name": "Billing TEB", "email": "billing@teb.example", "parent_id": cls.emsp_b.id})
        cls.user_a = cls.env["res.users"].create({
            "name": "Portal TEM", "login": "portal_tem", "password": "portal_tem",
            "partner_id": cls.billing_contact.id,
            "groups_id": [Command.set(portal_group.ids)],
        })
        cls.user_b = cls.env["res.users"].create({
            "name": "Portal TEB", "login": "portal_teb", "password": "portal_teb",
            "partner_id": contact_b.id, "groups_id": [Command.set(portal_group.ids)],
        })
        now = datetime.now().replace(microsecond=0)
        cls.cdrs_a = cls.env["clearing.cdr"]
        for index in range(55):
            cls.cdrs_a |= cls._session(now - timedelta(minutes=10 + index), kwh=5.0 + index)
        special = dict(cls.cdrs_a[0].raw_json["cdr_location"], evse_id="FR*TST*E9SPECIAL",
                       evse_uid="EVSE-SPECIAL")
        cls.special = cls._session(now - timedelta(minutes=5), kwh=7.0, cdr_location=special)
        cls.cdrs_a |= cls.special
        cls.cdr_b = cls._session(now - timedelta(minutes=30), issuer=("FR", "TEB"))
        cls.period_a = cls.special.period_id
        cls.period_b = cls.cdr_b.period_id
        assert cls.period_a and cls.period_b and cls.period_a != cls.period_b
        assert set(cls.cdrs_a.period_id.ids) == {cls.period_a.id}
        (cls.period_a | cls.period_b)._open_window()

    def _rows(self, response):
        self.assertEqual(response.status_code, 200)
        return response.text.count('class="o_clearing_cdr_row"')

    def test_periods_list_shows_only_own_company(self):
        self.authenticate("portal_tem", "portal_tem")
        response = self.url_open("/my/clearing/periods")
        self.assertEqual(response.status_code, 200)
        self.assertIn(self.contract.name, response.text)
        self.assertNotIn(self.contract_b.name, response.text)
        self.assertIn("/my/clearing/periods/%s" % self.period_a.id, response.text)
        self.assertNotIn("/my/clearing/periods/%s\"" % self.period_b.id, response.text)
        home = self.url_open("/my/home")
        self.assertIn("/my/clearing/periods", home.text)

    def test_other_emsp_records_are_not_found(self):
        self.authenticate("portal_tem", "portal_tem")
        for url in ("/my/clearing/periods/%s" % self.period_b.id,
                    "/my/clearing/periods/%s/xlsx" % self.period_b.id,
                    "/my/clearing/cdr/%s" % self.cdr_b.id,
                    "/my/clearing/cdr/999999999",
                    "/my/clearing/periods/999999999"):
            response = self.url_open(url)
            self.assertIn(response.status_code, (403, 404), url)
            self.assertNotIn(self.contract_b.name, response.text)
        # and the other way round
        self.authenticate("portal_teb", "portal_teb")
        self.assertEqual(self.url_open("/my/clearing/cdr/%s" % self.special.id).status_code, 404)
        self.assertEqual(self._rows(self.url_open("/my/clearing/periods/%s" % self.period_b.id)), 1)

    def test_dispute_on_other_emsp_cdr_is_refused(self):
        self.authenticate("portal_tem", "portal_tem")
        page = self.url_open("/my/clearing/cdr/%s" % self.special.id)
        token = CSRF_RE.search(page.text).group(1)
        response = self.url_open(
            "/my/clearing/cdr/%s/dispute" % self.cdr_b.id,
            data={"csrf_token": token, "reason": "duplicate", "comment": "not ours"})
        self.assertEqual(response.status_code, 404)
        self.assertFalse(self.cdr_b.dispute_ids)

    def test_list_pagination_sort_filter_search(self):
        self.authenticate("portal_tem", "portal_tem")
        base = "/my/clearing/periods/%s" % self.period_a.id
        first = self.url_open(base)
        self.assertEqual(self._rows(first), 50)
        self.assertIn("%s/page/2" % base, first.text)
        self.assertEqual(self._rows(self.url_open(base + "/page/2")), 6)
        # newest first by default: the special session (ended 5 minutes ago) is on top
        self.assertLess(first.text.index(self.special.session_id),
                        first.text.index(self.cdrs_a[0].session_id))
        oldest = self.url_open(base + "?sortby=date_asc")
        self.assertNotIn(self.special.session_id + "<", oldest.text)
        by_kwh = self.url_open(base + "?sortby=kwh")
        self.assertIn(self.cdrs_a[54].session_id, by_kwh.text)  # 59 kWh, the most
        # search by EVSE, session id, CDR id and token
        evse = self.url_open(base + "?search_in=evse&search=E9SPECIAL")
        self.assertEqual(self._rows(evse), 1)
        self.assertIn(self.special.session_id, evse.text)
        session = self.url_open(base + "?search_in=session&search=%s" % self.cdrs_a[3].ocpi_id)
        self.assertEqual(self._rows(session), 1)
        self.assertEqual(self._rows(self.url_open(base + "?search_in=token&search=04A1B2")), 50)
        self.assertEqual(self._rows(self.url_open(base + "?search_in=evse&search=nothing")), 0)
        # search in all identifiers: case-insensitive, LIKE wildcards taken literally
        everywhere = self.url_open(base + "?search_in=all&search=e9special")
        self.assertEqual(self._rows(everywhere), 1)
        self.assertIn(self.special.session_id, everywhere.text)
        self.assertEqual(self._rows(self.url_open(
            base + "?search_in=all&search=%s" % self.cdrs_a[3].ocpi_id.lower())), 1)
        # past the last page of a search: its last page, the search kept
        self.assertEqual(self._rows(self.url_open(
            base + "/page/9?search_in=all&search=e9special")), 1)
        self.assertEqual(self._rows(self.url_open(base + "/page/9?search_in=all&search=bench")), 0)
        self.assertEqual(self._rows(self.url_open(base + "?search_in=all&search=%25")), 0)
        self.assertEqual(self._rows(self.url_open(base + "?search_in=all&search=_")), 0)
        # date filter (local days of the contract)
        today = self.special._local_end_day()
        same_day = self.cdrs_a.filtered(lambda c: c._local_end_day() == today)
        self.assertEqual(self._rows(self.url_open(
            base + "?date_from=%s&date_to=%s" % (today, today))), min(len(same_day), 50))
        self.assertEqual(self._rows(self.url_open(
            base + "?date_from=%s&date_to=%s" % (today + timedelta(days=1),
                                               today + timedelta(days=2)))), 0)
        # dispute state filter
        self.assertEqual(self._rows(self.url_open(base + "?filterby=disputed")), 0)
        self.Dispute._raise(self.cdrs_a[1], "wrong_energy", "too much")
        disputed = self.url_open(base + "?filterby=disputed")
        self.assertEqual(self._rows(disputed), 1)
        self.assertIn(self.cdrs_a[1].session_id, disputed.text)
        self.assertEqual(self._rows(self.url_open(base + "?filterby=undisputed&search_in=session&search=%s" % self.cdrs_a[1].ocpi_id)), 0)

    def test_totals_and_xlsx(self):
        self.authenticate("portal_tem", "portal_tem")
        page = self.url_open("/my/clearing/periods/%s" % self.period_a.id)
        total = self.period_a.amount_total
        self.assertGreater(total, 0)
        self.assertIn('%.2f' % total, page.text.replace("\u00a0", "").replace(",", ""))
        response = self.url_open("/my/clearing/periods/%s/xlsx" % self.period_a.id)
        self.assertEqual(response.status_code, 200)
        self.assertIn("spreadsheetml", response.headers["Content-Type"])
        sheet = openpyxl.load_workbook(io.BytesIO(response.content), data_only=True)["Sessions"]
        rows = list(sheet.iter_rows(values_only=True))
        header = next(i for i, row in enumerate(rows) if row[0] == "Date")
        data = rows[header + 1:-1]
        self.assertEqual(len(data), 56)
        col = rows[header].index("Incl. VAT")
        self.assertAlmostEqual(sum(row[col] for row in data), total, places=2)
        self.assertAlmostEqual(rows[-1][col], total, places=2)
        first = self.cdrs_a.sorted(lambda c: (c.start_datetime, c.id))[0]
        self.assertEqual(data[0][rows[header].index("End (local time)")].strftime(
            "%Y-%m-%d %H:%M:%S"), first.end_local)
        self.assertEqual(data[0][rows[header].index("CDR")], first.ocpi_id)
        kwh = rows[header].index("Energy (kWh)")
        self.assertAlmostEqual(sum(row[kwh] for row in data), self.period_a.energy_kwh, places=3)

    def test_page_helper_counts_totals_and_rules(self):
        domain = [("period_id", "=", self.period_a.id)]
        Cdr = self.env["clearing.cdr"].with_user(self.user_a)
        self.cdrs_a[7]._exclude_from_billing()
        for narrow in (False, True):
            records, count, totals = Cdr._portal_page(
                domain, "end_datetime desc, id desc", 50, 50, narrow=narrow)
            self.assertEqual(count, 56)
            self.assertEqual(len(records), 6)
            self.assertEqual(records, self.cdrs_a.sorted(
                lambda c: (c.end_datetime, c.id), reverse=True)[50:])
            billable = self.cdrs_a - self.cdrs_a[7]
            self.assertAlmostEqual(totals["amount_total"], sum(billable.mapped("amount_total")))
            self.assertAlmostEqual(totals["energy_kwh"], sum(billable.mapped("energy_kwh")))
            # past the last page: nothing, but the count and totals are still right
            records, count, totals = Cdr._portal_page(
                domain, "end_datetime desc, id desc", 50, 100, narrow=narrow)
            self.assertFalse(records)
            self.assertEqual(count, 56)
            # the other eMSP's user sees nothing of it
            records, count, totals = Cdr.with_user(self.user_b)._portal_page(
                domain, "end_datetime desc, id desc", 50, 0, narrow=narrow)
            self.assertFalse(records)
            self.assertEqual((count, totals["amount_total"]), (0, 0.0))

    def test_raise_dispute_over_http(self):
        self.authenticate("portal_tem", "portal_tem")
        cdr = self.cdrs_a[2]
        page = self.url_open("/my/clearing/cdr/%s" % cdr.id)
        self.assertEqual(page.status_code, 200)
        self.assertIn("o_clearing_dispute_form", page.text)
        self.assertIn(cdr.end_local, page.text)
        self.assertIn(self.contract.name, page.text)  # applied tariff
        token = CSRF_RE.search(page.text).group(1)
        # no reason: refused with a readable message, nothing stored
        response = self.url_open("/my/clearing/cdr/%s/dispute" % cdr.id,
                                 data={"csrf_token": token, "reason": "", "comment": "x"})
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_clearing_error", response.text)
        self.assertNotIn("Traceback", response.text)
        self.assertFalse(cdr.dispute_ids)
        response = self.url_open(
            "/my/clearing/cdr/%s/dispute" % cdr.id,
            data={"csrf_token": token, "reason": "wrong_energy", "comment": "Our log: 3 kWh"},
            files={"attachment": ("meter.csv", b"kwh\n3\n", "text/csv")})
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_clearing_success", response.text)
        dispute = cdr.dispute_ids
        self.assertEqual(len(dispute), 1)
        self.assertEqual(dispute.reason, "wrong_energy")
        self.assertEqual(dispute.raised_by_id, self.user_a)
        self.assertEqual(dispute.partner_id, self.emsp)
        self.assertEqual(dispute.attachment_ids.name, "meter.csv")
        self.assertEqual(dispute.attachment_ids.raw, b"kwh\n3\n")
        self.assertNotIn("o_clearing_dispute_form", response.text)
        # our answer is shown on the portal
        dispute.with_user(self.clearing_user).write({"answer": "Checked: 3 kWh it is."})
        dispute.with_user(self.clearing_user).action_accept()
        page = self.url_open("/my/clearing/cdr/%s" % cdr.id)
        self.assertIn("Checked: 3 kWh it is.", page.text)
        self.assertIn("Excluded from billing", page.text)

    def test_reply_to_information_request(self):
        dispute = self.Dispute._raise(self.cdrs_a[4], "other", "odd", user=self.user_a)
        dispute.with_user(self.clearing_user).write({"answer": "Which car?"})
        dispute.with_user(self.clearing_user).action_request_info()
        self.authenticate("portal_tem", "portal_tem")
        page = self.url_open("/my/clearing/cdr/%s" % self.cdrs_a[4].id)
        self.assertIn("Which car?", page.text)
        token = CSRF_RE.search(page.text).group(1)
        response = self.url_open("/my/clearing/dispute/%s/reply" % dispute.id,
                                 data={"csrf_token": token, "message": "A blue van"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(dispute.state, "open")
        self.authenticate("portal_teb", "portal_teb")
        response = self.url_open("/my/clearing/dispute/%s/reply" % dispute.id,
                                 data={"csrf_token": self._csrf(), "message": "intruder"})
        self.assertEqual(response.status_code, 404)

    def test_locked_period_is_read_only(self):
        self.period_a._lock()
        self.authenticate("portal_tem", "portal_tem")
        cdr = self.cdrs_a[5]
        page = self.url_open("/my/clearing/cdr/%s" % cdr.id)
        self.assertEqual(page.status_code, 200)
        self.assertNotIn("o_clearing_dispute_form", page.text)
        self.assertIn("o_clearing_no_dispute", page.text)
        response = self.url_open("/my/clearing/cdr/%s/dispute" % cdr.id,
                                 data={"csrf_token": self._csrf(), "reason": "duplicate",
                                       "comment": "late"})
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_clearing_error", response.text)
        self.assertIn("locked", response.text)
        self.assertNotIn("Traceback", response.text)
        self.assertFalse(cdr.dispute_ids)
        period_page = self.url_open("/my/clearing/periods/%s" % self.period_a.id)
        self.assertIn("o_clearing_locked", period_page.text)

    def _csrf(self):
        """A CSRF token of the current session (the layout's odoo.csrf_token)."""
        response = self.url_open("/my/clearing/periods")
        return re.search(r'csrf_token: "([^"]+)"', response.text).group(1)

    def test_anonymous_is_sent_to_login(self):
        response = self.url_open("/my/clearing/periods/%s" % self.period_a.id,
                                 allow_redirects=False)
        self.assertIn(response.status_code, (302, 303))
        self.assertIn("/web/login", response.headers["Location"])

    # ------------------------------------------------------------------ access tokens
    def _token_url(self, record, suffix="", token=None):
        return "%s%s?access_token=%s" % (record.access_url, suffix,
                                         token or record._portal_ensure_token())

    def test_period_link_with_token_works_without_login(self):
        """The emailed link (get_portal_url) opens the period for a visitor who is not signed
        in, as Odoo's invoice links do; the session links, pager and XLSX carry the token."""
        token = self.period_a._portal_ensure_token()
        self.assertEqual(self.period_a.access_url, "/my/clearing/periods/%s" % self.period_a.id)
        url = self.period_a.get_portal_url()
        # the window-opening email (setUpClass) holds that very link
        bodies = "".join(self.period_a.message_ids.mapped("body"))
        self.assertIn(url, bodies)
        page = self.url_open(url)
        self.assertEqual(self._rows(page), 50)
        self.assertIn(self.contract.name, page.text)
        self.assertIn("/my/clearing/cdr/%s?access_token=%s" % (self.special.id, token), page.text)
        self.assertIn("/page/2?", page.text)
        self.assertIn("access_token=%s" % token, page.text.split("/page/2?")[1][:200])
        self.assertEqual(self._rows(self.url_open(self._token_url(self.period_a, "/page/2"))), 6)
        self.assertEqual(self._rows(self.url_open(
            self._token_url(self.period_a) + "&search_in=evse&search=E9SPECIAL")), 1)
        # a session of the period: read-only, signing in is offered
        cdr_page = self.url_open("/my/clearing/cdr/%s?access_token=%s" % (self.special.id, token))
        self.assertEqual(cdr_page.status_code, 200)
        self.assertIn(self.special.ocpi_id, cdr_page.text)
        self.assertIn("o_clearing_sign_in", cdr_page.text)
        self.assertNotIn("o_clearing_dispute_form", cdr_page.text)
        # the XLSX through the same check
        xlsx = self.url_open(self._token_url(self.period_a, "/xlsx"))
        self.assertEqual(xlsx.status_code, 200)
        self.assertIn("spreadsheetml", xlsx.headers["Content-Type"])
        sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), data_only=True)["Sessions"]
        rows = list(sheet.iter_rows(values_only=True))
        header = next(row for row in rows if row and row[0] == "Date")
        cdr_col = header.index("CDR")
        self.assertIn(self.special.ocpi_id, [row[cdr_col] for row in rows])

    def test_wrong_or_foreign_token_is_refused(self):
        token_a = self.period_a._portal_ensure_token()
        token_b = self.period_b._portal_ensure_token()
        refused = [
            self._token_url(self.period_a, token="not-the-token"),
            self._token_url(self.period_a, "/xlsx", token="not-the-token"),
            self._token_url(self.period_a, "/page/2", token=token_b),
            self._token_url(self.period_b, token=token_a),  # a token opens its own period only
            self._token_url(self.period_b, "/xlsx", token=token_a),
            "/my/clearing/cdr/%s?access_token=%s" % (self.cdr_b.id, token_a),
            "/my/clearing/cdr/%s?access_token=not-the-token" % self.special.id,
            "/my/clearing/periods/999999999?access_token=%s" % token_a,
        ]
        for url in refused:
            response = self.url_open(url, allow_redirects=False)
            self.assertEqual(response.status_code, 404, url)
            self.assertNotIn(self.contract.name, response.text, url)
            self.assertNotIn(self.contract_b.name, response.text, url)
        # signed in as the other eMSP: no access without the token, nor with a wrong one
        self.authenticate("portal_teb", "portal_teb")
        for url in ("/my/clearing/periods/%s" % self.period_a.id,
                    "/my/clearing/periods/%s/xlsx" % self.period_a.id,
                    self._token_url(self.period_a, token=token_b),
                    self._token_url(self.period_a, "/xlsx", token=token_b)):
            self.assertEqual(self.url_open(url).status_code, 404, url)
        # whoever holds the period's own token may read it, as with Odoo's shared documents
        self.assertEqual(self._rows(self.url_open(self._token_url(self.period_a))), 50)

    def test_anonymous_without_token_is_sent_to_login_everywhere(self):
        dispute = self.Dispute._raise(self.cdrs_a[6], "other", "odd", user=self.user_a)
        for url in ("/my/clearing/periods/%s/xlsx" % self.period_a.id,
                    "/my/clearing/cdr/%s" % self.special.id,
                    "/my/clearing/dispute/%s" % dispute.id):
            response = self.url_open(url, allow_redirects=False)
            self.assertIn(response.status_code, (302, 303), url)
            self.assertIn("/web/login", response.headers["Location"], url)

    def test_dispute_link_with_token(self):
        dispute = self.Dispute._raise(self.cdrs_a[8], "other", "odd", user=self.user_a)
        dispute.with_user(self.clearing_user).write({"answer": "Which charger?"})
        dispute.with_user(self.clearing_user).action_request_info()
        self.assertTrue(dispute.access_token)
        url = dispute.get_portal_url()
        self.assertTrue(url.startswith("/my/clearing/dispute/%s?access_token=" % dispute.id))
        self.assertIn(url, "".join(dispute.message_ids.mapped("body")))
        page = self.url_open(url)
        self.assertEqual(page.status_code, 200)
        self.assertIn("Which charger?", page.text)
        self.assertIn(self.cdrs_a[8].ocpi_id, page.text)
        self.assertIn("o_clearing_sign_in", page.text)
        self.assertNotIn("/my/clearing/dispute/%s/reply" % dispute.id, page.text)
        # the dispute's token opens that dispute only: not the period, not another session
        self.assertEqual(self.url_open(self._token_url(
            self.period_a, token=dispute.access_token)).status_code, 404)
        self.assertEqual(self.url_open("/my/clearing/cdr/%s?access_token=%s" % (
            self.cdrs_a[9].id, dispute.access_token)).status_code, 404)
        self.assertEqual(self.url_open(self._token_url(
            dispute, token="not-the-token")).status_code, 404)
        # the other eMSP without the token: not found; the raiser: the session page
        self.authenticate("portal_teb", "portal_teb")
        self.assertEqual(self.url_open(dispute.access_url).status_code, 404)
        self.authenticate("portal_tem", "portal_tem")
        response = self.url_open(dispute.access_url, allow_redirects=False)
        self.assertIn(response.status_code, (302, 303))
        self.assertIn("/my/clearing/cdr/%s" % self.cdrs_a[8].id, response.headers["Location"])
        page = self.url_open(dispute.access_url)
        self.assertIn("/my/clearing/dispute/%s/reply" % dispute.id, page.text)
