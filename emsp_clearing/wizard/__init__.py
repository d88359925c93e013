from . import clearing_tariff_import
