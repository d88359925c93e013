"""The per-session XLSX breakdown of a clearing period or of one of its moves.

One builder (``clearing_core.formats.xlsx_breakdown``) for the portal, the backend and the invoice
e-mail: ``clearing.period.get_breakdown_xlsx(move=None)``. Sessions are read by one SQL
statement and streamed to the constant-memory writer, so a 100k-session period costs about the
memory of its raw result.
"""

import re
from decimal import Decimal

from odoo import _, models
from odoo.exceptions import UserError

from ..clearing_core.formats.xlsx_breakdown import ProRata, build_breakdown_xlsx, to_decimal

_REFUNDS = ("out_refund", "in_refund")
_BREAKDOWN_SQL = """
    SELECT (c.start_datetime AT TIME ZONE 'UTC') AT TIME ZONE %(tz)s,
           (c.end_datetime AT TIME ZONE 'UTC') AT TIME ZONE %(tz)s,
           coalesce(c.evse_id, c.evse_uid), c.session_id, c.ocpi_id,
           c.energy_kwh, c.duration_hours, c.parking_hours, c.applied_tariff ->> 'id',
           c.amount_energy, c.amount_time, c.amount_parking, c.amount_fixed,
           c.amount_reservation, c.amount_adjustment, c.amount_untaxed, c.amount_tax,
           c.amount_total, c.is_late, c.dispute_state, c.dispute_credit, c.credit,
           f.name, c.stated_taxes
      FROM clearing_cdr c
      LEFT JOIN clearing_fleet f ON f.id = c.fleet_id
     WHERE {where}
     ORDER BY c.start_datetime, c.id
"""
# the names of the taxes the senders stated (OCPI 2.3.0), one XLSX column each
_STATED_TAX_NAMES_SQL = """
    SELECT DISTINCT tax ->> 'name'
      FROM clearing_cdr c
     CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(c.stated_taxes) = 'array' THEN c.stated_taxes
                ELSE '[]'::jsonb END) tax
     WHERE {where}
     ORDER BY 1
"""
_BATCH = 5000


class ClearingPeriodDocumentsMixin(models.AbstractModel):
    """The documents of a clearing period (``clearing.period`` inherits it): the per-session
    XLSX breakdown and the figures of the clearing summary printed on its invoices."""

    _name = "clearing.period.documents.mixin"
    _description = "Clearing Period Documents"

    def get_breakdown_xlsx(self, move=None):
        """``(filename, content)`` of the XLSX breakdown: the sessions ``move`` (an invoice,
        vendor bill or credit note of this period) bills, its totals equal to the move's; or,
        without ``move``, the period's billable sessions. Access rights of the caller apply."""
        self.ensure_one()
        self.check_access("read")
        if move:
            move.check_access("read")
            if move.clearing_period_id != self:
                raise UserError(_("%(move)s does not belong to the clearing period %(period)s.",
                                  move=move.display_name, period=self.display_name))
        period = self.sudo()
        move = move.sudo() if move else None
        currency = move.currency_id if move else period.currency_id
        expected = None
        if move:
            sign = -1 if move.move_type in _REFUNDS else 1
            expected = {
                "amount_untaxed": sign * currency.round(move.amount_untaxed),
                "amount_tax": sign * currency.round(move.amount_tax),
                "amount_total": sign * currency.round(move.amount_total),
            }
        content = build_breakdown_xlsx(
            period._breakdown_rows_stream(move, expected),
            meta=period._breakdown_meta(move),
            labels=self._breakdown_labels(),
            currency_digits=currency.decimal_places,
            expected={key: self._decimal(value, currency)
                      for key, value in (expected or {}).items()},
            stated_tax_names=period._breakdown_stated_tax_names(move),
        )
        return period._breakdown_filename(move), content

    @staticmethod
    def _decimal(value, currency):
        """A move's float amount as the exact Decimal of its currency's digits."""
        return Decimal(repr(value)).quantize(Decimal(1).scaleb(-currency.decimal_places))

    def _breakdown_where(self, move=None):
        """SQL condition and parameters of the sessions of the breakdown."""
        if move:
            return "c.invoice_move_id = %(move)s", {"move": move.id}
        return "c.period_id = %(period)s AND c.state != 'excluded'", {"period": self.id}

    def _breakdown_stated_tax_names(self, move=None):
        """Names of the taxes the senders stated on the sessions of the breakdown (OCPI 2.3.0
        CDRs), in alphabetical order: one column each in the XLSX."""
        self.ensure_one()
        self.env["clearing.cdr"].flush_model(["stated_taxes", "period_id", "invoice_move_id",
                                              "state"])
        where, params = self._breakdown_where(move)
        self.env.cr.execute(_STATED_TAX_NAMES_SQL.format(where=where), params)
        return [name or "" for (name,) in self.env.cr.fetchall()]

    @staticmethod
    def _stated_taxes_by_name(taxes):
        """``{name: amount}`` of a session's stated taxes (the TaxAmount list as sent)."""
        result = {}
        if not isinstance(taxes, list):
            return result
        for tax in taxes:
            name = tax.get("name") or ""
            result[name] = result.get(name, Decimal(0)) + to_decimal(tax.get("amount"))
        return result

    def _breakdown_rows_stream(self, move=None, expected=None):
        """Rows of the builder, fetched in batches. With a move, each session's VAT is its
        share of the move's VAT (pro rata of its untaxed amount, in cents adding up to the
        move's VAT exactly: the per-session VAT of the contract does not round to the
        invoice's, and the fiscal position may have changed it)."""
        self.ensure_one()
        self.env["clearing.cdr"].flush_model()
        where, params = self._breakdown_where(move)
        params["tz"] = self.contract_id.tz or "UTC"
        disputes = dict(self.env["clearing.cdr"]._fields["dispute_state"]._description_selection(
            self.env))
        late_label, credit_label, dispute_credit_label, contract_grid, fleet_grid = (
            _("Late"), _("Credit"), _("Credit for an accepted dispute"), _("Contract grid"),
            _("Fleet grid %s"))
        currency = move.currency_id if move else self.currency_id
        vat = None
        if move:
            vat = ProRata(self._decimal(expected["amount_tax"], currency),
                          self._decimal(expected["amount_untaxed"], currency),
                          currency.decimal_places)
        cr = self.env.cr
        cr.execute(_BREAKDOWN_SQL.format(where=where), params)
        while True:
            batch = cr.fetchmany(_BATCH)
            if not batch:
                break
            for (start, end, evse, session, cdr, kwh, duration, parking, tariff, energy, time,
                 parking_cost, fixed, reservation, adjustment, untaxed, tax, total, late,
                 dispute, dispute_credit, credit, fleet, stated_taxes) in batch:
                if vat is not None:
                    untaxed = to_decimal(untaxed)
                    tax = vat.share(untaxed)
                    total = untaxed + tax
                yield {
                    "start": start, "end": end, "evse": evse, "session": session, "cdr": cdr,
                    "kwh": kwh, "duration_hours": duration, "parking_hours": parking,
                    "tariff": tariff, "grid": fleet_grid % fleet if fleet else contract_grid, "amount_energy": energy, "amount_time": time,
                    "amount_parking": parking_cost, "amount_fixed": fixed,
                    "amount_reservation": reservation, "amount_adjustment": adjustment,
                    "amount_untaxed": untaxed, "amount_tax": tax, "amount_total": total,
                    "late": late_label if late else "",
                    "dispute": (dispute_credit_label if dispute_credit
                                else credit_label if credit
                                else disputes.get(dispute, "") if dispute else ""),
                    "stated_taxes": self._stated_taxes_by_name(stated_taxes),
                }

    def _breakdown_meta(self, move=None):
        self.ensure_one()
        contract = self.contract_id
        states = dict(self._fields["state"]._description_selection(self.env))
        meta = [
            (_("Company"), contract.company_id.name),
            (_("Contract"), contract.name),
            (_("Counterparty"), contract.partner_id.display_name),
            (_("Period"), "%s – %s" % (self.date_start, self.date_end)),
            (_("Control window"), "%s – %s" % (self.window_date, self.lock_date)),
            (_("Status"), states.get(self.state, self.state)),
        ]
        if move:
            meta.append((move.type_name, move.name))
            meta.append((_("Payment reference"), move.payment_reference or ""))
        meta += [
            (_("Currency"), (move.currency_id if move else self.currency_id).name),
            (_("Time zone"), contract.tz or "UTC"),
        ]
        return meta

    def _breakdown_labels(self):
        return {
            "date": _("Date"), "start": _("Start (local time)"), "end": _("End (local time)"),
            "evse": _("Charger / EVSE"), "session": _("Session"), "cdr": _("CDR"),
            "kwh": _("Energy (kWh)"), "duration_hours": _("Duration (h)"),
            "parking_hours": _("Parking (h)"), "tariff": _("Applied tariff"),
            "grid": _("Price grid"), "stated_tax": _("Stated tax: %s"),
            "amount_energy": _("Energy"), "amount_time": _("Charging time"),
            "amount_parking": _("Parking"), "amount_fixed": _("Session fee"),
            "amount_reservation": _("Reservation"), "amount_adjustment": _("Min/max adjustment"),
            "amount_untaxed": _("Excl. VAT"), "amount_tax": _("VAT"),
            "amount_total": _("Incl. VAT"), "late": _("Late"), "dispute": _("Dispute"),
            "total": _("Total"),
        }

    def _breakdown_filename(self, move=None):
        parts = [self.contract_id.name or str(self.id), str(self.date_start)]
        if move and move.name and move.name != "/":
            parts.append(move.name)
        name = re.sub(r"[^\w.-]+", "-", "-".join(parts)).strip("-")
        return "%s.xlsx" % name

    def _document_summary(self, move):
        """Figures of the clearing summary printed on ``move`` (its PDF): the sessions it bills
        (late ones among them), their energy, the credits it carries, and the period's
        excluded sessions and accepted disputes."""
        self.ensure_one()
        self.env["clearing.cdr"].flush_model()
        self.env["clearing.dispute"].flush_model()
        self.env.cr.execute(
            """SELECT count(*) FILTER (WHERE NOT coalesce(c.credit, false)),
                      count(*) FILTER (WHERE c.is_late AND NOT coalesce(c.credit, false)),
                      coalesce(sum(c.energy_kwh) FILTER (WHERE NOT coalesce(c.credit, false)), 0),
                      count(*) FILTER (WHERE c.credit)
                 FROM clearing_cdr c WHERE c.invoice_move_id = %s""", [move.id])
        billed, late, energy, credits = self.env.cr.fetchone()
        self.env.cr.execute(
            """SELECT (SELECT count(*) FROM clearing_cdr
                        WHERE period_id = %(p)s AND state = 'excluded'),
                      (SELECT count(*) FROM clearing_dispute
                        WHERE period_id = %(p)s AND state = 'accepted')""", {"p": self.id})
        excluded, accepted = self.env.cr.fetchone()
        return {
            "billed": billed, "late": late, "energy_kwh": float(energy), "credits": credits,
            "excluded": excluded, "disputes_accepted": accepted,
        }

    def action_download_breakdown(self):
        """Backend: the period's XLSX breakdown (the same builder as the portal and the mail)."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_url",
            "url": "/my/clearing/periods/%s/xlsx" % self.id,
            "target": "download",
        }
