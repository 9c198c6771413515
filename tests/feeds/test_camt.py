"""Tests of the ISO 20022 camt.052 / camt.053 / camt.054 feed (feeds stage)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import camt, mt940, ofx
from models.errors import FeedFormatError
from tests.feeds import helpers

DATA = Path(__file__).parent / "data" / "camt"
SAMPLE = DATA / "statement_v08_prefixed.xml"
REAL = helpers.REALDATA / "camt"
REAL_FILES = helpers.real_files(REAL)


def real(name: str) -> str:
    return helpers.real_path(REAL, name)


def check_result_shape(result) -> None:
    helpers.check_result_shape(result, "camt")


def check_expected(result, expected: dict) -> None:
    helpers.check_expected(result, expected, "camt", lambda raw: "Ntry>" in raw)


# --- the reviewed sample ----------------------------------------------------------------------


def test_sample_matches_reviewed_expected_output():
    check_expected(camt.read(str(SAMPLE)), helpers.load_expected(SAMPLE))


def test_sample_attributes_keep_reversal_batch_and_codes():
    rows = camt.read(str(SAMPLE)).frame.to_dicts()
    split = json.loads(rows[0]["attributes"])
    assert split["message"] == "camt.053.001.08"
    assert split["AcctSvcrRef"] == "E1" and split["AcctSvcrRef_detail"] == "E1-A"
    assert split["entry_amount_minor"] == "100000" and split["batch_NbOfTxs"] == "2"
    reversal = json.loads(rows[2]["attributes"])
    assert reversal["reversal"] == "true" and reversal["ReturnReason"] == "AC04"
    assert reversal["credit_debit"] == "DBIT"
    assert json.loads(rows[3]["attributes"])["date_source"] == "value date"
    details = json.loads(json.loads(rows[4]["attributes"])["transaction_details"])
    assert [d["EndToEndId"] for d in details] == ["SAL-1", "SAL-2"]


def test_split_amounts_add_up_to_the_entry():
    frame = camt.read(str(SAMPLE)).frame
    batch = frame.filter(pl.col("attributes").str.contains('"AcctSvcrRef": "E1"', literal=True))
    assert batch.get_column("amount_minor").sum() == 100000 and batch.height == 2


def test_names_survive_byte_exact():
    frame = camt.read(str(SAMPLE)).frame
    assert frame.get_column("counterparty").to_list()[:2] == ["Émilie Dubois", "王小明"]
    assert "Kontoführungsgebühr" in frame.get_column("description").to_list()


def test_reading_twice_gives_identical_ids():
    first = camt.read(str(SAMPLE)).frame.get_column("id").to_list()
    assert first == camt.read(str(SAMPLE)).frame.get_column("id").to_list()
    assert len(set(first)) == len(first)


def test_enveloped_camt054_with_pending_entry(tmp_path):
    path = tmp_path / "enveloped.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><BusMsg><AppHdr><BizMsgIdr>X</BizMsgIdr></AppHdr>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>'
        "<GrpHdr><MsgId>M</MsgId></GrpHdr><Ntfctn><Id>N1</Id><Acct><Id><IBAN>GB33BUKB20201555555555</IBAN></Id></Acct>\n"
        '<Ntry><Amt Ccy="GBP">12.34</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>'
        "<BookgDt><Dt>2024-05-01</Dt></BookgDt></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document></BusMsg>",
        encoding="utf-8",
    )
    result = camt.read(str(path))
    row = result.frame.row(0, named=True)
    assert (row["amount_minor"], row["currency"], row["source_line"]) == (1234, "GBP", 2)
    attributes = json.loads(row["attributes"])
    assert attributes["status"] == "PDNG" and attributes["message"] == "camt.054.001.08"
    assert any("PDNG" in n for n in result.notes)


def test_doctype_and_entities_are_refused(tmp_path):
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>&b;</BkToCstmrStmt></Document>',
        encoding="utf-8",
    )
    with pytest.raises(FeedFormatError, match="DOCTYPE"):
        camt.read(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"<Document><BkToCstmrStmt><Stmt>", "not well-formed XML"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"><CstmrCdtTrfInitn/></Document>',
         "not a camt.052/053/054"),
        (b"\xff\xfe\x00\x00garbage", "XML"),
    ],
)
def test_whole_file_problems_raise_feed_format_error(tmp_path, content, message):
    helpers.check_whole_file_problem(camt.read, tmp_path / "bad.xml", content, message)


def test_missing_file_and_directory(tmp_path):
    helpers.check_missing_file_and_directory(camt.read, tmp_path, "nope.xml")


def test_identify_by_content():
    head = SAMPLE.read_bytes()[:65536]
    assert camt.identify(head, "export.dat")
    assert not ofx.identify(head, "export.dat")
    assert not mt940.identify(head, "export.dat")


# --- real files from ../shared/realdata --------------------------------------------------------

# facts from ../shared/realdata/expected.json. rows: {index: (date, minor, currency)}
REAL_FACTS: dict[str, dict] = {
    "genkgo_camt052_001_02_intraday_report.xml": {
        "transactions": 1, "rows": {0: ("2007-10-18", -20000000, "SEK")}, "accounts": ["CH2801234000123456789"],
        "id0": "CH2801234000123456789/AAAASESS-FP-ACCR-01", "balances": [],
    },
    "genkgo_camt053_001_02_all_balance_types.xml": {
        "transactions": 1, "rows": {0: ("2014-12-31", 885, "EUR")},
        "balance_amounts": [101, 202, 303, 404, 505, 606, 707, 808, 909, 1010],
        "balance_types": ["opening", "previously_closed", "opening_available", "closing", "closing_available",
                          "forward_available", "information", "interim_available", "interim", "expected"],
    },
    "genkgo_camt053_001_02_minimal.xml": {
        "transactions": 1, "rows": {0: ("2014-12-31", 885, "EUR")}, "accounts": ["NL26VAYB8060476890"],
        "balances": [("opening", "EUR", 1815), ("closing", "SEK", -2700), ("opening_available", "CHF", 3500),
                     ("closing_available", "JPY", -2700)],
        "reference0": "4654654654654654", "counterparty0": "NAME NAME", "value_date0": "2015-01-02",
    },
    "genkgo_camt053_001_02_three_decimal_amounts.xml": {
        "transactions": 1, "rows": {0: ("2014-12-31", 885, "EUR")},
        "balances": [("opening", "EUR", 1815), ("closing", "EUR", 2705)],
    },
    "genkgo_camt053_001_02_two_statements.xml": {
        "transactions": 2, "rows": {0: ("2014-12-31", 885, "EUR"), 1: ("2014-12-31", -700, "EUR")},
        "balances": [("opening", "EUR", 1815), ("closing", "EUR", 2700), ("opening", "EUR", 2700), ("closing", "EUR", 2000)],
        "description0": "Transaction Description 1", "counterparty0": "Company Name 1", "reference0": "000000001",
        "description1": "Transaction Description 2", "counterparty1": "Company Name 2",
    },
    "genkgo_camt053_001_08.xml": {
        "transactions": 1, "rows": {0: ("2014-12-31", 885, "EUR")},
        "balances": [("opening", "EUR", 1815), ("closing", "SEK", -2700), ("opening_available", "CHF", 3500),
                     ("closing_available", "JPY", -2700)],
        "id0": "NL26VAYB8060476890/AAAASESS-FP-CN_98765/01",
    },
    "genkgo_camt054_001_02_batch_debit.xml": {
        # 3 transaction details without amounts: the entry stays one line, details kept
        "transactions": 1, "rows": {0: ("2007-10-18", -20000000, "SEK")}, "details0": 3,
    },
    "genkgo_camt054_001_08_uetr.xml": {
        # no booking date and no value date: rejected rather than dated by guess
        "transactions": 1, "rejected": 1, "reject_reason": "no booking date",
    },
    "juntagrico_camt054_alternative_bank_qr.xml": {
        "transactions": 2, "rows": {0: ("2023-02-02", 100000, "CHF"), 1: ("2023-02-03", 105000, "CHF")},
        "reference0": "000000000000015000000000722", "reference1": "000000000000013600000000688",
        "accounts": ["CH5008390039005810105"], "credited": "CH9030123039005810105",
    },
    "juntagrico_camt054_postfinance_qr.xml": {
        "transactions": 2, "rows": {0: ("2020-06-18", 77829, "CHF"), 1: ("2020-06-18", 91393, "CHF")},
        "reference0": "539115429773825311971477453", "reference1": "662437765447746478179744715",
        "instr_ids": ["1006265-25bbb3b1a", "1005970-70a75515"], "sum": 169222,
    },
    "oca_camt053_001_02_abnamro_nl.xml": {
        "transactions": 4,
        "rows": {0: ("2014-01-05", -75425, "EUR"), 1: ("2014-01-05", -56405, "EUR"), 2: ("2014-01-05", -10000, "EUR"),
                 3: ("2014-01-05", 140531, "EUR")},
        "reference0": "435005714488-ABNO33052620", "counterparty0": "INSURANCE COMPANY TESTX",
        "reference1": "TESTBANK/NL/20141229/01206408", "reference2": "TESTBANK/NL/20141229/01206407",
        "reference3": "115", "counterparty3": "3rd party Media",
        "balances": [("opening", "EUR", 1556827), ("closing", "EUR", 1512112)], "reversed": [1, 2],
    },
    "oca_camt053_001_04_no_entries.xml": {
        "transactions": 0, "balances": [("opening", "CHF", 152076), ("closing", "CHF", 152076)],
        "accounts": ["NL77ABNA0574908765"],
    },
    "oca_camt053_001_04_swiss_batch_txdtls.xml": {
        "transactions": 2, "rows": {0: ("2017-03-22", 218700, "CHF"), 1: ("2017-03-22", 129600, "CHF")},
        "reference0": "302388292000011111111111111", "reference1": "302388292000022222222222222",
        "counterparty0": "Banque Cantonale Vaudoise",
        "description0": "CRÉDIT GROUPÉ BVR TRAITEMENT DU 22.03.2017 NUMÉRO CLIENT 01-70884-3 PAQUET ID: 123456CHCAFEBABE",
        "balances": [("opening", "CHF", 7596015), ("closing", "CHF", 7944315)],
    },
    "oca_camt054_001_04_notification.xml": {
        "transactions": 1, "rows": {0: ("2022-01-26", 500, "EUR")}, "reference0": "000000000000000000000000003",
        "counterparty0": "Test Customer", "accounts": ["NL77ABNA0574908765"], "balances": [],
    },
}


def test_every_real_file_has_recorded_facts():
    helpers.check_facts_cover_files(REAL, REAL_FACTS, "camt")


@pytest.mark.parametrize("name", sorted(REAL_FACTS))
def test_real_file_facts(name):
    path = real(name)
    facts = REAL_FACTS[name]
    assert camt.identify(Path(path).read_bytes()[:65536], path)
    result = camt.read(path)
    check_result_shape(result)
    assert result.rows_read == facts["transactions"]
    assert result.rejects.height == facts.get("rejected", 0), result.rejects.to_dicts()
    if "reject_reason" in facts:
        assert all(facts["reject_reason"] in r for r in result.rejects.get_column("reason").to_list())
    rows = result.frame.to_dicts()
    attributes = [json.loads(r["attributes"]) for r in rows]
    for index, (day, minor, currency) in facts.get("rows", {}).items():
        assert (rows[index]["date"].isoformat(), rows[index]["amount_minor"], rows[index]["currency"]) == (day, minor, currency)
    if "accounts" in facts:
        assert result.accounts == facts["accounts"]
    if "balances" in facts:
        got = [(b["type"], b["currency"], b["amount_minor"]) for b in result.balances.to_dicts()]
        assert got == facts["balances"]
    if "balance_amounts" in facts:
        assert result.balances.get_column("amount_minor").to_list() == facts["balance_amounts"]
        assert result.balances.get_column("type").to_list() == facts["balance_types"]
    for key in ("counterparty", "description", "reference", "id"):
        for index in range(4):
            if f"{key}{index}" in facts:
                assert rows[index][key] == facts[f"{key}{index}"]
    if "value_date0" in facts:
        assert attributes[0]["value_date"] == facts["value_date0"]
    if "details0" in facts:
        assert len(json.loads(attributes[0]["transaction_details"])) == facts["details0"]
    if "credited" in facts:
        assert all(a["NtryRef"] == facts["credited"] for a in attributes)  # the QR-IBAN credited
    if "instr_ids" in facts:
        assert [a["InstrId"] for a in attributes] == facts["instr_ids"]
    if "sum" in facts:
        assert result.frame.get_column("amount_minor").sum() == facts["sum"]
    if "reversed" in facts:
        assert [i for i, a in enumerate(attributes) if a.get("reversal") == "true"] == facts["reversed"]


@pytest.mark.parametrize("name", sorted(REAL_FACTS))
def test_real_file_read_twice_gives_identical_ids(name):
    path = real(name)
    assert camt.read(path).frame.get_column("id").to_list() == camt.read(path).frame.get_column("id").to_list()


# --- fuzzing ----------------------------------------------------------------------------------


def read_bytes(folder: Path, data: bytes):
    result = helpers.read_fuzzed(camt.read, folder / "fuzz.xml", data, "camt")
    if result is None:
        return None
    # every entry element is read, split or rejected: never dropped silently
    entries = len(re.findall(rb"<(?:[A-Za-z_][\w.-]*:)?Ntry[\s>]", data))
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"<!--" not in data and b"CDATA" not in data:
        assert result.rows_read >= entries
    return result


FUZZ_SOURCES = [SAMPLE.read_bytes()] + [(REAL / n).read_bytes() for n in REAL_FILES[:8]]

@settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes(tmp_path_factory, data):
    read_bytes(tmp_path_factory.mktemp("camt"), data)


@settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(range(len(FUZZ_SOURCES))), plan=helpers.MUTATIONS)
def test_fuzz_mutated_statements(tmp_path_factory, source, plan):
    read_bytes(tmp_path_factory.mktemp("camt"), helpers.mutate(FUZZ_SOURCES[source], plan))


TEXT_VALUES = st.sampled_from(["", "1.00", "1,00", "0", "-5", "12.3456", "abc", "2024-02-30", "2024-01-01", "CRDT", "DBIT",
                               "true", "ÿ", "9" * 25])


@settings(max_examples=200, deadline=5000)
@given(amount=TEXT_VALUES, currency=st.sampled_from(["EUR", "JPY", "KWD", "XXX", ""]), indicator=TEXT_VALUES,
       booked=TEXT_VALUES, value=TEXT_VALUES, detail_amounts=st.lists(TEXT_VALUES, max_size=3))
def test_fuzz_entry_values(tmp_path_factory, amount, currency, indicator, booked, value, detail_amounts):
    ccy = f' Ccy="{currency}"' if currency else ""
    details = "".join(f"<TxDtls><Amt{ccy}>{a}</Amt></TxDtls>" for a in detail_amounts)
    xml = (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"><BkToCstmrStmt><Stmt><Id>S</Id>'
        "<Acct><Id><IBAN>X</IBAN></Id></Acct>"
        f"<Ntry><Amt{ccy}>{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd><BookgDt><Dt>{booked}</Dt></BookgDt>"
        f"<ValDt><Dt>{value}</Dt></ValDt><NtryDtls>{details}</NtryDtls></Ntry></Stmt></BkToCstmrStmt></Document>"
    )
    result = read_bytes(tmp_path_factory.mktemp("camt"), xml.encode("utf-8"))
    assert result is not None and result.rows_read >= 1
    if result.frame.height:  # split lines add up to the entry; an unsplit entry keeps its amount
        entry = int(json.loads(result.frame.item(0, "attributes"))["entry_amount_minor"])
        assert result.frame.get_column("amount_minor").sum() == entry
