"""Pure OCPI 2.2.1 clearing core (no Odoo import).

* ``ocpi``: the OCPI objects (CDR, Tariff) and their validation; ``errors``: OcpiValidationError;
  ``currencies``: ISO 4217 minor units, rounding, the JSON number -> Decimal conversion.
* ``pricing``: the tariff engine (``price_cdr``).
* ``transport``: the OCPI response envelope, tokens and pagination (``envelope``) and the HTTP
  client of a partner's endpoints (``client``).
* ``formats``: the CDR CSV import (``cdr_csv``) and the XLSX breakdown (``xlsx_breakdown``).

Usable as ``odoo.addons.emsp_clearing.clearing_core`` and, with ``emsp_clearing/`` on
``sys.path``, as the top-level package ``clearing_core``.
"""

from . import currencies, errors, ocpi, pricing
from .errors import OcpiValidationError
from .ocpi import parse_cdr, parse_tariff
from .pricing import price_cdr

__all__ = ["currencies", "errors", "ocpi", "pricing", "OcpiValidationError", "parse_cdr",
           "parse_tariff", "price_cdr"]
