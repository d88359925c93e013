"""eMSP portal: clearing periods, their sessions, disputes and the XLSX breakdown."""

import base64
from datetime import datetime, time, timedelta

import pytz
from werkzeug.urls import url_encode

from odoo import _, fields, http
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request
from odoo.osv import expression
from odoo.tools.misc import formatLang

from odoo.addons.portal.controllers.portal import CustomerPortal, pager as portal_pager

from ..tools.statement import contract_statement, to_money

CDRS_PER_PAGE = 50
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class ClearingPortal(CustomerPortal):

    # ------------------------------------------------------------------ home
    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "clearing_period_count" in counters:
            Period = request.env["clearing.period"]
            values["clearing_period_count"] = (
                Period.search_count(self._clearing_period_domain())
                if Period.has_access("read") else 0
            )
        if "clearing_statement_count" in counters:
            values["clearing_statement_count"] = len(self._clearing_statement_contracts())
        return values

    def _clearing_period_domain(self):
        return [("contract_role", "=", "cpo"),
                ("partner_id", "=", request.env.user.commercial_partner_id.id)]

    def _clearing_document(self, model_name, document_id, access_token=None):
        """The record through Odoo's portal check (``_document_check_access``): read access of
        the current user (record rules), or a valid ``access_token`` of the record. Returns
        ``(record, by_token)``: the record in the user's environment when the user may read
        it, else (token only) the sudo record. Raises ``NotFound`` otherwise: another eMSP's
        ids look like ids that do not exist."""
        try:
            record_sudo = self._document_check_access(model_name, document_id,
                                                      access_token=access_token)
        except (AccessError, MissingError):
            raise request.not_found()
        record = request.env[model_name].browse(record_sudo.id)
        if record.has_access("read"):
            return record, False
        return record_sudo, True

    def _clearing_cdr_document(self, cdr_id, access_token=None):
        """A session: readable by the user, or reached with the access token of its period
        (the links of a period page opened from the emailed link). ``(cdr, by_token)``."""
        cdr = request.env["clearing.cdr"].browse(cdr_id)
        cdr_sudo = cdr.sudo().exists()
        if not cdr_sudo:
            raise request.not_found()
        if cdr.has_access("read"):
            return cdr, False
        if not cdr_sudo.period_id or not access_token:
            raise request.not_found()
        self._clearing_document("clearing.period", cdr_sudo.period_id.id,
                                access_token=access_token)
        return cdr_sudo, True

    # ------------------------------------------------------------------ statements
    def _clearing_statement_contracts(self, contract_id=None):
        """The contracts whose statement of account the user may see: those of the clearing
        periods the user reads (the portal record rule: the user's commercial partner is the
        eMSP billed by us), as sudo records (portal users have no access to the contract
        itself: its costs and margins are ours). ``contract_id``: that one only."""
        Period = request.env["clearing.period"]
        if not Period.has_access("read"):
            return request.env["clearing.contract"]
        domain = self._clearing_period_domain()
        if contract_id is not None:
            domain = expression.AND([domain, [("contract_id", "=", contract_id)]])
        contracts = [contract for [contract] in Period._read_group(domain, ["contract_id"])]
        return request.env["clearing.contract"].sudo().browse(
            [contract.id for contract in contracts]).sorted("name")

    def _clearing_statement_moves(self, contracts):
        """The posted invoices and credit notes of ``contracts`` to the user's commercial
        partner (sudo: their reconciliations are read for the payments)."""
        return request.env["account.move"].sudo().search([
            ("clearing_contract_id", "in", contracts.ids),
            ("move_type", "in", ("out_invoice", "out_refund")),
            ("state", "=", "posted"),
            ("commercial_partner_id", "=", request.env.user.commercial_partner_id.id),
        ], order="invoice_date, id")

    @http.route(["/my/clearing/statements"], type="http", auth="user", website=True)
    def portal_clearing_statements(self, **kw):
        contracts = self._clearing_statement_contracts()
        moves = self._clearing_statement_moves(contracts)
        today = fields.Date.context_today(request.env.user)
        summaries = []
        for contract in contracts:
            statement = contract_statement(
                moves.filtered(lambda m, c=contract: m.clearing_contract_id == c), today)
            summaries.append({"contract": contract, "totals": statement["totals"],
                              "currency": contract.currency_id})
        values = self._prepare_portal_layout_values()
        values.update({"summaries": summaries, "page_name": "clearing_statements",
                       "money": self._clearing_money})
        return request.render("emsp_clearing.portal_my_clearing_statements", values)

    @http.route(["/my/clearing/statements/<int:contract_id>"], type="http", auth="user",
                website=True)
    def portal_clearing_statement(self, contract_id, **kw):
        contract = self._clearing_statement_contracts(contract_id)
        if not contract:
            raise request.not_found()  # another eMSP's contract looks like one that does not exist
        moves = self._clearing_statement_moves(contract)
        today = fields.Date.context_today(request.env.user)
        statement = contract_statement(moves, today)
        periods = request.env["clearing.period"].search(expression.AND([
            self._clearing_period_domain(), [("contract_id", "=", contract.id)]]),
            order="date_start desc, id desc")
        values = self._prepare_portal_layout_values()
        values.update({
            "contract": contract,
            "currency": contract.currency_id,
            "statement": statement,
            "period_rows": self._clearing_statement_periods(periods, moves),
            "today": today,
            "page_name": "clearing_statement",
            "money": self._clearing_money,
        })
        return request.render("emsp_clearing.portal_my_clearing_statement", values)

    @staticmethod
    def _clearing_money(amount, currency):
        """An exact amount (Decimal or float) shown in ``currency``, as the portal shows money."""
        return formatLang(request.env, float(amount or 0), currency_obj=currency)

    def _clearing_statement_periods(self, periods, moves):
        """Each period's billed and credited totals (its posted moves) next to what the eMSP
        disputed: sessions with a dispute and their amount (one aggregate for all)."""
        disputed = {
            period.id: (count, total) for period, count, total in
            request.env["clearing.cdr"].sudo()._read_group(
                [("period_id", "in", periods.ids), ("dispute_state", "not in", (False, "none")),
                 ("dispute_credit", "=", False)],
                ["period_id"], ["__count", "amount_total:sum"])
        }
        rows = []
        for period in periods:
            currency = period.currency_id
            own = moves.filtered(lambda m, p=period: m.clearing_period_id == p)
            count, amount = disputed.get(period.id, (0, 0.0))
            rows.append({
                "period": period,
                "billed": sum(to_money(m.amount_total, currency)
                              for m in own if m.move_type == "out_invoice"),
                "credited": sum(to_money(m.amount_total, currency)
                                for m in own if m.move_type == "out_refund"),
                "disputed_count": count,
                "disputed_amount": to_money(amount, currency),
            })
        return rows

    @staticmethod
    def _login_redirect():
        """Anonymous visitor without a token: to the login page, then back here."""
        return request.redirect("/web/login?%s" % url_encode(
            {"redirect": request.httprequest.full_path}))

    # ------------------------------------------------------------------ periods
    @http.route(["/my/clearing/periods", "/my/clearing/periods/page/<int:page>"],
                type="http", auth="user", website=True)
    def portal_clearing_periods(self, page=1, sortby=None, **kw):
        Period = request.env["clearing.period"]
        if not Period.has_access("read"):
            raise request.not_found()
        sortings = {
            "date": {"label": _("Newest"), "order": "date_start desc, id desc"},
            "contract": {"label": _("Contract"), "order": "contract_id, date_start desc"},
            "state": {"label": _("Status"), "order": "state, date_start desc"},
        }
        sortby = sortby if sortby in sortings else "date"
        domain = self._clearing_period_domain()
        count = Period.search_count(domain)
        pager = portal_pager(url="/my/clearing/periods", url_args={"sortby": sortby},
                             total=count, page=page, step=self._items_per_page)
        periods = Period.search(domain, order=sortings[sortby]["order"],
                                limit=self._items_per_page, offset=pager["offset"])
        values = self._prepare_portal_layout_values()
        values.update({
            "periods": periods,
            "page_name": "clearing_periods",
            "pager": pager,
            "default_url": "/my/clearing/periods",
            "searchbar_sortings": sortings,
            "sortby": sortby,
        })
        return request.render("emsp_clearing.portal_my_clearing_periods", values)

    def _cdr_searchbar(self):
        sortings = {
            "date": {"label": _("Date (newest first)"), "order": "end_datetime desc, id desc"},
            "date_asc": {"label": _("Date (oldest first)"), "order": "end_datetime asc, id asc"},
            "kwh": {"label": _("Energy"), "order": "energy_kwh desc, id desc"},
            "amount": {"label": _("Amount"), "order": "amount_total desc, id desc"},
            "evse": {"label": _("Charger / EVSE"), "order": "evse_id, end_datetime desc, id desc"},
            "session": {"label": _("Session"), "order": "session_id, id"},
        }
        filters = {
            "all": {"label": _("All"), "domain": []},
            "undisputed": {"label": _("Not disputed"), "domain": [("dispute_state", "=", "none")]},
            "disputed": {"label": _("Dispute in progress"),
                         "domain": [("dispute_state", "in", ("open", "info"))]},
            "accepted": {"label": _("Dispute accepted"),
                         "domain": [("dispute_state", "=", "accepted")]},
            "rejected": {"label": _("Dispute rejected"),
                         "domain": [("dispute_state", "=", "rejected")]},
            "late": {"label": _("Late sessions"), "domain": [("is_late", "=", True)]},
        }
        inputs = {
            "all": {"input": "all", "label": _("Search in all")},
            "session": {"input": "session", "label": _("Session / CDR id")},
            "evse": {"input": "evse", "label": _("Charger / EVSE")},
            "token": {"input": "token", "label": _("Token")},
        }
        return sortings, filters, inputs

    @staticmethod
    def _search_domain(search_in, search):
        search = (search or "").strip()
        if not search:
            return []
        parts = {
            "session": [[("session_id", "ilike", search)], [("ocpi_id", "ilike", search)]],
            "evse": [[("evse_id", "ilike", search)], [("evse_uid", "ilike", search)],
                     [("location_name", "ilike", search)]],
            "token": [[("token_uid", "ilike", search)], [("token_contract_id", "ilike", search)]],
        }
        if search_in in parts:
            return expression.OR(parts[search_in])
        # "all": the identifiers (session, CDR, EVSE, token) through their trigram index, a
        # condition of clearing.cdr._portal_page (identifiers=); the specific searches also
        # look at the secondary fields
        return []

    @staticmethod
    def _date_domain(period, date_from, date_to):
        """Local days of the contract's time zone -> UTC bounds on the end of the session."""
        tz = pytz.timezone(period.contract_tz or "UTC")
        domain = []
        for value, operator, shift in ((date_from, ">=", 0), (date_to, "<", 1)):
            if not value:
                continue
            try:
                day = fields.Date.to_date(value)
            except ValueError:
                continue
            bound = tz.localize(datetime.combine(day + timedelta(days=shift), time.min))
            domain.append(("end_datetime", operator,
                           bound.astimezone(pytz.utc).replace(tzinfo=None)))
        return domain

    def _period_page_values(self, period, page=1, sortby=None, filterby=None, search_in=None,
                            search=None, date_from=None, date_to=None, access_token=None):
        """Values of a period's page. ``access_token``: the page was opened with the period's
        token (``period`` is then the sudo record): the links of the page carry it on."""
        # the sessions as the period was reached: the user's rules, or sudo with the token
        # (the domain keeps them to this period)
        Cdr = period.env["clearing.cdr"]
        sortings, filters, inputs = self._cdr_searchbar()
        sortby = sortby if sortby in sortings else "date"
        filterby = filterby if filterby in filters else "all"
        search_in = search_in if search_in in inputs else "all"
        domain = expression.AND([
            [("period_id", "=", period.id)],
            filters[filterby]["domain"],
            self._search_domain(search_in, search),
            self._date_domain(period, date_from, date_to),
        ])
        url = "/my/clearing/periods/%s" % period.id
        url_args = {"sortby": sortby, "filterby": filterby, "search_in": search_in,
                    "search": search or "", "date_from": date_from or "",
                    "date_to": date_to or "", "access_token": access_token or ""}
        url_args = {k: v for k, v in url_args.items() if v}
        # selective criteria that no index of their own serves (the EVSE, session and token
        # searches read the whole period anyway) and the dispute filters: one scan with window
        # aggregates beats aggregate + page query. The search in all identifiers has its
        # trigram index: aggregate + page query, so that the aggregate is driven by that index
        # (in one statement with LIMIT and a window aggregate, PostgreSQL walks the period's
        # date index through every session of the period instead)
        searched = (search or "").strip()
        identifiers = searched if search_in == "all" else None
        narrow = bool(searched and not identifiers) or filterby in (
            "disputed", "accepted", "rejected", "late")
        page = max(int(page or 1), 1)
        cdrs, count, totals = Cdr._portal_page(
            domain, sortings[sortby]["order"], CDRS_PER_PAGE, (page - 1) * CDRS_PER_PAGE,
            narrow=narrow, identifiers=identifiers)
        pager = portal_pager(url=url, url_args=url_args, total=count, page=page,
                             step=CDRS_PER_PAGE)
        if pager["offset"] != (page - 1) * CDRS_PER_PAGE:  # page out of range: last page
            cdrs = Cdr._portal_page(domain, sortings[sortby]["order"], CDRS_PER_PAGE,
                                    pager["offset"], narrow=narrow, identifiers=identifiers)[0]
        values = self._prepare_portal_layout_values()
        values.update({
            "period": period,
            "cdrs": cdrs,
            "cdr_total_count": count,
            "totals": {"kwh": totals["energy_kwh"], "untaxed": totals["amount_untaxed"],
                       "tax": totals["amount_tax"], "total": totals["amount_total"]},
            "page_name": "clearing_period",
            "pager": pager,
            "default_url": url,
            "searchbar_sortings": sortings,
            "searchbar_filters": filters,
            "searchbar_inputs": inputs,
            "sortby": sortby,
            "filterby": filterby,
            "search_in": search_in,
            "search": search or "",
            "date_from": date_from or "",
            "date_to": date_to or "",
            "access_token": access_token,
            "token_query": "?%s" % url_encode({"access_token": access_token})
            if access_token else "",
            "clearing_moves": self._clearing_period_moves(period),
        })
        return values

    def _clearing_period_moves(self, period):
        """The period's posted invoice and credit notes the user may see (record rules)."""
        Move = request.env["account.move"]
        if not Move.has_access("read"):
            return Move
        return Move.search([("clearing_period_id", "=", period.id), ("state", "=", "posted")],
                           order="invoice_date, id")

    @http.route(["/my/clearing/periods/<int:period_id>",
                 "/my/clearing/periods/<int:period_id>/page/<int:page>"],
                type="http", auth="public", website=True)
    def portal_clearing_period(self, period_id, page=1, sortby=None, filterby=None,
                               search_in=None, search=None, date_from=None, date_to=None,
                               access_token=None, **kw):
        if not access_token and request.env.user._is_public():
            return self._login_redirect()
        period, by_token = self._clearing_document("clearing.period", period_id,
                                                   access_token=access_token)
        values = self._period_page_values(period, page=page, sortby=sortby, filterby=filterby,
                                          search_in=search_in, search=search,
                                          date_from=date_from, date_to=date_to,
                                          access_token=access_token if by_token else None)
        return request.render("emsp_clearing.portal_my_clearing_period", values)

    @http.route(["/my/clearing/periods/<int:period_id>/xlsx"], type="http", auth="public")
    def portal_clearing_period_xlsx(self, period_id, access_token=None, **kw):
        if not access_token and request.env.user._is_public():
            return self._login_redirect()
        period, _by_token = self._clearing_document("clearing.period", period_id,
                                                    access_token=access_token)
        filename, content = period.get_breakdown_xlsx()
        return self._clearing_xlsx_response(filename, content)

    @http.route(["/my/invoices/<int:invoice_id>/breakdown.xlsx"], type="http", auth="public")
    def portal_clearing_invoice_xlsx(self, invoice_id, access_token=None, **kw):
        """The per-session breakdown of a clearing invoice or credit note, through the portal's
        access check of the invoice (logged-in counterparty, or the invoice's access token)."""
        try:
            move = self._document_check_access("account.move", invoice_id, access_token)
        except (AccessError, MissingError):
            return request.redirect("/my")
        if not move.clearing_period_id or move.state != "posted":
            raise request.not_found()
        filename, content = move.clearing_period_id.get_breakdown_xlsx(move)
        return self._clearing_xlsx_response(filename, content)

    def _clearing_xlsx_response(self, filename, content):
        return request.make_response(content, headers=[
            ("Content-Type",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            ("Content-Disposition", http.content_disposition(filename)),
        ])

    # ------------------------------------------------------------------ sessions
    def _cdr_page_values(self, cdr, error=None, success=None, by_token=False,
                         period_token=None):
        """Values of a session's page. ``by_token``: reached with an access token only (``cdr``
        is then the sudo record): read-only, signing in is needed to dispute or answer;
        ``period_token``: that token is the period's, which the period link carries on."""
        period = cdr.period_id
        disputes = cdr.dispute_ids.sorted("id", reverse=True)
        tariff = cdr.applied_tariff or {}
        in_progress = disputes.filtered(lambda d: d.state in ("open", "info"))
        values = self._prepare_portal_layout_values()
        values.update({
            "cdr": cdr,
            "period": period,
            "disputes": disputes,
            "dispute_attachments": {
                dispute.id: dispute.sudo().attachment_ids.mapped("name") for dispute in disputes
            },
            "tariff": tariff,
            "tariff_rows": cdr._tariff_rows(),
            "breakdown": cdr._breakdown_rows(),
            "page_name": "clearing_cdr",
            "can_dispute": not by_token and bool(period) and period.state == "control"
            and not cdr.locked and not in_progress and not cdr.dispute_credit,
            "by_token": by_token,
            "period_query": "?%s" % url_encode({"access_token": period_token})
            if period_token else "",
            "login_url": "/web/login?%s" % url_encode(
                {"redirect": "/my/clearing/cdr/%s" % cdr.id}),
            "reasons": request.env["clearing.dispute"]._fields["reason"]._description_selection(
                request.env),
            "error": error,
            "success": success,
        })
        return values

    @http.route(["/my/clearing/cdr/<int:cdr_id>"], type="http", auth="public", website=True)
    def portal_clearing_cdr(self, cdr_id, success=None, access_token=None, **kw):
        if not access_token and request.env.user._is_public():
            return self._login_redirect()
        cdr, by_token = self._clearing_cdr_document(cdr_id, access_token=access_token)
        message = {
            "raised": _("Your dispute was recorded. We will answer it before the period locks."),
            "replied": _("Your answer was sent."),
        }.get(success)
        return request.render("emsp_clearing.portal_my_clearing_cdr", self._cdr_page_values(
            cdr, success=message, by_token=by_token,
            period_token=access_token if by_token else None))

    @http.route(["/my/clearing/dispute/<int:dispute_id>"], type="http", auth="public",
                website=True)
    def portal_clearing_dispute(self, dispute_id, access_token=None, **kw):
        """A dispute (the link of its emails): the page of its session, read-only when reached
        with the dispute's token only."""
        if not access_token and request.env.user._is_public():
            return self._login_redirect()
        dispute, by_token = self._clearing_document("clearing.dispute", dispute_id,
                                                    access_token=access_token)
        if not by_token:
            return request.redirect("/my/clearing/cdr/%s#dispute-%s" % (
                dispute.cdr_id.id, dispute.id))
        return request.render("emsp_clearing.portal_my_clearing_cdr", self._cdr_page_values(
            dispute.cdr_id, by_token=True))

    @http.route(["/my/clearing/cdr/<int:cdr_id>/dispute"], type="http", auth="user",
                methods=["POST"], website=True)
    def portal_clearing_cdr_dispute(self, cdr_id, reason=None, comment=None, attachment=None,
                                    **kw):
        cdr, _by_token = self._clearing_cdr_document(cdr_id)
        try:
            attachments = request.env["ir.attachment"]
            if attachment and getattr(attachment, "filename", None):
                data = attachment.read()
                if len(data) > MAX_ATTACHMENT_BYTES:
                    raise UserError(_("The attachment is too large (10 MB at most)."))
                attachments = attachments.sudo().create({
                    "name": attachment.filename,
                    "datas": base64.b64encode(data),
                    "res_model": "clearing.dispute",
                    "res_id": 0,
                })
            with request.env.cr.savepoint():
                request.env["clearing.dispute"].sudo()._raise(
                    cdr.sudo(), reason, comment, attachments=attachments,
                    user=request.env.user)
        except (UserError, ValidationError) as exc:
            values = self._cdr_page_values(cdr, error=exc.args[0] if exc.args else str(exc))
            values.update({"form_reason": reason, "form_comment": comment})
            return request.render("emsp_clearing.portal_my_clearing_cdr", values)
        return request.redirect("/my/clearing/cdr/%s?success=raised" % cdr.id)

    @http.route(["/my/clearing/dispute/<int:dispute_id>/reply"], type="http", auth="user",
                methods=["POST"], website=True)
    def portal_clearing_dispute_reply(self, dispute_id, message=None, **kw):
        dispute, _by_token = self._clearing_document("clearing.dispute", dispute_id)
        cdr = dispute.cdr_id
        try:
            with request.env.cr.savepoint():
                dispute.sudo()._reply(message, user=request.env.user)
        except (UserError, ValidationError) as exc:
            return request.render("emsp_clearing.portal_my_clearing_cdr", self._cdr_page_values(
                cdr, error=exc.args[0] if exc.args else str(exc)))
        return request.redirect("/my/clearing/cdr/%s?success=replied" % cdr.id)
