"""Pure OCPI 2.2.1 clearing core (no Odoo import): parsing/validation, pricing, currencies.

Usable as ``odoo.addons.emsp_clearing.clearing_core`` and, with ``emsp_clearing/`` on
``sys.path``, as the top-level package ``clearing_core``.
"""

from . import currencies, errors, ocpi, pricing
from .errors import OcpiValidationError
from .ocpi import parse_cdr, parse_tariff
from .pricing import price_cdr

__all__ = ["currencies", "errors", "ocpi", "pricing", "OcpiValidationError", "parse_cdr",
           "parse_tariff", "price_cdr"]
