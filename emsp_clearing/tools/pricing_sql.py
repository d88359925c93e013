"""SQL shared by the code that prices stored sessions again without the ORM."""

from odoo.tools import SQL

# what the engine reads of a stored CDR (``pricing.price_cdr``: currency, start, end, charging
# periods), cut out of its JSON by PostgreSQL: the rest (token, location, totals...) was
# validated when the CDR was received and is neither transferred nor parsed again. The what-if
# simulation (wizard/clearing_whatif.py) and the set-based resale re-pricing
# (``clearing.contract._reprice_resale``) read it.
PRICING_JSON = SQL(
    "jsonb_strip_nulls(jsonb_build_object('id', raw_json->'id', 'currency', "
    "raw_json->'currency', 'start_date_time', raw_json->'start_date_time', "
    "'end_date_time', raw_json->'end_date_time', 'charging_periods', "
    "raw_json->'charging_periods'))")
