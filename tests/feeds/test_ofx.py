"""Tests of the OFX / QFX feed (feeds stage)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import camt, mt940, ofx
from models.errors import FeedFormatError
from tests.feeds import helpers

DATA = Path(__file__).parent / "data" / "ofx"
SAMPLES = [DATA / "checking_sgml_cp1252.ofx", DATA / "two_accounts_v2_utf8.ofx"]
REAL = helpers.REALDATA / "ofx"
REAL_FILES = helpers.real_files(REAL)


def real(name: str) -> str:
    return helpers.real_path(REAL, name)


def check_result_shape(result) -> None:
    helpers.check_result_shape(result, "ofx")


def check_expected(result, expected: dict) -> None:
    helpers.check_expected(result, expected, "ofx", lambda raw: raw.startswith("<STMTTRN>"))


# --- the reviewed samples ---------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_matches_reviewed_expected_output(sample):
    check_expected(ofx.read(str(sample)), helpers.load_expected(sample))


def test_names_survive_byte_exact():
    cp1252 = ofx.read(str(SAMPLES[0])).frame.get_column("counterparty").to_list()
    assert "Société Générale — virement" in cp1252 and "Café Zürich" in cp1252
    utf8 = ofx.read(str(SAMPLES[1])).frame
    assert utf8.get_column("counterparty").to_list()[:2] == ["株式会社山田商事", "東京電力"]
    assert utf8.item(0, "description") == "振込 請求書 A-17"
    assert json.loads(utf8.item(0, "attributes"))["trntype"] == "CREDIT"


def test_empty_fitid_gets_the_documented_fingerprint():
    frame = ofx.read(str(SAMPLES[1])).frame
    key = "\x1f".join(["1234567", "2024-02-15", "-3300", "JPY", "東京電力", "", "0"])
    assert frame.item(1, "id") == "fp-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_reading_twice_gives_identical_ids(sample):
    assert ofx.read(str(sample)).frame.get_column("id").to_list() == ofx.read(str(sample)).frame.get_column("id").to_list()


def test_booking_date_is_the_date_as_written_not_utc(tmp_path):
    frame = ofx.read(str(SAMPLES[0])).frame
    # DTPOSTED 20240131230000[-5:EST] is 2024-02-01 04:00 UTC; the bank booked it on the 31st
    assert frame.item(1, "date") == dt.date(2024, 1, 31)


def test_amount_too_large_for_int64_is_a_reject(tmp_path):
    text = SAMPLES[1].read_text(encoding="utf-8").replace("<TRNAMT>-25.00<", "<TRNAMT>-320133290268683266<")
    path = tmp_path / "huge.ofx"
    path.write_text(text, encoding="utf-8")
    result = ofx.read(str(path))
    assert result.rows_read == 5 and "too large" in result.rejects.get_column("reason").to_list()[-1]


def test_error_status_is_refused_with_the_bank_message(tmp_path):
    path = tmp_path / "error.ofx"
    path.write_text(
        "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS></SONRS></SIGNONMSGSRSV1>"
        "<BANKMSGSRSV1><STMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>2000</CODE><SEVERITY>ERROR</SEVERITY>"
        "<MESSAGE>Account locked</MESSAGE></STATUS></STMTTRNRS></BANKMSGSRSV1></OFX>",
        encoding="ascii",
    )
    with pytest.raises(FeedFormatError, match="2000 ERROR 'Account locked'"):
        ofx.read(str(path))


def test_transaction_outside_a_statement_is_a_reject_not_a_silent_drop(tmp_path):
    text = SAMPLES[1].read_text(encoding="utf-8").replace(
        "</OFX>", "<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20240301</DTPOSTED><TRNAMT>-1</TRNAMT><FITID>X</FITID></STMTTRN>\n</OFX>"
    )
    path = tmp_path / "orphan.ofx"
    path.write_text(text, encoding="utf-8")
    result = ofx.read(str(path))
    assert result.rows_read == 6
    assert "not inside a bank or credit-card statement" in result.rejects.get_column("reason").to_list()[-1]


def test_broken_markup_around_a_transaction_is_reported(tmp_path):
    text = SAMPLES[0].read_bytes().replace(b"</STMTTRN>\r\n<STMTTRN>\r\n<TRNTYPE>CHECK", b"</STMTTRN\r\n<STMTTRN>\r\n<TRNTYPE>CHECK")
    path = tmp_path / "broken.ofx"
    path.write_bytes(text)
    result = ofx.read(str(path))
    check_result_shape(result)
    assert result.rows_read >= 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"date,amount\n2024-01-01,5\n", "not an OFX"),
        (b"<OFX><SIGNONMSGSRSV1></SIGNONMSGSRSV1></OFX>", "no bank, credit-card or investment statement"),
    ],
)
def test_whole_file_problems_raise_feed_format_error(tmp_path, content, message):
    helpers.check_whole_file_problem(ofx.read, tmp_path / "bad.ofx", content, message)


def test_missing_file_and_directory(tmp_path):
    helpers.check_missing_file_and_directory(ofx.read, tmp_path, "nope.ofx")


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_identify_by_content(sample):
    head = sample.read_bytes()[:65536]
    assert ofx.identify(head, "download.dat")
    assert not mt940.identify(head, "download.dat")
    assert not camt.identify(head, "download.dat")


# --- real files from ../shared/realdata --------------------------------------------------------

# facts from ../shared/realdata/expected.json. rows: {index: (date, minor, currency, id suffix)}
REAL_FACTS: dict[str, dict] = {
    "beancountimport_amex_creditcard_misnested.ofx": {
        "transactions": 3,
        "rows": {0: ("2013-11-24", -14394, "USD", "320133280255184014"), 1: ("2013-11-25", -2805, "USD", "320133290268683266"),
                 2: ("2013-11-26", -1876, "USD", "320133300285014247")},
        "balances": [("closing", "2014-01-12", -235638)], "accounts": ["379700001111222"],
        "text0": ("PRUNE               NEW YORK", "7101466     RESTAURANT"),
    },
    "ledgerautosync_accented_latin1_cp1252.ofx": {
        "transactions": 1, "rows": {0: ("2014-09-20", -5873, "USD", "201409206")},
        "counterparty0": "Virement Interac à: Jean",
    },
    "ofxparse_anz_creditcard_v203_unclosed.ofx": {
        "transactions": 1, "rows": {0: ("2017-05-08", -550, "AUD", "201705080001")}, "accounts": ["1234123412341234"],
        "balances": [("closing", "2017-05-10", -12345), ("available", "2017-05-10", 12345)], "description0": "SOME MEMO",
    },
    "ofxparse_bank_medium_sgml102.ofx": {
        "transactions": 3,
        "rows": {0: ("2009-04-01", -660, "CAD", "0000123456782009040100001"), 1: ("2009-04-02", -31667, "CAD", None),
                 2: ("2009-04-03", -2200, "CAD", None)},
        "accounts": ["12300 000012345678"],
        "balances": [("closing", "2009-05-23", 38234), ("available", "2009-05-23", 68234)],
        "counterparty0": "MCDONALD'S #112", "description0": "POS MERCHANDISE;MCDONALD'S #112",
    },
    "ofxparse_checking_sgml102_indented.ofx": {
        "transactions": 3,
        "rows": {0: ("2011-03-31", 1, "USD", "0000486"), 1: ("2011-04-05", -3451, "USD", "0000487"),
                 2: ("2011-04-07", -2500, "USD", "0000488")},
        "accounts": ["1452687~7"], "reference2": "319",
        "balances": [("closing", "2013-05-25", 10099), ("available", "2013-05-25", 7599)],
    },
    "ofxparse_fidelity_invbanktran.ofx": {
        # three cash lines carry 4 decimals (115.8331 USD): refused rather than rounded
        "transactions": 4, "rejected": 3, "reject_reason": "more decimals than USD allows",
        "rows": {0: ("2012-07-20", -150000, "USD", "X0000000000000000000001")},
        "counterparty0": "Check Paid #0000001001",
    },
    "ofxparse_malformed_amount_dollar_sign.ofx": {"transactions": 1, "rejected": 1, "reject_reason": "'$120'"},
    "ofxparse_malformed_dates_missing.ofx": {"transactions": 3, "rejected": 3, "reject_reason": "DTPOSTED"},
    "ofxparse_multiple_accounts_v211.ofx": {
        "transactions": 0, "accounts": ["9100", "9200"],
        "balances": [("closing", "2012-06-03", 11100), ("closing", "2012-06-03", 22200)],
    },
    "ofxparse_newcastle_permanent_empty_tags.ofx": {
        "transactions": 1, "rows": {0: ("2018-05-07", 1234, "AUD", None)}, "accounts": ["12345678"],
        "description0": "CBA:Transfer", "fingerprint0": True,
    },
    "ofxparse_suncorp_v200_cdata.ofx": {
        "transactions": 1, "rows": {0: ("2013-12-15", -1685, "AUD", "1")},
        "counterparty0": "EFTPOS WDL HANDYWAY ALDI STORE",
        "description0": "EFTPOS WDL HANDYWAY ALDI STORE   GEELONG WEST VICAU",
        "balances": [("closing", "2013-12-15", 123412), ("available", "2013-12-15", 123412)],
    },
    "ofxparse_svb_error_status.ofx": {"refused": "2000 ERROR 'General Server Error'"},
    "ofxtools_nubank_br_creditcard_sgml102.ofx": {
        "transactions": 6, "sum": -128091, "accounts": ["11111111-UUID-UUID-UUID-111111111111"],
        "rows": {0: ("2024-03-23", -1300, "BRL", None)}, "balances": [("closing", "2024-03-25", -128091)],
    },
    "ofxtools_stmtrs_v200_comma_decimal.ofx": {
        "transactions": 2, "rows": {0: ("2005-10-04", -20000, "USD", "00002"), 1: ("2005-10-20", -30000, "USD", "00003")},
        "balances": [("closing", "2005-10-29", 20029), ("available", "2005-10-29", 20029)],
    },
    "ofxtools_stmtrs_v200_xml.ofx": {
        "transactions": 2, "rows": {0: ("2005-10-04", -20000, "USD", "00002"), 1: ("2005-10-20", -30000, "USD", "00003")},
        "reference0": "1000", "accounts": ["999988"],
        "balances": [("closing", "2005-10-29", 20029), ("available", "2005-10-29", 20029)],
    },
    "reds_ally_qfx_values_on_next_line_dup_fitid.qfx": {
        "transactions": 2, "rows": {0: ("2019-01-09", -5500, "USD", "21302970191741"), 1: ("2019-01-09", -100000, "USD", "21302970191741")},
        "counterparty0": "Transfer to savings account", "same_ids": True, "note": "FITID 21302970191741",
        "balances": [("closing", "2015-01-01", 15065)],
    },
    "reds_capitalone_360_checking_v202.qfx": {
        "transactions": 4,
        "rows": {0: ("2023-02-28", 1, "USD", None), 1: ("2023-01-19", 88899, "USD", None),
                 2: ("2023-01-17", -10000, "USD", None), 3: ("2023-01-12", 44455, "USD", None)},
        "description0": "Monthly Interest Paid", "balances": [("closing", "2023-03-10", 432198)],
    },
    "reds_n26_ofxstatement_header_in_comment.ofx": {
        "transactions": 1, "rows": {0: ("2025-05-03", -150, "EUR", "fitid")}, "counterparty0": "name",
        "balances": [],
    },
}


def test_every_real_file_has_recorded_facts():
    helpers.check_facts_cover_files(REAL, REAL_FACTS, "OFX")


@pytest.mark.parametrize("name", sorted(REAL_FACTS))
def test_real_file_facts(name):
    path = real(name)
    facts = REAL_FACTS[name]
    assert ofx.identify(Path(path).read_bytes()[:65536], path)
    if "refused" in facts:
        with pytest.raises(FeedFormatError, match=re.escape(facts["refused"])):
            ofx.read(path)
        return
    result = ofx.read(path)
    check_result_shape(result)
    assert result.rows_read == facts["transactions"]
    assert result.rejects.height == facts.get("rejected", 0), result.rejects.to_dicts()
    if "reject_reason" in facts:
        assert all(facts["reject_reason"] in r for r in result.rejects.get_column("reason").to_list())
    rows = result.frame.to_dicts()
    for index, (day, minor, currency, fitid) in facts.get("rows", {}).items():
        row = rows[index]
        assert (row["date"].isoformat(), row["amount_minor"], row["currency"]) == (day, minor, currency)
        if fitid is not None:
            assert row["id"].endswith("/" + fitid) and json.loads(row["attributes"])["fitid"] == fitid
    if "sum" in facts:
        assert result.frame.get_column("amount_minor").sum() == facts["sum"]
    if "accounts" in facts:
        assert result.accounts == facts["accounts"]
    if "balances" in facts:
        balances = [(b["type"], b["date"].isoformat(), b["amount_minor"]) for b in result.balances.to_dicts()]
        assert balances == facts["balances"]
    for key in ("counterparty", "description", "reference"):
        for index in range(3):
            if f"{key}{index}" in facts:
                assert rows[index][key] == facts[f"{key}{index}"]
    if "text0" in facts:
        assert (rows[0]["counterparty"], rows[0]["description"]) == facts["text0"]
    if facts.get("fingerprint0"):
        assert re.fullmatch(r"fp-[0-9a-f]{16}", rows[0]["id"])
    if facts.get("same_ids"):
        assert rows[0]["id"] == rows[1]["id"]
    if "note" in facts:
        assert any(facts["note"] in n for n in result.notes)


@pytest.mark.parametrize("name", sorted(n for n in REAL_FACTS if "refused" not in REAL_FACTS[n]))
def test_real_file_read_twice_gives_identical_ids(name):
    path = real(name)
    assert ofx.read(path).frame.get_column("id").to_list() == ofx.read(path).frame.get_column("id").to_list()


# --- fuzzing ----------------------------------------------------------------------------------


def read_bytes(folder: Path, data: bytes):
    result = helpers.read_fuzzed(ofx.read, folder / "fuzz.ofx", data, "ofx")
    if result is None:
        return None
    # every <STMTTRN> of the text is read or rejected, never dropped silently
    starts = len(re.findall(rb"(?i)<STMTTRN\s*>", data))
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        assert result.rows_read >= starts
    return result


FUZZ_SOURCES = [p.read_bytes() for p in SAMPLES] + [(REAL / n).read_bytes() for n in REAL_FILES[:8]]

@settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes(tmp_path_factory, data):
    read_bytes(tmp_path_factory.mktemp("ofx"), data)


@settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=500))
def test_fuzz_arbitrary_bytes_after_an_ofx_tag(tmp_path_factory, data):
    read_bytes(tmp_path_factory.mktemp("ofx"), b"<OFX><STMTRS><CURDEF>USD<STMTTRN>" + data)


@settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(range(len(FUZZ_SOURCES))), plan=helpers.MUTATIONS)
def test_fuzz_mutated_statements(tmp_path_factory, source, plan):
    read_bytes(tmp_path_factory.mktemp("ofx"), helpers.mutate(FUZZ_SOURCES[source], plan))
