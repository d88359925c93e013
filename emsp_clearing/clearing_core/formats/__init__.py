"""File formats of the clearing core: the CDR CSV import (``cdr_csv``) and the per-session XLSX
breakdown of a period (``xlsx_breakdown``)."""
