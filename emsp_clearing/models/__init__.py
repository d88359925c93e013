from . import res_company
from . import res_config_settings
from . import res_partner
from . import clearing_price_line
from . import clearing_contract
from . import clearing_cdr
from . import clearing_cdr_demo
