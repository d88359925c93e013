"""Code of the add-on that is not a model (as ``account/tools/``): selections shared by several
models, billing period arithmetic, display formatting, the bulk writer of batch ingestion, the
demo CDR generator and the statement of account of a contract. Imports Odoo, unlike the pure
``clearing_core``."""
