"""Tests of bank CSV profiles (feeds stage): built-in profiles on real exports, own samples,
profile validation and drafting."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import polars as pl
import pytest

import feeds
from feeds import bank_csv
from feeds.bank_csv import ProfileError, draft_profile, load_profile, profile_from_dict
from feeds.registry import detect, read_any
from models.errors import FeedFormatError
from models.schema import BALANCE_SCHEMA, BANK_SCHEMA, REJECTS_SCHEMA
from tests.feeds import helpers

REAL = helpers.REALDATA / "bank_csv"
DATA = Path(__file__).parent / "data"
needs_shared = helpers.needs_shared(REAL)


def real(name: str) -> str:
    return str(REAL / name)


def amounts(frame: pl.DataFrame) -> list[tuple[dt.date, int, str]]:
    return frame.select("date", "amount_minor", "currency").rows()


# --- real exports (facts from ../shared/realdata/expected.json) --------------------------------

# (file, profile, transactions read, rejects)
REAL_FILES = [
    ("alipay_gbk_with_preamble.csv", "alipay_cn", 8, 2),
    ("dcu_checking_signed_dollar_amounts.csv", "dcu_checking", 10, 0),
    ("generic_indian_bank_date_desc_amount.csv", "generic_date_description_amount_usd", 6, 0),
    ("hledger_csb43_spain_flattened.csv", "csb43_es", 2, 0),
    ("hledger_french_cp1252.csv", "fr_date_remarque_montant", 3, 0),
    ("hledger_french_iso8859_1.csv", "fr_date_remarque_montant", 3, 0),
    ("hsbc_hk_creditcard_cny.csv", "hsbc_hk_creditcard", 11, 0),
    ("hsbc_hk_savings_tab_padded.csv", "hsbc_hk_savings", 10, 0),
    ("icbc_debit_separate_income_expense.csv", "icbc_debit_cn", 11, 0),
    ("schwab_checking_2022_layout.csv", "schwab_checking_2022", 2, 0),
    ("schwab_checking_withdrawal_deposit_columns.csv", "schwab_checking", 12, 0),
    ("semicolon_delimited_with_preamble.csv", "semicolon_payee_memo", 2, 0),
    ("wechat_pay_utf8_with_preamble.csv", "wechat_pay_cn", 27, 0),
]


@needs_shared
@pytest.mark.parametrize(("name", "profile", "count", "rejected"), REAL_FILES)
def test_real_export_detected_and_read(name, profile, count, rejected):
    path = real(name)
    assert detect(path, "bank").FORMAT == "bank_csv"
    result = read_any(path, "bank")
    assert result.notes[0] == f"profile: {profile}"
    assert result.frame.schema == pl.Schema(BANK_SCHEMA)
    assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)
    assert result.balances.schema == pl.Schema(BALANCE_SCHEMA)
    assert (result.frame.height, result.rejects.height) == (count, rejected)
    assert result.rows_read == count + rejected
    assert result.frame["id"].n_unique() == count  # fingerprints keep identical rows apart


@needs_shared
def test_real_alipay_gbk():
    result = bank_csv.read(real("alipay_gbk_with_preamble.csv"))
    rows = {(d, a) for d, a, _c in amounts(result.frame)}
    # the 7 transactions the origin emits; the closed rows are skipped with their reason
    for expected in [
        (dt.date(2023, 1, 18), 22222850),
        (dt.date(2023, 2, 2), 9934),
        (dt.date(2023, 2, 4), 1603),
        (dt.date(2023, 2, 8), -2000),
        (dt.date(2023, 2, 12), -4974),
        (dt.date(2023, 7, 10), -990),
        (dt.date(2023, 7, 10), -8200),
    ]:
        assert expected in rows
    assert set(result.frame["currency"]) == {"CNY"}
    assert all("交易关闭" in r for r in result.rejects["reason"])
    assert result.rejects["line"].to_list() == [31, 33]
    assert "蚂蚁财富-交银定期支付双息平衡混合-卖出至余额宝" in result.frame["description"].to_list()


@needs_shared
def test_real_dcu_signed_dollar_amounts_and_balance():
    result = bank_csv.read(real("dcu_checking_signed_dollar_amounts.csv"))
    in_date_order = result.frame.sort("date")["amount_minor"].to_list()
    assert in_date_order == [
        1000000, -500000, -40015, -250099, 14167, 2500, -5050, 25600, 600036, -797139
    ]
    closing = result.balances.filter(pl.col("type") == "closing").row(0, named=True)
    assert (closing["amount_minor"], closing["currency"]) == (50000, "USD")
    assert "ELECTRONIC DEPOSIT - 3392 ACME INC DDEPOSIT   123456" in result.frame["description"]


@needs_shared
def test_real_generic_and_exact_duplicates_stay_two_lines():
    result = bank_csv.read(real("generic_indian_bank_date_desc_amount.csv"))
    assert result.frame["amount_minor"].to_list() == [-100, -100, 100, 50000, 100, 30000]
    loaded = feeds.load_bank([real("generic_indian_bank_date_desc_amount.csv")] * 2)
    assert loaded.frame.height == 6 and loaded.duplicates.height == 6


@needs_shared
def test_real_csb43_balances_reconcile():
    result = bank_csv.read(real("hledger_csb43_spain_flattened.csv"))
    assert amounts(result.frame) == [
        (dt.date(2019, 11, 2), 150000, "EUR"),
        (dt.date(2019, 11, 10), -50000, "EUR"),
    ]
    assert set(result.frame["account"]) == {"1234 5678 90 1234567890"}
    balances = {r["type"]: r["amount_minor"] for r in result.balances.iter_rows(named=True)}
    assert balances == {"opening": 0, "closing": 100000}
    assert json.loads(result.frame["attributes"][0])["branch_code #2"] == "1234"


@needs_shared
@pytest.mark.parametrize(
    ("name", "third"),
    [("hledger_french_cp1252.csv", "CAFÉ — €20 REÇU"), ("hledger_french_iso8859_1.csv", "CAFÉ ? ?20 REÇU")],
)
def test_real_french_legacy_encodings(name, third):
    result = bank_csv.read(real(name))
    assert result.frame["description"].to_list() == ["DÉPÔT", "VIREMENT VERS ÉPARGNE", third]
    assert amounts(result.frame) == [
        (dt.date(2012, 3, 22), 5000, "EUR"),
        (dt.date(2012, 3, 23), -1000, "EUR"),
        (dt.date(2012, 3, 24), -2000, "EUR"),
    ]


@needs_shared
def test_real_hsbc_credit_card():
    frame = bank_csv.read(real("hsbc_hk_creditcard_cny.csv")).frame
    rows = frame.select("date", "counterparty", "amount_minor", "currency").rows()
    assert (dt.date(2025, 3, 20), "KFC RESTAURANT", -17950, "CNY") in rows
    assert (dt.date(2025, 4, 9), "UNIONPAY MERCHANT", -109914, "CNY") in rows
    assert (dt.date(2025, 4, 7), "MCDONALDS", -2790, "HKD") in rows
    assert (dt.date(2025, 4, 7), "MCDONALDS", -2790, "CNY") in rows
    assert (dt.date(2025, 3, 31), "PINDUODUO PLATFORM", 2500, "CNY") in rows
    assert frame.filter(pl.col("description") == "PAYMENT - THANK YOU")["amount_minor"].to_list() == [326616]


@needs_shared
def test_real_hsbc_savings_and_broken_running_balance_is_reported():
    result = bank_csv.read(real("hsbc_hk_savings_tab_padded.csv"))
    frame = result.frame
    interest = frame.filter(pl.col("description") == "INTEREST CREDIT").row(0, named=True)
    assert (interest["date"], interest["amount_minor"], interest["currency"]) == (
        dt.date(2025, 3, 1), 545, "HKD"
    )
    assert json.loads(interest["attributes"])["Balance"].startswith("10,561.33")
    salaries = frame.filter(pl.col("description").str.starts_with("SALARY"))
    assert sorted(salaries.select("amount_minor", "currency").rows()) == [
        (1250000, "CNY"), (1250000, "HKD")
    ]
    assert any("does not chain" in note for note in result.notes)


@needs_shared
def test_real_icbc_separate_income_expense_and_footer():
    result = bank_csv.read(real("icbc_debit_separate_income_expense.csv"))
    rows = result.frame.select("date", "amount_minor", "description").rows()
    assert (dt.date(2023, 2, 10), 3000, "合伙人返现") in rows
    assert (dt.date(2023, 4, 14), 123456, "工资") in rows
    assert (dt.date(2023, 5, 2), -1340, "消费") in rows
    credits = result.frame.filter(pl.col("amount_minor") > 0)["amount_minor"].sum()
    debits = -result.frame.filter(pl.col("amount_minor") < 0)["amount_minor"].sum()
    assert (credits, debits) == (284174, 424108)  # the footer's stated totals do not match
    assert any("footer" in note for note in result.notes)


@needs_shared
def test_real_schwab_layouts():
    old = bank_csv.read(real("schwab_checking_withdrawal_deposit_columns.csv")).frame
    rows = old.select("date", "amount_minor").rows()
    for expected in [
        (dt.date(2019, 11, 22), -123411),
        (dt.date(2020, 1, 10), -1669),
        (dt.date(2020, 1, 31), 9),
        (dt.date(2020, 11, 13), 1050000),
        (dt.date(2020, 11, 13), -1050000),
        (dt.date(2021, 2, 1), 2000000),
        (dt.date(2021, 11, 1), 123456),
    ]:
        assert expected in rows
    new = bank_csv.read(real("schwab_checking_2022_layout.csv"))
    assert amounts(new.frame) == [
        (dt.date(2022, 7, 31), 100, "USD"),
        (dt.date(2022, 2, 3), -200, "USD"),
    ]
    closing = new.balances.filter(pl.col("type") == "closing").row(0, named=True)
    assert closing["amount_minor"] == 200


@needs_shared
def test_real_semicolon_and_wechat():
    semi = bank_csv.read(real("semicolon_delimited_with_preamble.csv")).frame
    assert semi.select("date", "counterparty", "amount_minor").rows() == [
        (dt.date(2025, 6, 7), "A Payee", -12345),
        (dt.date(2025, 6, 6), "Another Payee", -67890),
    ]
    wechat = bank_csv.read(real("wechat_pay_utf8_with_preamble.csv")).frame
    first = wechat.row(0, named=True)
    assert (first["date"], first["amount_minor"], first["counterparty"]) == (
        dt.date(2019, 9, 26), -2816, "云膳过桥米线(传奇广场店)"
    )
    assert (wechat["date"].min(), wechat["date"].max()) == (dt.date(2017, 10, 20), dt.date(2024, 6, 7))
    assert '打开拼多多，点击底部"多多视频"' in wechat["counterparty"].to_list()


@needs_shared
@pytest.mark.parametrize("name", [name for name, *_ in REAL_FILES])
def test_drafted_profile_loads_real_export(name, tmp_path):
    text, report = draft_profile(real(name))
    saved = tmp_path / "drafted.toml"
    saved.write_text(text, encoding="utf-8")
    result = read_any(real(name), "bank", format=str(saved))
    assert result.frame.height > 0
    assert "trial read:" in report


@needs_shared
def test_drafted_profiles_match_the_builtin_reading_where_unambiguous(tmp_path):
    for name in ("dcu_checking_signed_dollar_amounts.csv", "icbc_debit_separate_income_expense.csv",
                 "schwab_checking_withdrawal_deposit_columns.csv", "hsbc_hk_savings_tab_padded.csv"):
        text, _ = draft_profile(real(name))
        profile = profile_from_dict(tomllib.loads(text), "draft")
        drafted = bank_csv.read(real(name), profile=profile).frame
        builtin = bank_csv.read(real(name)).frame
        assert amounts(drafted) == amounts(builtin), name


# --- own samples ------------------------------------------------------------------------------


def write_profile(tmp_path: Path, text: str) -> str:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_committed_sample_gb18030_preamble_direction_and_footer():
    result = bank_csv.read(str(DATA / "bank_profile_sample_gb18030.csv"), profile=str(DATA / "bank_profile_sample.toml"))
    assert result.frame.select("date", "amount_minor", "currency", "counterparty", "reference").rows() == [
        (dt.date(2026, 1, 5), 1234550, "CNY", "陳大文", "ORD-1"),
        (dt.date(2026, 1, 6), -20000, "CNY", "Müller GmbH", "ORD-2"),
        (dt.date(2026, 1, 7), -5, "CNY", "Société Générale", "ORD-3"),
    ]
    assert result.rejects.select("line", "column").rows() == [(9, "方向")]
    assert "neither" not in result.rejects["reason"][0]


def test_debit_credit_decimal_comma_and_signs(tmp_path):
    profile = write_profile(
        tmp_path,
        'name = "t"\nidentify_header = ["Datum"]\ndelimiter = ";"\ndate = "Datum"\n'
        'date_formats = ["%d.%m.%Y"]\ndebit = "Soll"\ncredit = "Haben"\ncurrency = "EUR"\n'
        'decimal = ","\nthousands = ["."]\ndescription = ["Text"]\n',
    )
    data = tmp_path / "s.csv"
    data.write_text(
        "Datum;Text;Soll;Haben\r\n"
        "05.01.2026;Überweisung Jürgen;1.234,56;\r\n"
        "06.01.2026;Gutschrift;;99,5\r\n"
        "07.01.2026;both;1,00;2,00\r\n"
        "08.01.2026;neither;;\r\n"
        "09.01.2026;bad;12,345;\r\n",
        encoding="utf-8-sig",
    )
    result = bank_csv.read(str(data), profile=profile)
    assert result.frame.select("description", "amount_minor").rows() == [
        ("Überweisung Jürgen", -123456),
        ("Gutschrift", 9950),
    ]
    reasons = dict(result.rejects.select("line", "reason").rows())
    assert "both Soll and Haben" in reasons[4]
    assert "neither Soll nor Haben" in reasons[5]
    assert "3 decimals; EUR allows 2" in reasons[6]


@pytest.mark.parametrize(
    ("text", "minor"),
    [('"(1,234.50)"', -123450), ('"1,234.50-"', -123450), ('"-$7,971.39"', -797139),
     ("+ $73.01", 7301), ("- $12.01", -1201), ("¥28.16", 2816), ('"-1,099.14"\t', -109914),
     ('"HK$ 1,000"', 100000), ("−5.00", -500)],
)
def test_amount_spellings(tmp_path, text, minor):
    profile = write_profile(
        tmp_path, 'name = "t"\nidentify_header = ["d"]\ndate = "d"\namount = "a"\ncurrency = "HKD"\n'
    )
    data = tmp_path / "s.csv"
    data.write_text(f"d,a\n2026-01-05,{text}\n", encoding="utf-8")
    result = bank_csv.read(str(data), profile=profile)
    assert result.frame["amount_minor"].to_list() == [minor], result.rejects["reason"].to_list()


def test_structure_line_numbers_ragged_trailing_delimiter_and_unclosed_quote(tmp_path):
    profile = write_profile(
        tmp_path,
        'name = "t"\nidentify_header = ["d"]\nskip_lines = 2\ndate = "d"\namount = "a"\n'
        'currency = "USD"\ndescription = ["t"]\n',
    )
    data = tmp_path / "s.csv"
    data.write_text(
        "Statement\n\nd,a,t\n"
        '2026-01-05,1.00,"two\nlines"\n'
        "2026-01-06,2.00,ok,\n"  # trailing delimiter
        "2026-01-07,3.00\n"  # too few
        '2026-01-08,4.00,"never closed\n'
        "2026-01-09,5.00,after\n",
        encoding="utf-8",
    )
    result = bank_csv.read(str(data), profile=profile)
    assert result.frame.select("description", "source_line").rows() == [
        ("two\nlines", 4), ("ok", 6), ("after", 9)
    ]
    assert result.rejects.select("line", "raw").rows() == [
        (7, "2026-01-07,3.00"), (8, '2026-01-08,4.00,"never closed')
    ]


def test_invalid_profile_reports_every_problem_at_once(tmp_path):
    path = write_profile(
        tmp_path,
        'name = "bad"\nidentify_header = ["x"]\nencoding = "klingon"\ndelimiter = ";;"\n'
        'date = "d"\ndate_formats = ["YYYY-MM-DD"]\ncurrency = "XYZ"\nfooter_pattern = "("\n',
    )
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    problems = error.value.problems
    joined = " | ".join(problems)
    for expected in ("encoding", "delimiter", "date_formats", "currency", "footer_pattern"):
        assert expected in joined
    with pytest.raises(ProfileError) as error:
        profile_from_dict({"name": "x", "identify_header": ["d"], "date": "d"}, "inline")
    assert any("'amount'" in p for p in error.value.problems)
    assert any("currency" in p for p in error.value.problems)


def test_wrong_encoding_and_missing_column_messages(tmp_path):
    profile = write_profile(
        tmp_path, 'name = "t"\nidentify_header = ["d"]\ndate = "d"\namount = "a"\ncurrency = "CNY"\ndescription = ["t"]\n'
    )
    data = tmp_path / "gbk.csv"
    data.write_bytes("d,a,t\n2026-01-05,1.00,陳大文\n".encode("gb18030"))
    with pytest.raises(FeedFormatError, match="looks like gb18030"):
        bank_csv.read(str(data), profile=profile)
    other = tmp_path / "other.csv"
    other.write_text("d,x\n2026-01-05,1\n", encoding="utf-8")
    with pytest.raises(FeedFormatError, match="missing column.*'a'.*columns found: d, x"):
        bank_csv.read(str(other), profile=profile)


def test_unknown_csv_is_not_detected_and_message_says_what_to_do(tmp_path):
    data = tmp_path / "mystery.csv"
    data.write_text("When,What,How much\n2026-01-05,x,1\n", encoding="utf-8")
    with pytest.raises(FeedFormatError) as error:
        read_any(str(data), "bank")
    message = str(error.value)
    assert "not canonical CSV" in message and "recon profile" in message and "--format" in message


def test_sniff_encoding():
    text = "日期,摘要,金额\n2026-01-05,工资收入,100.00\n"
    assert bank_csv.sniff_encoding(text.encode("gb18030"))[0] == "gb18030"
    assert bank_csv.sniff_encoding("日期,摘要,金額\n2026-01-05,薪資,100.00\n".encode("big5"))[0] == "big5"
    assert bank_csv.sniff_encoding("Date,Remarque\nDÉPÔT,CAFÉ — €20\n".encode("cp1252"))[0] == "cp1252"
    assert bank_csv.sniff_encoding(text.encode("utf-8"))[0] == "utf-8"


def test_draft_own_sample_round_trip(tmp_path):
    data = tmp_path / "export.csv"
    data.write_text(
        "Account statement for 123\n"
        "Posting Date;Details;Money out;Money in;Balance;Currency\n"
        "05/01/2026;Grüße an Zoë;1.234,56;;10.000,00;EUR\n"
        "06/01/2026;Café de Flore;;20,00;10.020,00;EUR\n"
        "13/01/2026;Rent;500,00;;9.520,00;EUR\n",
        encoding="cp1252",
    )
    text, report = draft_profile(str(data))
    saved = tmp_path / "mine.toml"
    saved.write_text(text, encoding="utf-8")
    result = read_any(str(data), "bank", format=str(saved))
    assert result.frame.select("date", "amount_minor", "currency", "description").rows() == [
        (dt.date(2026, 1, 5), -123456, "EUR", "Grüße an Zoë"),
        (dt.date(2026, 1, 6), 2000, "EUR", "Café de Flore"),
        (dt.date(2026, 1, 13), -50000, "EUR", "Rent"),
    ]
    assert "encoding: cp1252" in report and "delimiter: ';'" in report


def test_builtin_profiles_all_validate():
    names = bank_csv.builtin_profile_names()
    assert len(names) >= 12
    for name in names:
        assert load_profile(name).name == name


def test_draft_committed_sample_finds_direction_mixed_date_formats_and_footer():
    sample = str(DATA / "bank_profile_sample_gb18030.csv")
    text, report = draft_profile(sample)
    drafted = profile_from_dict(tomllib.loads(text), "draft")
    assert drafted.encoding == "gb18030" and drafted.direction == "方向"
    assert drafted.date_formats == ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
    assert drafted.footer_pattern == "^合计"
    ours = bank_csv.read(sample, profile=drafted).frame
    committed = bank_csv.read(sample, profile=str(DATA / "bank_profile_sample.toml")).frame
    assert amounts(ours) == amounts(committed)
    assert ours["counterparty"].to_list() == ["陳大文", "Müller GmbH", "Société Générale"]
