from . import ocpi
from . import portal
