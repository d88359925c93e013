from . import test_partner
from . import test_contract
from . import test_tariff_roundtrip
from . import test_matching
from . import test_ingest
from . import test_security
from . import test_ui
