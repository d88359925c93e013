"""Matching of incoming bank payments to open invoices (no ORM: plain data in, decisions out).

The caller loads, once per run, every open invoice of the companies concerned and gives each
statement line as a :class:`BankLine`. :func:`match_lines` then decides for each line, in this
order of rules:

1. ``ref``: the structured creditor reference (ISO 11649 ``RF..``), normalised with Odoo's
   ``account/tools/structured_reference.py`` (``RF18123456789`` == ``RF18 1234 5678 9``);
2. ``number``: the invoice number in the remittance text;
3. ``iban``: the payer (found by the IBAN of the debtor account among the partners' bank
   accounts) has exactly one open invoice of the amount paid;
4. ``multi``: one payment for several invoices -- several references or numbers in one
   remittance, or the exact sum of all open invoices of the payer.

A line whose invoices are found and whose amount equals their residual in the same currency is
a full match; every other line gets an exception kind (``partial``, ``overpayment``,
``currency``, ``unknown``; ``duplicate``/``credited`` are told apart by the caller from the
references that point at invoices no longer open). Cost: one dictionary look-up per token of a
line, whatever the number of invoices.
"""

import re
from dataclasses import dataclass, field

from odoo.addons.account.tools.structured_reference import (
    is_valid_structured_reference_iso,
    sanitize_structured_reference,
)

RULES = ("ref", "number", "iban", "multi")
_RF_START = re.compile(r"RF\d\d")
_TOKEN = re.compile(r"[A-Z0-9][A-Z0-9/_.\-]*[A-Z0-9]")
# An ISO 11649 reference is RF + 2 check digits + 1 to 21 characters.
_RF_MIN, _RF_MAX = 5, 25


def reference_key(reference):
    """The form under which references are compared: no spaces, upper case."""
    return sanitize_structured_reference(reference or "").upper()


def _known(key, containers):
    return any(key in c for c in containers)


def rf_references(text, *known):
    """Valid RF references of ``text`` found in one of the ``known`` containers, in order,
    without repeats.

    Bank and payer may write the reference with or without spaces (``RF18 1234 5678 9``): the
    text is compared without any whitespace, each ``RF`` + 2 digits is tried with every length
    ISO 11649 allows and kept when it is valid and known.
    """
    flat = re.sub(r"\s", "", (text or "").upper())
    found = []
    for m in _RF_START.finditer(flat):
        start = m.start()
        for end in range(min(len(flat), start + _RF_MAX), start + _RF_MIN - 1, -1):
            candidate = flat[start:end]
            if _known(candidate, known) and is_valid_structured_reference_iso(candidate):
                if candidate not in found:
                    found.append(candidate)
                break
    return found


def candidate_keys(text):
    """Every valid RF reference (of any length) and every token of ``text``: what the caller
    looks up among invoices no longer open when nothing open was found."""
    flat = re.sub(r"\s", "", (text or "").upper())
    refs = set()
    for m in _RF_START.finditer(flat):
        for end in range(m.start() + _RF_MIN, min(len(flat), m.start() + _RF_MAX) + 1):
            if is_valid_structured_reference_iso(flat[m.start():end]):
                refs.add(flat[m.start():end])
    return refs, set(_TOKEN.findall((text or "").upper()))


def number_tokens(text, *known):
    """Invoice numbers (upper case, found in one of the ``known`` containers) written in
    ``text``, in order."""
    found = []
    for token in _TOKEN.findall((text or "").upper()):
        if _known(token, known) and token not in found:
            found.append(token)
    return found


@dataclass(eq=False)
class OpenInvoice:
    line_ids: tuple  # open receivable move lines
    move_id: int
    name: str
    partner_id: int  # commercial partner
    currency_id: int
    residual: int  # in cents (minor units) of currency_id, > 0
    reference: str = ""  # reference_key of payment_reference


@dataclass
class BankLine:
    id: int
    amount: int  # minor units, > 0 for money received
    currency_id: int
    partner_id: int = 0  # commercial partner found from the payer's IBAN, 0 if none
    texts: tuple = ()  # ref, remittance information


@dataclass
class Decision:
    line: BankLine
    rule: str = ""  # one of RULES, "" when nothing was found
    invoices: list = field(default_factory=list)  # OpenInvoice
    kind: str = ""  # "" = full match, else the exception type
    expected: int = 0
    references: list = field(default_factory=list)  # tokens that pointed nowhere open


class InvoiceIndex:
    """Open invoices indexed by reference, number and partner (built once per run)."""

    def __init__(self, invoices):
        self.invoices = list(invoices)
        self.by_ref = {}
        self.by_name = {}
        self.by_partner = {}
        for inv in self.invoices:
            if inv.reference:
                self.by_ref.setdefault(inv.reference, []).append(inv)
            self.by_name[inv.name.upper()] = inv
            self.by_partner.setdefault(inv.partner_id, []).append(inv)


def _decide(line, rule, invoices):
    decision = Decision(line=line, rule=rule, invoices=invoices)
    decision.expected = sum(inv.residual for inv in invoices)
    if any(inv.currency_id != line.currency_id for inv in invoices):
        decision.kind = "currency"
    elif line.amount < decision.expected:
        decision.kind = "partial"
    elif line.amount > decision.expected:
        decision.kind = "overpayment"
    return decision


def match_line(line, index, closed_refs=(), closed_names=()):
    """The :class:`Decision` for one bank line (see the module's docstring for the rules).

    ``closed_refs``/``closed_names``: reference keys and upper-case numbers of invoices that
    are no longer open; a line naming only those gets ``kind`` "unknown" with ``references``
    set, for the caller to tell a duplicate from a credited invoice.
    """
    text = " ".join(t for t in line.texts if t)
    refs = rf_references(text, index.by_ref, closed_refs)
    open_refs = [r for r in refs if r in index.by_ref]
    if open_refs:
        invoices = []
        for ref in open_refs:
            for inv in index.by_ref[ref]:
                if inv not in invoices:
                    invoices.append(inv)
        return _decide(line, "ref" if len(invoices) == 1 else "multi", invoices)
    names = number_tokens(text, index.by_name, closed_names)
    open_names = [n for n in names if n in index.by_name]
    if open_names:
        invoices = [index.by_name[n] for n in open_names]
        return _decide(line, "number" if len(invoices) == 1 else "multi", invoices)
    if refs or names:
        return Decision(line=line, kind="unknown", references=refs + names)
    if line.partner_id:
        candidates = index.by_partner.get(line.partner_id, [])
        same = [inv for inv in candidates
                if inv.residual == line.amount and inv.currency_id == line.currency_id]
        if len(same) == 1:
            return _decide(line, "iban", same)
        if len(candidates) > 1 and all(inv.currency_id == line.currency_id
                                       for inv in candidates):
            if sum(inv.residual for inv in candidates) == line.amount:
                return _decide(line, "multi", list(candidates))
    return Decision(line=line, kind="unknown")


def match_lines(lines, index, closed_refs=(), closed_names=()):
    """Decisions for ``lines`` in order. An invoice paid in full by one line is not offered to
    the following lines of the same run (it would be a duplicate payment)."""
    decisions = []
    for line in lines:
        decision = match_line(line, index, closed_refs, closed_names)
        if decision.invoices and not decision.kind:
            for inv in decision.invoices:
                _drop(index, inv)
        decisions.append(decision)
    return decisions


def _drop(index, inv):
    if inv.reference in index.by_ref:
        rest = [i for i in index.by_ref[inv.reference] if i is not inv]
        if rest:
            index.by_ref[inv.reference] = rest
        else:
            del index.by_ref[inv.reference]
    if index.by_name.get(inv.name.upper()) is inv:
        del index.by_name[inv.name.upper()]
    partner = index.by_partner.get(inv.partner_id)
    if partner and inv in partner:
        partner.remove(inv)
