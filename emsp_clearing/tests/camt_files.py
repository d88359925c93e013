"""Bank files as a bank sends them: camt.053.001.02 statements and camt.054.001.02
debit/credit notifications, element order as in the ISO 20022 schemas (also used by
bench/bench_payments.py)."""

from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

NS053 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
NS054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"


@dataclass
class Entry:
    amount: Decimal  # positive; credit unless debit=True
    booking_date: str  # YYYY-MM-DD
    bank_ref: str  # AcctSvcrRef: the bank's unique reference of the transaction
    debit: bool = False
    structured_ref: str = ""  # RmtInf/Strd/CdtrRefInf/Ref
    unstructured: str = ""  # RmtInf/Ustrd
    party_name: str = ""  # Dbtr (credit) or Cdtr (debit)
    party_iban: str = ""
    end_to_end: str = "NOTPROVIDED"
    instructed: tuple = ()  # (amount, currency) when the payer paid another currency


def _amt(value):
    return "%.2f" % Decimal(value)


def _entry_xml(e, ccy):
    cd = "DBIT" if e.debit else "CRDT"
    party, party_acct = ("Cdtr", "CdtrAcct") if e.debit else ("Dbtr", "DbtrAcct")
    amt_dtls = ""
    if e.instructed:
        amt_dtls = (
            "<AmtDtls><InstdAmt><Amt Ccy=\"%s\">%s</Amt></InstdAmt>"
            "<TxAmt><Amt Ccy=\"%s\">%s</Amt></TxAmt></AmtDtls>"
            % (e.instructed[1], _amt(e.instructed[0]), ccy, _amt(e.amount))
        )
    parties = ""
    if e.party_name or e.party_iban:
        parties = "<RltdPties>"
        if e.party_name:
            parties += "<%s><Nm>%s</Nm></%s>" % (party, escape(e.party_name), party)
        if e.party_iban:
            parties += "<%s><Id><IBAN>%s</IBAN></Id></%s>" % (party_acct, e.party_iban,
                                                              party_acct)
        parties += "</RltdPties>"
    rmt = ""
    if e.unstructured or e.structured_ref:
        rmt = "<RmtInf>"
        if e.unstructured:
            rmt += "<Ustrd>%s</Ustrd>" % escape(e.unstructured)
        if e.structured_ref:
            rmt += (
                "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                "<Ref>%s</Ref></CdtrRefInf></Strd>" % escape(e.structured_ref)
            )
        rmt += "</RmtInf>"
    family = ("ICDT", "ESCT") if e.debit else ("RCDT", "ESCT")
    return (
        "<Ntry><Amt Ccy=\"{ccy}\">{amt}</Amt><CdtDbtInd>{cd}</CdtDbtInd><Sts>BOOK</Sts>"
        "<BookgDt><Dt>{d}</Dt></BookgDt><ValDt><Dt>{d}</Dt></ValDt>"
        "<AcctSvcrRef>{ref}</AcctSvcrRef>"
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{fam}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly>"
        "</Domn></BkTxCd>"
        "<NtryDtls><TxDtls><Refs><AcctSvcrRef>{ref}</AcctSvcrRef>"
        "<EndToEndId>{e2e}</EndToEndId></Refs>{amt_dtls}{parties}{rmt}</TxDtls></NtryDtls>"
        "</Ntry>"
    ).format(ccy=ccy, amt=_amt(e.amount), cd=cd, d=e.booking_date, ref=escape(e.bank_ref),
             fam=family[0], sub=family[1], e2e=escape(e.end_to_end), amt_dtls=amt_dtls,
             parties=parties, rmt=rmt)


def _account_xml(iban, ccy):
    return "<Acct><Id><IBAN>%s</IBAN></Id><Ccy>%s</Ccy></Acct>" % (iban, ccy)


def _balance(code, amount, day, ccy):
    return (
        "<Bal><Tp><CdOrPrtry><Cd>%s</Cd></CdOrPrtry></Tp><Amt Ccy=\"%s\">%s</Amt>"
        "<CdtDbtInd>%s</CdtDbtInd><Dt><Dt>%s</Dt></Dt></Bal>"
        % (code, ccy, _amt(abs(amount)), "DBIT" if amount < 0 else "CRDT", day)
    )


def camt053(msg_id, account_iban, ccy, entries, opening=Decimal("0.00"),
            created="2026-12-01T06:00:00"):
    """A camt.053.001.02 statement (bytes) of ``entries`` on our account."""
    total = sum((-e.amount if e.debit else e.amount) for e in entries)
    day = max(e.booking_date for e in entries)
    first = min(e.booking_date for e in entries)
    body = "".join(_entry_xml(e, ccy) for e in entries)
    xml = (
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<Document xmlns=\"{ns}\"><BkToCstmrStmt>"
        "<GrpHdr><MsgId>{msg}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>"
        "<Stmt><Id>{msg}-1</Id><ElctrncSeqNb>1</ElctrncSeqNb><CreDtTm>{created}</CreDtTm>"
        "{acct}{open}{close}{body}</Stmt>"
        "</BkToCstmrStmt></Document>"
    ).format(ns=NS053, msg=escape(msg_id), created=created,
             acct=_account_xml(account_iban, ccy),
             open=_balance("OPBD", opening, first, ccy),
             close=_balance("CLBD", opening + total, day, ccy), body=body)
    return xml.encode("utf-8")


def camt054(msg_id, account_iban, ccy, entries, created="2026-12-01T06:00:00"):
    """A camt.054.001.02 debit/credit notification (bytes) of ``entries``."""
    body = "".join(_entry_xml(e, ccy) for e in entries)
    xml = (
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<Document xmlns=\"{ns}\"><BkToCstmrDbtCdtNtfctn>"
        "<GrpHdr><MsgId>{msg}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>"
        "<Ntfctn><Id>{msg}-1</Id><CreDtTm>{created}</CreDtTm>{acct}{body}</Ntfctn>"
        "</BkToCstmrDbtCdtNtfctn></Document>"
    ).format(ns=NS054, msg=escape(msg_id), created=created,
             acct=_account_xml(account_iban, ccy), body=body)
    return xml.encode("utf-8")
