from . import ocpi
