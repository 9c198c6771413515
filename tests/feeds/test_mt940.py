"""Tests of the SWIFT MT940 / MT942 feed (feeds stage)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import camt, mt940, ofx
from tests.feeds import helpers

DATA = Path(__file__).parent / "data" / "mt940"
SAMPLE = DATA / "sepa_cp1252_crlf.sta"
REAL = helpers.REALDATA / "mt940"
REAL_FILES = helpers.real_files(REAL)
_CONTROL = "\x00\x01\x02\x03\x04\x1a"


def real(name: str) -> str:
    return helpers.real_path(REAL, name)


def check_result_shape(result) -> None:
    helpers.check_result_shape(result, "mt940")


def check_expected(result, expected: dict) -> None:
    helpers.check_expected(result, expected, "mt940", bool)


# --- the reviewed sample ------------------------------------------------------------------------


def test_sample_matches_reviewed_expected_output():
    result = mt940.read(str(SAMPLE))
    check_expected(result, helpers.load_expected(SAMPLE))
    assert all(r["source_file"] == str(SAMPLE) for r in result.frame.to_dicts())
    assert any("cp1252" in note for note in result.notes)


def test_sample_attributes_keep_sepa_and_statement_fields():
    rows = mt940.read(str(SAMPLE)).frame.to_dicts()
    first = json.loads(rows[0]["attributes"])
    assert first["gvc"] == "166"
    assert first["posting_text"] == "GUTSCHRIFT"
    assert first["counterparty_account"] == "DE89370400440532013000"
    assert first["sepa_eref"] == "INV-2024-001"
    assert first["mark"] == "C" and first["funds_code"] == "R"
    assert first["statement_number"] == "00012"
    reversal = json.loads(rows[2]["attributes"])
    assert reversal["mark"] == "RC"  # reversal of a credit: money out
    last = json.loads(rows[3]["attributes"])
    assert last["supplementary_details"] == "Supplementary text"


def test_reading_twice_gives_identical_ids():
    first = mt940.read(str(SAMPLE)).frame
    second = mt940.read(str(SAMPLE)).frame
    assert first.get_column("id").to_list() == second.get_column("id").to_list()
    assert first.get_column("id").n_unique() == first.height


def test_fingerprint_is_the_documented_key(tmp_path):
    text = (
        ":20:REF\n:25:ACC-1\n:28C:7/1\n:60F:C240101EUR0,00\n"
        ":61:240102C10,00NTRFNONREF\n:86:same text\n"
        ":61:240102C10,00NTRFNONREF\n:86:same text\n"
        ":62F:C240102EUR20,00\n-\n"
    )
    path = tmp_path / "twins.sta"
    path.write_text(text, encoding="ascii")
    ids = mt940.read(str(path)).frame.get_column("id").to_list()
    assert len(ids) == 2 and ids[0] != ids[1]  # two identical lines stay two lines
    assert all(i.startswith("fp-") for i in ids)
    # the same line in another file (another statement number) keeps its place in the key
    again = mt940.read(str(path)).frame.get_column("id").to_list()
    assert ids == again


def test_reversal_marks_and_signs(tmp_path):
    text = (
        ":20:R\n:25:ACC\n:28C:1\n:60F:C240101EUR100,00\n"
        ":61:240102RD5,00NRTINONREF\n:61:240102RC7,00NRTINONREF\n"
        ":61:240102C1,NTRFNONREF\n:61:240102D2,5NTRFNONREF\n"
        ":62F:C240102EUR96,50\n"
    )
    path = tmp_path / "rev.sta"
    path.write_text(text, encoding="ascii")
    amounts = mt940.read(str(path)).frame.get_column("amount_minor").to_list()
    assert amounts == [500, -700, 100, -250]


def test_cp852_statement_keeps_hungarian_text(tmp_path):
    text = (
        ":20:STARTUMS\r\n:25:HU/123/HUF\r\n:28C:1\r\n:60F:C240101HUF1000,00\r\n"
        ":61:240102DF250,00NTRF\r\nBankon belüli átutalás\r\n:86:Kovács Ödön őszi díj\r\n"
        ":62F:C240102HUF750,00\r\n"
    )
    path = tmp_path / "hu.sta"
    path.write_bytes(text.encode("cp852"))
    result = mt940.read(str(path))
    row = result.frame.row(0, named=True)
    assert row["description"] == "Kovács Ödön őszi díj"
    assert json.loads(row["attributes"])["supplementary_details"] == "Bankon belüli átutalás"
    assert row["amount_minor"] == -25000 and row["currency"] == "HUF"
    assert any("cp852" in n for n in result.notes)
    # an explicit encoding overrides the guess
    forced = mt940.read(str(path), encoding="cp852").frame.row(0, named=True)
    assert forced["description"] == "Kovács Ödön őszi díj"


def test_invalid_booking_date_rejects_that_line_only(tmp_path):
    text = (
        ":20:R\n:25:ACC\n:28C:1\n:60F:C240101EUR100,00\n"
        ":61:2402300230D6,00NCHGNONREF\n:86:fee\n"
        ":61:240229D1,00NCHGNONREF\n:86:ok\n"
        ":62F:C240229EUR93,00\n"
    )
    path = tmp_path / "feb30.sta"
    path.write_text(text, encoding="ascii")
    result = mt940.read(str(path))
    assert result.frame.height == 1 and result.frame.item(0, "date") == dt.date(2024, 2, 29)
    assert result.rejects.height == 1
    reject = result.rejects.row(0, named=True)
    assert reject["line"] == 5 and "0230" in reject["reason"]


def test_amount_too_large_for_int64_is_a_reject(tmp_path):
    text = ":20:R\n:25:ACC\n:60F:C240101EUR99999999999999999999,00\n:61:240102C99999999999999999999,NTRFNONREF\n"
    path = tmp_path / "huge.sta"
    path.write_text(text, encoding="ascii")
    result = mt940.read(str(path))
    assert result.rows_read == 1 and "too large" in result.rejects.item(0, "reason")
    assert result.balances.height == 0 and any("too large" in n for n in result.notes)


def test_entry_date_across_year_end(tmp_path):
    text = ":20:R\n:25:ACC\n:60F:C231231EUR0,00\n:61:2312310102C5,00NTRFNONREF\n:62F:C240102EUR5,00\n"
    path = tmp_path / "yearend.sta"
    path.write_text(text, encoding="ascii")
    assert mt940.read(str(path)).frame.item(0, "date") == dt.date(2024, 1, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b"date,amount\n2024-01-01,5\n", "no MT940 statement"),
        (b"\x00\x01\x02binary", "binary"),
    ],
)
def test_whole_file_problems_raise_feed_format_error(tmp_path, content, message):
    helpers.check_whole_file_problem(mt940.read, tmp_path / "bad.sta", content, message)


def test_missing_file_and_directory(tmp_path):
    helpers.check_missing_file_and_directory(mt940.read, tmp_path, "nope.sta")


def test_identify_by_content():
    head = SAMPLE.read_bytes()[:65536]
    assert mt940.identify(head, "statement.txt")
    assert not ofx.identify(head, "statement.txt")
    assert not camt.identify(head, "statement.txt")
    assert not mt940.identify(b"<OFX>", "x.sta")


# --- real files from ../shared/realdata --------------------------------------------------------

# facts from ../shared/realdata/expected.json: (transactions, {row index: (date, minor, currency)},
# balances [(type, date, minor)] that must be present)
REAL_FACTS: dict[str, dict] = {
    "abnamro_nl_two_statements.sta": {
        "transactions": 10, "rows": {0: ("2011-05-24", -900, "EUR"), 9: ("2011-05-24", -1500, "EUR")},
        "sum": -34593, "accounts": ["517852257"],
        "balances": [("opening", "2011-05-22", 323628), ("closing", "2011-05-23", 87684),
                     ("interim_opening", "2011-05-23", 287684), ("interim_closing", "2011-05-24", 184975)],
    },
    "asn_bank_nl_swift_blocks_31_statements.940.txt": {
        "transactions": 8, "rows": {0: ("2020-01-01", -6500, "EUR"), 7: ("2020-01-31", -90376, "EUR")},
        "amounts": [-6500, 100000, -80155, -165, 82872, -100000, 100018, -90376],
        "accounts": ["NL81ASNB9999999999"],
        "balances": [("opening", "2020-01-01", 44429), ("opening", "2020-01-31", 40481), ("closing", "2020-01-31", 50123)],
        "statements": 31, "reference0": "NL47INGB9999999999",
    },
    "cmxl_mixed_3_statements.sta": {
        # the first statement is in DEM (Deutsche Mark, withdrawn 2002): not an active ISO 4217 code
        "transactions": 16, "rejected": 11, "reject_reason": "DEM",
        "balances": [("opening", "2003-10-02", 4000000), ("closing", "2002-03-25", 5004000)],
    },
    "german_bank_sepa_26_statements.sta": {
        "transactions": 97, "rows": {0: ("2007-09-04", 30000, "EUR"), 96: ("2007-09-04", 5005, "EUR")},
        "balances": [("opening", "2007-08-22", 0), ("closing", "2007-09-04", 5005)], "statements": 26,
    },
    "german_bank_sepa_structured86.sta": {
        "transactions": 11, "rows": {0: ("2007-09-04", 5099005, "EUR"), 10: ("2007-09-04", -357256903, "EUR")},
        "balances": [("opening", "2007-09-03", -197043187), ("closing", "2007-09-04", -447204909),
                     ("closing_available", "2007-09-04", -447204909), ("closing", "2007-09-04", 112525040)],
        "counterparty0": "KARL        KAUFMANN",
    },
    "german_bank_utf8_umlauts_cr_dr.sta": {
        "transactions": 4, "rows": {0: ("2010-03-19", 2700, "EUR"), 3: ("2010-03-19", 112000, "EUR")},
        "balances": [("opening", "2010-03-18", 13007319), ("closing", "2010-03-19", 13119319)],
        "text": "Überweisung",
    },
    "german_gv_codes_no_closing.sta": {
        "transactions": 2, "rows": {0: ("2017-09-14", -23315, "EUR"), 1: ("2019-10-25", -2430, "EUR")},
        "balances": [("opening", "2017-09-14", 1234512)], "no_closing": True,
    },
    "german_invalid_date_feb30_crlf.sta": {
        # value date 160230 is impossible; the entry (booking) date 0301 is valid and is used
        "transactions": 1, "rows": {0: ("2016-03-01", -600, "EUR")},
        "balances": [("opening", "2016-02-29", 120000), ("closing", "2016-03-01", 119400)],
    },
    "ing_nl.sta": {
        "transactions": 7, "rows": {0: ("2010-07-22", -2503, "EUR"), 6: ("2010-07-23", 100, "EUR")},
        "sum": -4559, "accounts": ["0001234567"],
        "balances": [("opening", "2010-07-22", 0), ("closing", "2010-07-23", 347)],
    },
    "knab_nl.sta": {
        "transactions": 3, "rows": {0: ("2014-05-07", 50000, "EUR"), 2: ("2014-07-29", 50000, "EUR")},
        "balances": [("opening", "2014-07-29", 305898), ("closing", "2014-07-30", 79898)],
    },
    "mbank_pl_mt940.sta": {
        "transactions": 3, "rows": {0: ("2017-01-19", 1, "PLN"), 2: ("2017-01-19", 1, "PLN")},
        "accounts": ["PL29114010810000267002001002"],
        "balances": [("opening", "2017-01-19", 40), ("closing", "2017-01-19", 43), ("closing_available", "2017-01-19", 43)],
    },
    "mbank_pl_mt942_interim.sta": {
        "transactions": 3, "rows": {0: ("2017-01-19", 1, "PLN"), 2: ("2017-01-19", 1, "PLN")},
        "accounts": ["PL29114010810000267002001002"], "balances": [], "no_balances": True,
    },
    "postfinance_ch_chf.sta": {
        "transactions": 4, "rows": {0: ("2013-12-09", 7970, "CHF"), 3: ("2013-12-18", 1010, "CHF")},
        "balances": [("opening", "2013-11-30", 0), ("interim_closing", "2014-04-07", 22920),
                     ("interim_opening", "2014-04-07", 22920), ("closing", "2014-04-07", 15960)],
    },
    "rabobank_nl_iban.sta": {
        "transactions": 4, "rows": {0: ("2013-01-01", -2500, "EUR"), 3: ("2013-01-09", -1000, "EUR")},
        "sum": -7000, "accounts": ["NL71RABO0123456789"],
        "balances": [("opening", "2013-01-08", 96500), ("closing", "2013-01-15", 93000)],
        "counterparty1": "JOHN DOE",
    },
    "rabobank_nl_legacy_4_statements.sta": {
        "transactions": 5, "rows": {0: ("2011-05-27", -121328, "EUR"), 4: ("2012-08-29", -620, "EUR")},
        "sum": -158909,
        "balances": [("opening", "2012-08-28", 419612), ("closing", "2012-08-29", 410182),
                     ("opening", "2011-06-15", 100089), ("closing", "2011-06-16", 100089)],
    },
    "raiffeisen_hu_cp852.sta": {
        "transactions": 7, "rows": {0: ("2018-04-17", 206663700, "HUF"), 6: ("2018-04-17", -600000, "HUF")},
        "sum": -101221350,
        "balances": [("opening", "2018-04-17", 2517063710), ("closing", "2018-04-17", 2528168760),
                     ("closing_available", "2018-04-17", 2528168760), ("forward_available", "2018-04-20", 2528168760)],
        "supplementary0": "Csoportos átutalás jóváírása",
    },
    "sberbank_hu_huf_nonswift_crlf.sta": {
        "transactions": 3, "rows": {0: ("2017-10-11", -240200, "HUF"), 2: ("2017-10-11", -357500, "HUF")},
        "sum": -943700, "accounts": ["1966315302010001"],
        "balances": [("opening", "2017-10-11", 62731130), ("closing", "2017-10-11", 61787430),
                     ("closing_available", "2017-10-11", 61787430)],
    },
    "triodos_nl.sta": {
        "transactions": 2, "rows": {0: ("2011-01-01", -1570, "EUR"), 1: ("2011-01-25", -70000, "EUR")},
        "accounts": ["TRIODOSBANK/0390123456"],
        "balances": [("opening", "2011-01-01", 497509), ("closing", "2011-02-01", 437079)],
    },
}


def test_every_real_file_has_recorded_facts():
    helpers.check_facts_cover_files(REAL, REAL_FACTS, "MT940")


@pytest.mark.parametrize("name", sorted(REAL_FACTS))
def test_real_file_facts(name):
    path = real(name)
    facts = REAL_FACTS[name]
    assert mt940.identify(Path(path).read_bytes()[:65536], path)
    result = mt940.read(path)
    check_result_shape(result)
    assert result.rows_read == facts["transactions"]
    assert result.rejects.height == facts.get("rejected", 0), result.rejects.to_dicts()
    if "reject_reason" in facts:
        assert all(facts["reject_reason"] in r for r in result.rejects.get_column("reason").to_list())
    rows = result.frame.to_dicts()
    for index, (day, minor, currency) in facts.get("rows", {}).items():
        assert (rows[index]["date"].isoformat(), rows[index]["amount_minor"], rows[index]["currency"]) == (day, minor, currency)
    if "sum" in facts:
        assert result.frame.get_column("amount_minor").sum() == facts["sum"]
    if "amounts" in facts:
        assert result.frame.get_column("amount_minor").to_list() == facts["amounts"]
    if "accounts" in facts:
        assert result.accounts == facts["accounts"]
    balances = {(b["type"], b["date"].isoformat(), b["amount_minor"]) for b in result.balances.to_dicts()}
    for balance in facts["balances"]:
        assert balance in balances, (balance, balances)
    if facts.get("no_closing"):
        assert "closing" not in result.balances.get_column("type").to_list()
    if facts.get("no_balances"):
        assert result.balances.height == 0
    if "statements" in facts:
        assert result.balances.filter(pl.col("type").is_in(["opening", "interim_opening"])).height == facts["statements"]
    if "reference0" in facts:
        assert rows[0]["reference"] == facts["reference0"]
    if "counterparty0" in facts:
        assert rows[0]["counterparty"] == facts["counterparty0"]
    if "counterparty1" in facts:
        assert rows[1]["counterparty"] == facts["counterparty1"]
    if "text" in facts:
        assert any(facts["text"] in r["description"] for r in rows)
    if "supplementary0" in facts:
        assert json.loads(rows[0]["attributes"])["supplementary_details"] == facts["supplementary0"]


@pytest.mark.parametrize("name", sorted(REAL_FACTS))
def test_real_file_read_twice_gives_identical_ids(name):
    path = real(name)
    assert mt940.read(path).frame.get_column("id").to_list() == mt940.read(path).frame.get_column("id").to_list()


def test_mt940_and_mt942_of_the_same_day_share_ids():
    final = set(mt940.read(real("mbank_pl_mt940.sta")).frame.get_column("id").to_list())
    interim = set(mt940.read(real("mbank_pl_mt942_interim.sta")).frame.get_column("id").to_list())
    assert final == interim and len(final) == 3


# --- fuzzing ----------------------------------------------------------------------------------


def count_statement_lines(data: bytes) -> int:
    """:61: lines as the format defines them, counted independently of the feed."""
    text = data.decode("latin-1")
    count = 0
    for raw in re.split(r"\r\n|\r|\n", text):
        line = raw.strip(_CONTROL)
        if "{4:" in line:
            line = line.split("{4:", 1)[1]
        count += line.startswith(":61:")
    return count


def read_bytes(folder: Path, data: bytes):
    result = helpers.read_fuzzed(mt940.read, folder / "fuzz.sta", data, "mt940")
    if result is None:
        return None
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        assert result.rows_read == count_statement_lines(data)
    return result


FUZZ_SOURCES = [SAMPLE.read_bytes()] + [(REAL / n).read_bytes() for n in REAL_FILES[:6]]

@settings(max_examples=200, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes(tmp_path_factory, data):
    read_bytes(tmp_path_factory.mktemp("mt940"), data)


@settings(max_examples=200, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(range(len(FUZZ_SOURCES))), plan=helpers.MUTATIONS)
def test_fuzz_mutated_statements(tmp_path_factory, source, plan):
    read_bytes(tmp_path_factory.mktemp("mt940"), helpers.mutate(FUZZ_SOURCES[source], plan, copy=60))


@settings(max_examples=100, deadline=3000)
@given(lines=st.lists(st.sampled_from([
    ":20:REF", ":25:ACC", ":28C:1/1", ":60F:C240101EUR10,00", ":60M:D240101EUR1,", ":61:240102C5,00NTRFNONREF",
    ":61:2401020102D1,NMSC//B1", ":61:240230C1,NTRF", ":86:?00TEXT?20a", ":86:/EREF/x/NAME/y", "free line",
    ":62F:C240102EUR15,00", ":64:C240102EUR1,", "-", "-}", "{1:X}{4:", ":NS:22x", ":90D:1EUR1,",
]), max_size=30))
def test_fuzz_tag_soup(tmp_path_factory, lines):
    read_bytes(tmp_path_factory.mktemp("mt940"), "\r\n".join(lines).encode("ascii"))
