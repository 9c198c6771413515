"""The foundation (one-to-one) benchmark month: deterministic, exact, every case present, truth
consistent, and byte-identical to the bundled sample. The full mix is tested in
test_generate_compound.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.generate import (
    BANK_COLUMNS,
    FOUNDATION_MIX,
    INVOICE_REF_VARIANTS,
    LEDGER_COLUMNS,
    LEDGER_ONLY_CASES,
    MAX_PAYMENT_LAG_DAYS,
    TRUTH_COLUMNS,
    _transpose_last_pair,
    generate,
    main,
    save,
)
from models.money import parse_amount_expr

N_BANK = 2_000
SEED = 7


@pytest.fixture(scope="module")
def month() -> dict[str, pl.DataFrame]:
    return generate(N_BANK, seed=SEED, mix="foundation")


@pytest.fixture(scope="module")
def written(month, tmp_path_factory) -> dict[str, Path]:
    return save(month, tmp_path_factory.mktemp("month"))


def _read(path: Path) -> pl.DataFrame:
    """A CSV as the matcher sees it: every column text, empty cells empty (not null)."""
    return pl.read_csv(path, infer_schema=False, empty_string_is_null=False)


def _truth_pairs(month) -> pl.DataFrame:
    """One row per truth group with both sides' rows (one_to_one groups)."""
    bank = month["bank"].unique("id", keep="first")
    return (
        month["truth"]
        .join(bank, left_on="bank_ids", right_on="id")
        .join(month["ledger"], left_on="ledger_ids", right_on="id", suffix="_ledger")
    )


def test_same_seed_same_bytes_other_seed_other_month(month, written, tmp_path):
    again = save(generate(N_BANK, seed=SEED, mix="foundation"), tmp_path / "again")
    for name in ("bank", "ledger", "truth", "labels"):
        assert written[name].read_bytes() == again[name].read_bytes(), name
    other = generate(N_BANK, seed=SEED + 1, mix="foundation")
    assert not other["bank"].equals(month["bank"])


def test_files_have_the_canonical_headers(written):
    assert written["bank"].read_text(encoding="utf-8").splitlines()[0] == ",".join(BANK_COLUMNS)
    assert written["ledger"].read_text(encoding="utf-8").splitlines()[0] == ",".join(LEDGER_COLUMNS)
    assert written["truth"].read_text(encoding="utf-8").splitlines()[0] == ",".join(TRUTH_COLUMNS)


def test_sizes(month):
    assert month["bank"].height == N_BANK
    assert 0.9 <= month["ledger"].height / N_BANK <= 1.2
    assert month["ledger"]["id"].is_unique().all()
    assert month["truth"]["group_id"].is_unique().all()


def test_every_truth_id_exists_once_in_truth(month):
    truth = month["truth"]
    bank_ids = truth["bank_ids"].str.split(";").explode()
    ledger_ids = truth["ledger_ids"].str.split(";").explode()
    assert bank_ids.is_in(month["bank"]["id"].implode()).all()
    assert ledger_ids.is_in(month["ledger"]["id"].implode()).all()
    assert bank_ids.is_unique().all() and ledger_ids.is_unique().all()
    assert set(truth["match_type"]) == {"one_to_one"}


def test_duplicate_feed_lines_repeat_the_same_id_and_content(month, written):
    bank = _read(written["bank"])
    repeated = bank.filter(pl.col("id").is_duplicated())
    expected = int(N_BANK * FOUNDATION_MIX["duplicate_feed_line"])
    assert repeated["id"].n_unique() == expected and repeated.height == 2 * expected
    assert repeated.unique().height == expected  # both deliveries are byte-identical rows
    truth_bank = month["truth"]["bank_ids"].str.split(";").explode()
    assert repeated["id"].unique().is_in(truth_bank.implode()).sum() > 0


def test_amounts_are_exact_text_that_parses_back(month, written):
    for side in ("bank", "ledger"):
        frame = _read(written[side])
        assert frame["amount"].str.contains(r"^-?[0-9]+\.[0-9]{2}$").all(), side
        minor, reason = parse_amount_expr(pl.col("amount"), pl.col("currency"))
        parsed = frame.select(minor=minor, reason=reason)
        assert parsed["reason"].null_count() == frame.height
        assert parsed["minor"].to_list() == month[side]["amount_minor"].to_list()
        assert set(frame["currency"]) == {"HKD"}
    amounts = month["bank"]["amount_minor"].abs()
    assert amounts.min() < 100_00 and amounts.max() > 100_000_00  # ~50 to ~500,000 HKD
    assert (amounts % 100 != 0).any()  # cents


def test_every_case_appears_in_a_2000_line_month(month):
    bank_cases = set(month["bank"]["case"])
    ledger_cases = set(month["ledger"]["case"])
    for case in FOUNDATION_MIX:
        assert case in (ledger_cases if case in LEDGER_ONLY_CASES else bank_cases), case
    invoice_rows = month["bank"].filter(pl.col("case") == "invoice_receipt")
    for variant in [*INVOICE_REF_VARIANTS, "cut"]:
        assert variant in set(invoice_rows["variant"]), variant
    descriptions = month["bank"]["description"]
    for channel in ("FPS CR", "TT IN", "IBT CR", "CHQ DEP", "AUTOPAY CR", "CR TRF", "AUTOPAY DR",
                    "CHQ 1", "BANK CHARGES", "SERVICE FEE", "SALARY"):
        assert descriptions.str.starts_with(channel).any() or descriptions.str.contains(channel).any(), channel
    charges = month["bank"].filter(pl.col("case") == "bank_charge")
    assert set(charges["variant"]) == {"journal", "no_ledger_item"}
    assert set(month["ledger"]["type"]) == {"invoice", "bill", "receipt", "payment", "payroll", "journal", "order"}


def test_reference_variants_look_like_the_brief(month):
    pairs = _truth_pairs(month).filter(pl.col("ledger_ids").str.starts_with("INV-"))
    by_variant = {v: pairs.filter(pl.col("variant") == v) for v in INVOICE_REF_VARIANTS}
    ref = pl.col("ledger_ids")
    number = ref.str.extract(r"-(\d+)$")
    year_number = ref.str.replace_all("-", "").str.slice(3)
    checks = {
        "full": pl.col("description").str.contains(ref, literal=True),
        "compact": pl.col("description").str.contains(pl.lit("INV") + year_number, literal=True),
        "spaced": pl.col("description").str.contains(pl.lit("inv 2026 ") + number, literal=True),
        "number": pl.col("description").str.contains(number, literal=True),
        "none": ~pl.col("description").str.contains(number, literal=True),
        "transposed": ~pl.col("description").str.contains(ref, literal=True),
        "truncated": ~pl.col("description").str.contains(ref, literal=True),
    }
    for variant, check in checks.items():
        rows = by_variant[variant]
        assert rows.height > 0 and rows.select(check.all()).item(), variant
    transposed = by_variant["transposed"].select(pl.col("description").str.extract(r"INV-2026-(\d+)"), number.alias("n"))
    for seen, true in transposed.iter_rows():
        assert sorted(seen) == sorted(true) and seen != true


@pytest.mark.parametrize(
    ("number", "width", "expected"),
    [(123, 5, 132), (110, 5, 101), (1, 5, 10), (98765, 5, 98756), (11111, 5, None), (1000, 6, 100)],
)
def test_transposition_swaps_the_last_differing_pair(number, width, expected):
    swapped, possible = _transpose_last_pair(np.array([number]), width)
    assert bool(possible[0]) is (expected is not None)
    if expected is not None:
        assert swapped[0] == expected


def test_sign_conventions_and_equal_amounts_in_truth(month):
    ledger = month["ledger"]
    negative = ledger.filter(pl.col("type").is_in(["bill", "payroll", "payment", "journal"]))
    positive = ledger.filter(pl.col("type").is_in(["invoice", "receipt", "order"]))
    assert (negative["amount_minor"] < 0).all() and (positive["amount_minor"] > 0).all()
    pairs = _truth_pairs(month)
    assert (pairs["amount"] == pairs["amount_ledger"]).all()
    bank_by_case = month["bank"].group_by("case").agg(pl.col("amount_minor").max().alias("max"), pl.col("amount_minor").min().alias("min"))
    signs = {r["case"]: (r["min"], r["max"]) for r in bank_by_case.iter_rows(named=True)}
    for case in ("supplier_bill", "payroll", "bank_charge", "cash_book_payment"):
        assert signs[case][1] < 0, case
    for case in ("invoice_receipt", "cash_book_receipt", "unknown_deposit", "same_amount_receipts"):
        assert signs[case][0] > 0, case


def test_dates_stay_in_their_windows(month):
    bank = month["bank"]
    assert bank["date"].min().isoformat() == "2026-10-01" and bank["date"].max().isoformat() == "2026-10-31"
    pairs = _truth_pairs(month).with_columns(lag=(pl.col("date") - pl.col("date_ledger")).dt.total_days())
    lags = pairs.group_by("case").agg(pl.col("lag").min().alias("lo"), pl.col("lag").max().alias("hi"))
    window = {r["case"]: (r["lo"], r["hi"]) for r in lags.iter_rows(named=True)}
    for case in ("invoice_receipt", "same_amount_receipts", "repeat_invoice", "supplier_bill"):
        assert 0 <= window[case][0] and window[case][1] <= MAX_PAYMENT_LAG_DAYS, case
    for case in ("cash_book_receipt", "cash_book_payment"):
        assert -3 <= window[case][0] and window[case][1] <= 3, case
    assert window["bank_charge"] == (0, 0)
    invoices = month["ledger"].filter(pl.col("type") == "invoice")
    assert (invoices["due_date"] >= invoices["date"]).all()


def test_same_amount_customers_and_repeated_invoices(month):
    pairs = _truth_pairs(month)
    same = pairs.filter(pl.col("case") == "same_amount_receipts")
    groups = same.group_by("amount_minor", pl.col("date").dt.truncate("1w")).agg(
        n=pl.len(), customers=pl.col("counterparty_ledger").n_unique()
    )
    assert groups.filter((pl.col("n") >= 3) & (pl.col("customers") == pl.col("n"))).height > 0
    repeat = pairs.filter(pl.col("case") == "repeat_invoice")
    twins = repeat.group_by("counterparty_ledger", "amount_minor").len().filter(pl.col("len") >= 2)
    assert twins.height >= int(N_BANK * FOUNDATION_MIX["repeat_invoice"]) // 4


def test_every_vague_line_can_still_be_decided(month):
    """A line without an identifying reference never has an interchangeable twin."""
    pairs = _truth_pairs(month)
    paid = pairs.select("ledger_ids", "variant")
    ledger = month["ledger"].join(paid, left_on="id", right_on="ledger_ids", how="left")
    vague = pl.col("variant").is_in(["none", "transposed", "truncated", "cut", "name_only"])
    groups = ledger.group_by("type", "counterparty", "amount_minor").agg(
        n=pl.len(), open=pl.col("variant").is_null().sum(), vague=vague.sum()
    )
    undecidable = groups.filter((pl.col("n") > 1) & (pl.col("vague") > 0) & ((pl.col("open") > 0) | (pl.col("vague") > 1)))
    assert undecidable.height == 0


def test_noise_stays_out_of_truth(month):
    truth_bank = set(month["truth"]["bank_ids"])
    truth_ledger = set(month["truth"]["ledger_ids"])
    unknown = month["bank"].filter(pl.col("case").is_in(["unknown_deposit"]) | (pl.col("variant") == "no_ledger_item"))
    assert unknown.height > 0 and not truth_bank & set(unknown["id"])
    open_items = month["ledger"].filter(pl.col("case").is_in(LEDGER_ONLY_CASES))
    assert open_items.height > 0 and not truth_ledger & set(open_items["id"])


def test_chinese_names_are_written_byte_exact(month, written):
    han = r"[\u4e00-\u9fff]"
    names = month["ledger"].filter(pl.col("counterparty").str.contains(han))["counterparty"].unique().sort()
    assert names.len() > 10 and names.str.ends_with("有限公司").any()
    raw = written["ledger"].read_bytes()
    for name in names.head(20):
        assert name.encode("utf-8") in raw
    bank = _read(written["bank"])
    assert bank["description"].str.contains(han).any()
    original = month["bank"]["description"].fill_null("").to_list()
    assert bank["description"].to_list() == original
    assert re.search("陳|黃|李|張", written["bank"].read_text(encoding="utf-8"))


def test_names_vary_between_bank_and_ledger(month):
    pairs = _truth_pairs(month).filter(pl.col("case") == "invoice_receipt")
    ledger_names = pairs["counterparty_ledger"]
    assert ledger_names.str.ends_with("Company Limited").any()
    assert month["bank"]["description"].str.contains(" CO LTD").any()
    assert ledger_names.str.contains(r"^[A-Z][a-z]+ [A-Z][a-z]+-[a-z]+$").any()  # Chan Tai-man


def test_ids_look_like_real_ones(month):
    assert month["bank"]["id"].str.contains(r"^B\d{9}$").all()
    prefixes = set(month["ledger"]["id"].str.extract(r"^([A-Z]+)-2026-\d{5}$"))
    assert prefixes == {"INV", "BILL", "RCPT", "PAY", "PRL", "JNL", "SO"}
    invoices = month["ledger"].filter(pl.col("type") == "invoice")
    assert (invoices["reference"] == invoices["id"]).all()


def test_the_full_mix_reproduces_the_bundled_sample_byte_for_byte(tmp_path):
    # benchmarks/sample/ was written by the generator (full mix, the default):
    # python -m benchmarks.generate --bank-lines 2000 --seed 7 --out benchmarks/sample
    sample = Path(__file__).resolve().parents[2] / "benchmarks" / "sample"
    assert main(["--bank-lines", "2000", "--seed", "7", "--out", str(tmp_path)]) == 0
    for name in ("bank", "ledger", "truth", "labels", "fx", "stripe_payouts"):
        assert (tmp_path / f"{name}.csv").read_bytes() == (sample / f"{name}.csv").read_bytes(), name


def test_command_line_writes_the_files(tmp_path, capsys):
    foundation, full = tmp_path / "foundation", tmp_path / "full"
    assert main(["--bank-lines", "300", "--seed", "2", "--mix", "foundation", "--out", str(foundation)]) == 0
    assert {p.name for p in foundation.iterdir()} == {"bank.csv", "ledger.csv", "truth.csv", "labels.csv"}
    assert _read(foundation / "bank.csv").height == 300
    assert _read(foundation / "truth.csv").columns == TRUTH_COLUMNS
    assert "wrote" in capsys.readouterr().err
    assert main(["--bank-lines", "2000", "--seed", "2", "--out", str(full)]) == 0  # the full mix by default
    assert {p.name for p in full.iterdir()} == {"bank.csv", "ledger.csv", "truth.csv", "labels.csv", "fx.csv",
                                                 "stripe_payouts.csv"}
    assert _read(full / "truth.csv").columns == [*TRUTH_COLUMNS, "adjustments", "open_amount"]
