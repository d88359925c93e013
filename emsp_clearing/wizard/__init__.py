from . import clearing_tariff_import
from . import cdr_import_wizard
from . import clearing_whatif
from . import clearing_whatif_line
from . import clearing_whatif_result
