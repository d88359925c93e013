from datetime import timedelta
from decimal import Decimal

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools.numbers import decimal_to_json, float_to_decimal, to_decimal
from ..tools.selections import WEEKDAY_FIELDS

DIMENSIONS = [
    ("ENERGY", "Energy (per kWh)"),
    ("FLAT", "Flat (per session)"),
    ("TIME", "Charging time"),
    ("PARKING_TIME", "Parking time"),
]
TIME_DIMENSIONS = ("TIME", "PARKING_TIME")
PRICE_QUANT = Decimal("0.000001")


def float_time_to_hhmm(value):
    minutes = int(round(value * 60))
    return "%02d:%02d" % divmod(minutes, 60)


def hhmm_to_float_time(value):
    hours, minutes = value.split(":")
    return int(hours) + int(minutes) / 60.0


class ClearingPriceLineMixin(models.AbstractModel):
    """One line of a price grid: one OCPI tariff element with one price component. The grid
    of a contract and of its fleets (``clearing.price.line``) and the draft grid of a what-if
    simulation (``clearing.whatif.line``) are made of it."""

    _name = "clearing.price.line.mixin"
    _description = "Price Grid Line"

    sequence = fields.Integer(default=10)
    dimension = fields.Selection(DIMENSIONS, required=True, default="ENERGY")
    price = fields.Float(
        digits=(16, 6),
        required=True,
        help="Price excluding VAT: per kWh (energy), per session (flat), per hour or "
        "minute (charging/parking time).",
    )
    time_unit = fields.Selection(
        [("hour", "per hour"), ("minute", "per minute")],
        default="hour",
        help="Unit of the price for charging/parking time. A per-minute price is "
        "sent to OCPI as the exact per-hour price (x 60).",
    )
    step_size = fields.Integer(
        default=1,
        help="Billing step: seconds for time dimensions, Wh for energy. The billed "
        "volume is rounded up to a multiple of it.",
    )
    start_time = fields.Float(
        help="Start of the time window (local time of the contract). Leave start and "
        "end at 00:00 for no time restriction. The window may wrap past midnight "
        "(e.g. 22:00-07:00)."
    )
    end_time = fields.Float(help="End of the time window (excluded).")
    day_mon = fields.Boolean("Mon")
    day_tue = fields.Boolean("Tue")
    day_wed = fields.Boolean("Wed")
    day_thu = fields.Boolean("Thu")
    day_fri = fields.Boolean("Fri")
    day_sat = fields.Boolean("Sat")
    day_sun = fields.Boolean("Sun")
    date_start = fields.Date("Valid From")
    date_end = fields.Date("Valid Until", help="Last day (included) the line applies.")
    min_kwh = fields.Float("Min kWh", digits=(16, 3))
    max_kwh = fields.Float("Max kWh", digits=(16, 3))
    min_duration = fields.Float("Min Duration (min)", digits=(16, 2))
    max_duration = fields.Float("Max Duration (min)", digits=(16, 2))
    min_power = fields.Float("Min Power (kW)", digits=(16, 2))
    max_power = fields.Float("Max Power (kW)", digits=(16, 2))
    restriction_summary = fields.Char(compute="_compute_restriction_summary")

    @api.depends(
        "start_time", "end_time", "date_start", "date_end", "min_kwh", "max_kwh",
        "min_duration", "max_duration", "min_power", "max_power",
        "day_mon", "day_tue", "day_wed", "day_thu", "day_fri", "day_sat", "day_sun",
    )
    def _compute_restriction_summary(self):
        for line in self:
            line.restriction_summary = ", ".join(line._restriction_parts()) or _("always")

    def _restriction_parts(self):
        self.ensure_one()
        parts = []
        if self._has_time_window():
            parts.append(
                "%s-%s"
                % (float_time_to_hhmm(self.start_time), float_time_to_hhmm(self.end_time))
            )
        days = [label[:3].title() for label, fname in WEEKDAY_FIELDS if self[fname]]
        if days:
            parts.append("/".join(days))
        if self.date_start or self.date_end:
            parts.append(
                "%s..%s" % (self.date_start or "", self.date_end or "")
            )
        for low, high, unit in (
            ("min_kwh", "max_kwh", "kWh"),
            ("min_duration", "max_duration", "min"),
            ("min_power", "max_power", "kW"),
        ):
            if self[low] or self[high]:
                parts.append(
                    "%s..%s %s" % (self[low] or "", self[high] or "", unit)
                )
        return parts

    def _has_time_window(self):
        self.ensure_one()
        return bool(self.start_time or self.end_time)

    @api.constrains(
        "price", "step_size", "start_time", "end_time", "date_start", "date_end",
        "min_kwh", "max_kwh", "min_duration", "max_duration", "min_power", "max_power",
        "dimension", "time_unit",
    )
    def _check_line(self):
        for line in self:
            name = _("Grid line %(seq)s (%(dim)s)", seq=line.sequence, dim=line.dimension)
            if line.price < 0:
                raise ValidationError(_("%s: the price cannot be negative.", name))
            if line.dimension != "FLAT" and line.step_size <= 0:
                raise ValidationError(
                    _("%s: the step size must be strictly positive.", name)
                )
            for fname in ("start_time", "end_time"):
                if not 0 <= line[fname] < 24:
                    raise ValidationError(
                        _("%s: times must be between 00:00 and 23:59.", name)
                    )
            if line._has_time_window() and line.start_time == line.end_time:
                raise ValidationError(
                    _("%s: the time window starts and ends at the same time.", name)
                )
            if line.date_start and line.date_end and line.date_start > line.date_end:
                raise ValidationError(
                    _("%s: the start date is after the end date.", name)
                )
            for low, high, label in (
                ("min_kwh", "max_kwh", _("energy")),
                ("min_duration", "max_duration", _("duration")),
                ("min_power", "max_power", _("power")),
            ):
                if line[low] < 0 or line[high] < 0:
                    raise ValidationError(
                        _("%(name)s: the bounds (%(what)s) cannot be negative.",
                          name=name, what=label)
                    )
                if line[high] and line[low] > line[high]:
                    raise ValidationError(
                        _("%(name)s: the minimum (%(what)s) is above the maximum.",
                          name=name, what=label)
                    )

    # ------------------------------------------------------------------
    # OCPI conversion
    # ------------------------------------------------------------------
    def _ocpi_price(self):
        """Price of the OCPI price component (per hour for time dimensions)."""
        self.ensure_one()
        price = float_to_decimal(self.price, PRICE_QUANT)
        if self.dimension in TIME_DIMENSIONS and self.time_unit == "minute":
            price *= 60
        return price

    def _to_ocpi_element(self, vat=None):
        """One OCPI 2.2.1 TariffElement with a single PriceComponent."""
        self.ensure_one()
        component = {
            "type": self.dimension,
            "price": decimal_to_json(self._ocpi_price()),
            "step_size": self.step_size if self.dimension != "FLAT" else 1,
        }
        if vat is not None:
            component["vat"] = decimal_to_json(vat)
        restrictions = {}
        if self._has_time_window():
            restrictions["start_time"] = float_time_to_hhmm(self.start_time)
            restrictions["end_time"] = float_time_to_hhmm(self.end_time)
        if self.date_start:
            restrictions["start_date"] = fields.Date.to_string(self.date_start)
        if self.date_end:
            # OCPI end_date is exclusive, ours is the last day included.
            restrictions["end_date"] = fields.Date.to_string(
                self.date_end + timedelta(days=1)
            )
        for fname, key, factor in (
            ("min_kwh", "min_kwh", 1),
            ("max_kwh", "max_kwh", 1),
            ("min_power", "min_power", 1),
            ("max_power", "max_power", 1),
            ("min_duration", "min_duration", 60),
            ("max_duration", "max_duration", 60),
        ):
            if self[fname]:
                value = float_to_decimal(self[fname]) * factor
                if factor != 1:
                    value = value.quantize(Decimal(1))
                restrictions[key] = decimal_to_json(value)
        days = [day for day, fname in WEEKDAY_FIELDS if self[fname]]
        if days:
            restrictions["day_of_week"] = days
        element = {"price_components": [component]}
        if restrictions:
            element["restrictions"] = restrictions
        return element

    @api.model
    def _vals_from_ocpi_element(self, element, path="$"):
        """Grid line values (one per price component) from an OCPI TariffElement."""
        restrictions = element.get("restrictions") or {}
        unsupported = sorted(
            set(restrictions)
            - {
                "start_time", "end_time", "start_date", "end_date", "min_kwh",
                "max_kwh", "min_duration", "max_duration", "min_power", "max_power",
                "day_of_week",
            }
        )
        if unsupported:
            raise ValidationError(
                _(
                    "%(path)s.restrictions: %(keys)s cannot be represented in a "
                    "contract grid.",
                    path=path,
                    keys=", ".join(unsupported),
                )
            )
        common = {}
        if "start_time" in restrictions or "end_time" in restrictions:
            common["start_time"] = hhmm_to_float_time(
                restrictions.get("start_time") or "00:00"
            )
            common["end_time"] = hhmm_to_float_time(restrictions.get("end_time") or "00:00")
        if restrictions.get("start_date"):
            common["date_start"] = fields.Date.to_date(restrictions["start_date"])
        if restrictions.get("end_date"):
            common["date_end"] = fields.Date.to_date(restrictions["end_date"]) - timedelta(
                days=1
            )
        for key in ("min_kwh", "max_kwh", "min_power", "max_power"):
            if restrictions.get(key) is not None:
                common[key] = float(restrictions[key])
        for key in ("min_duration", "max_duration"):
            if restrictions.get(key) is not None:
                common[key] = float(to_decimal(restrictions[key]) / 60)
        weekday_fields = dict(WEEKDAY_FIELDS)
        for day in restrictions.get("day_of_week") or []:
            if day not in weekday_fields:
                raise ValidationError(
                    _("%(path)s.restrictions.day_of_week: unknown day %(day)r.",
                      path=path, day=day)
                )
            common[weekday_fields[day]] = True
        vals_list = []
        for index, component in enumerate(element.get("price_components") or []):
            dimension = component.get("type")
            if dimension not in dict(DIMENSIONS):
                raise ValidationError(
                    _(
                        "%(path)s.price_components[%(index)s].type: %(type)r is not "
                        "supported in a contract grid.",
                        path=path,
                        index=index,
                        type=dimension,
                    )
                )
            vals = dict(common)
            vals.update(
                dimension=dimension,
                price=float(to_decimal(component.get("price", 0))),
                step_size=int(component.get("step_size") or 1),
                time_unit="hour",
            )
            vals_list.append(vals)
        return vals_list

    def _grid_values(self):
        """The line's grid values (every stored field of the mixin), to copy it to another
        grid (a what-if draft grid prefilled from the contract's)."""
        self.ensure_one()
        mixin = self.env["clearing.price.line.mixin"]
        return {fname: self[fname] for fname, field in mixin._fields.items()
                if field.store and fname not in models.MAGIC_COLUMNS and fname != "id"}
