"""Odoo-free tests: make ``emsp_clearing/`` importable so that ``import clearing_core`` works."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON_DIR = os.path.join(REPO_ROOT, "emsp_clearing")
if ADDON_DIR not in sys.path:
    sys.path.insert(0, ADDON_DIR)
