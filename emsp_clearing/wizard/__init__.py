from . import clearing_tariff_import
from . import cdr_import_wizard
