"""How a CDR's applied tariff and price breakdown read for people (backend form and portal).

The stored JSON keeps the engine's exact figures (for audit); this only formats them: local
times of the contract, volumes with their unit, prices per unit, amounts to 4 decimals.
"""
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pytz
from markupsafe import Markup, escape

from odoo import _, models

_Q4 = Decimal("0.0001")
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def _dec(value):
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _num(value, places=4):
    """A number rounded half-up to ``places`` decimals, without trailing zeros past 2."""
    d = _dec(value)
    if d is None:
        return ""
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = "{:f}".format(q)
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(2, "0")
        text = "%s.%s" % (whole, frac)
    return text


def _hms(hours):
    """Hours (Decimal) as h:mm:ss."""
    d = _dec(hours)
    if d is None:
        return ""
    sign = "-" if d < 0 else ""
    seconds = int((abs(d) * 3600).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "%s%d:%02d:%02d" % (sign, h, m, s)


class ClearingCdr(models.Model):
    _inherit = "clearing.cdr"

    # ------------------------------------------------------------------ labels
    def _dimension_labels(self):
        return {
            "ENERGY": _("Energy"),
            "FLAT": _("Session fee"),
            "TIME": _("Charging time"),
            "PARKING_TIME": _("Parking time"),
            "RESERVATION": _("Reservation"),
        }

    @staticmethod
    def _local_text(value, tz):
        """'2026-11-16T16:06:00Z' -> '2026-11-16 17:06:00' in ``tz``."""
        if not value:
            return ""
        try:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=pytz.utc)
        except (TypeError, ValueError):
            return str(value)
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    def _volume_text(self, dimension, value):
        if dimension == "ENERGY":
            return "%s kWh" % _num(value, 3)
        if dimension == "FLAT":
            return _num(value, 0)
        return _hms(value)

    def _unit_price_text(self, dimension, price):
        symbol = self.currency_id.symbol or self.currency_id.name or ""
        unit = {"ENERGY": _("/kWh"), "FLAT": _("/session")}.get(dimension, _("/h"))
        return "%s %s%s" % (_num(price), symbol, unit)

    # ------------------------------------------------------------------ rows
    def _breakdown_rows(self):
        """The priced lines, formatted for display."""
        self.ensure_one()
        labels = self._dimension_labels()
        # the contract's time zone (portal users may read their sessions, not the contract)
        tz = pytz.timezone(self.sudo().contract_id.tz or "UTC")
        rows = []
        for line in self.price_breakdown or []:
            dimension = line.get("dimension", "")
            vat = line.get("vat")
            rows.append({
                "start": self._local_text(line.get("period_start"), tz),
                "end": self._local_text(line.get("period_end"), tz),
                "dimension": labels.get(dimension, dimension),
                "volume": self._volume_text(dimension, line.get("volume")),
                "billed": self._volume_text(dimension, line.get("billed_volume")),
                "unit_price": self._unit_price_text(dimension, line.get("unit_price")),
                "vat": ("%s %%" % _num(vat, 2)) if vat is not None else "",
                "excl_vat": _num(line.get("excl_vat")),
                "incl_vat": _num(line.get("incl_vat")),
                "element": ("#%s" % (line["element_index"] + 1))
                if line.get("element_index") is not None else "",
            })
        return rows

    def _restriction_text(self, restrictions):
        """OCPI TariffRestrictions in words (the snapshot of the applied tariff)."""
        r = restrictions or {}
        parts = []
        if r.get("start_time") or r.get("end_time"):
            parts.append("%s–%s" % (r.get("start_time") or "00:00", r.get("end_time") or "24:00"))
        if r.get("day_of_week"):
            names = {
                "MONDAY": _("Mon"), "TUESDAY": _("Tue"), "WEDNESDAY": _("Wed"),
                "THURSDAY": _("Thu"), "FRIDAY": _("Fri"), "SATURDAY": _("Sat"),
                "SUNDAY": _("Sun"),
            }
            days = sorted(r["day_of_week"], key=lambda d: _DAYS.index(d) if d in _DAYS else 9)
            parts.append("/".join(names.get(d, d) for d in days))
        if r.get("start_date"):
            parts.append(_("from %s", r["start_date"]))
        if r.get("end_date"):
            parts.append(_("before %s", r["end_date"]))
        if r.get("min_kwh") is not None:
            parts.append(_("from %s kWh", _num(r["min_kwh"], 3)))
        if r.get("max_kwh") is not None:
            parts.append(_("below %s kWh", _num(r["max_kwh"], 3)))
        if r.get("min_duration") is not None:
            parts.append(_("after %s", _hms(Decimal(r["min_duration"]) / 3600)))
        if r.get("max_duration") is not None:
            parts.append(_("before %s", _hms(Decimal(r["max_duration"]) / 3600)))
        if r.get("min_power") is not None:
            parts.append(_("from %s kW", _num(r["min_power"], 2)))
        if r.get("max_power") is not None:
            parts.append(_("below %s kW", _num(r["max_power"], 2)))
        if r.get("min_current") is not None:
            parts.append(_("from %s A", _num(r["min_current"], 2)))
        if r.get("max_current") is not None:
            parts.append(_("below %s A", _num(r["max_current"], 2)))
        if r.get("reservation"):
            parts.append(_("reservation"))
        return ", ".join(parts) or _("always")

    def _tariff_rows(self):
        """The applied tariff's components, formatted for display."""
        self.ensure_one()
        labels = self._dimension_labels()
        rows = []
        for element in (self.applied_tariff or {}).get("elements") or []:
            when = self._restriction_text(element.get("restrictions"))
            for component in element.get("price_components") or []:
                dimension = component.get("type", "")
                step = component.get("step_size")
                if not step or dimension == "FLAT":
                    step_text = ""
                elif dimension == "ENERGY":
                    step_text = "%s Wh" % step
                else:
                    step_text = "%s s" % step
                rows.append({
                    "dimension": labels.get(dimension, dimension),
                    "price": self._unit_price_text(dimension, component.get("price")),
                    "step": step_text,
                    "when": when,
                })
        return rows

    # ------------------------------------------------------------------ backend
    def _compute_price_breakdown_html(self):
        headers = (
            _("From (local time)"), _("To"), _("Dimension"), _("Volume"), _("Billed"),
            _("Unit Price"), _("VAT"), _("Excl. VAT"), _("Incl. VAT"), _("Tariff Element"),
        )
        keys = ("start", "end", "dimension", "volume", "billed", "unit_price", "vat",
                "excl_vat", "incl_vat", "element")
        head = Markup("").join(Markup("<th>%s</th>") % h for h in headers)
        for cdr in self:
            rows = cdr._breakdown_rows()
            if not rows:
                cdr.price_breakdown_html = False
                continue
            body = Markup("").join(
                Markup("<tr>%s</tr>")
                % Markup("").join(Markup("<td>%s</td>") % escape(row[k]) for k in keys)
                for row in rows
            )
            cdr.price_breakdown_html = Markup(
                '<table class="table table-sm o_clearing_breakdown">'
                "<thead><tr>%s</tr></thead><tbody>%s</tbody></table>"
            ) % (head, body)
