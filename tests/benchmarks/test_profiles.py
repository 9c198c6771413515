"""Variation profiles (benchmarks/profiles.py): truth stays exact, each profile produces its
variation, labels say what changed and what stays decidable, and the adversarial month.

The checks re-derive what they need with small brute-force loops written here, independently of
the profiles' vectorized code, on months of 1,000 bank lines.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from benchmarks.adversarial import no_true_pair
from benchmarks.generate import generate, labels, main, save
from benchmarks.profiles import HOLDOUT, PROFILES, damaged_references, resolve_profile

N_BANK = 1_000
SEED = 5
CENT = Decimal("0.01")
_MONTHS: dict[tuple[str, str], dict[str, pl.DataFrame]] = {}


def _month(profile: str, mix: str = "full") -> dict[str, pl.DataFrame]:
    key = (profile, mix)
    if key not in _MONTHS:
        _MONTHS[key] = generate(N_BANK, seed=SEED, mix=mix, profile=profile)
    return _MONTHS[key]


def _changed(month, tag: str) -> pl.DataFrame:
    """Bank lines (first delivery) whose variant carries ``tag`` (e.g. ``name=initials``)."""
    bank = month["bank"].filter(pl.col("case") != "duplicate_feed_line")
    return bank.filter(pl.col("variant").str.contains("|" + tag, literal=True))


def _pairs(month) -> pl.DataFrame:
    """One-to-one truth groups with both rows (bank columns, ledger columns suffixed _ledger)."""
    bank = month["bank"].unique("id", keep="first")
    truth = month["truth"].filter(~pl.col("bank_ids").str.contains(";") & ~pl.col("ledger_ids").str.contains(";"))
    return truth.join(bank, left_on="bank_ids", right_on="id").join(
        month["ledger"], left_on="ledger_ids", right_on="id", suffix="_ledger")


# ---------------------------------------------------------------------------------------------
# truth stays exact under every profile
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_group_still_balances_and_every_id_exists(profile):
    month = _month(profile)
    rates = defaultdict(list)
    for row in month["fx"].sort("date").iter_rows(named=True):
        rates[row["base"]].append((row["date"], Decimal(row["rate"])))
    bank = {i: (d, Decimal(a)) for i, d, a in month["bank"].unique("id", keep="first").select("id", "date", "amount").iter_rows()}
    ledger = {i: (Decimal(a), c) for i, a, c in month["ledger"].select("id", "amount", "currency").iter_rows()}
    assert len(ledger) == month["ledger"].height, "ledger ids are unique"
    seen_bank, seen_ledger = set(), set()
    for row in month["truth"].iter_rows(named=True):
        bank_ids, ledger_ids = row["bank_ids"].split(";"), row["ledger_ids"].split(";")
        assert not seen_bank & set(bank_ids) and not seen_ledger & set(ledger_ids), row
        seen_bank |= set(bank_ids)
        seen_ledger |= set(ledger_ids)
        day = max(bank[b][0] for b in bank_ids)
        total = Decimal(0)
        for item in ledger_ids:
            amount, currency = ledger[item]
            if currency != "HKD":
                rate = [r for d, r in rates[currency] if d <= day][-1]
                amount = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
            total += amount
        adjusted = sum((Decimal(a["amount"]) for a in json.loads(row["adjustments"])), Decimal(0))
        opened = Decimal(row["open_amount"] or "0")
        assert sum(bank[b][1] for b in bank_ids) == total + adjusted - opened, row
    assert month["bank"]["amount"].str.contains(r"^-?\d+\.\d\d$").all()


def test_the_foundation_mix_takes_profiles_too():
    month = _month("nameless", mix="foundation")
    assert month["truth"].columns[-2:] == ["adjustments", "open_amount"]
    charged = month["truth"].filter(pl.col("adjustments") != "[]")
    assert charged.height > 0 and charged["adjustments"].str.contains('"cause":"bank_charge"').all()


# ---------------------------------------------------------------------------------------------
# each profile produces its variation
# ---------------------------------------------------------------------------------------------
def _tokens(text: str) -> list[str]:
    return re.sub(r"[^A-Z ]", " ", text.upper().replace("-", " ")).split()


def test_name_forms_print_people_in_other_orders_and_companies_with_other_suffixes():
    month = _month("name_forms")
    pairs = _pairs(month)
    last = pairs.join(_changed(month, "name=surname_last").select("id"), left_on="bank_ids", right_on="id")
    assert last.height >= 5
    latin = last.filter(~pl.col("counterparty_ledger").str.contains("[\u4e00-\u9fff]"))
    assert latin.height >= 3
    for description, ledger_name in latin.select("description", "counterparty_ledger").iter_rows():
        surname, *given = _tokens(ledger_name)[-3:]  # "Chow Kwan Ming" / "Chow Kwan-ming" / "Peter Chow Kwan Ming"
        printed = " ".join([*given, surname])
        assert printed in description or (len(description) == 35 and printed.startswith(description.split()[-1])), description
    initials = _changed(month, "name=initials")["description"]
    assert initials.len() >= 5 and initials.str.contains(r"\b[A-Z]{2,} [A-Z] [A-Z]\b").all()
    honorific = _changed(month, "name=honorific")["description"]
    assert honorific.str.contains(r"\b(MR|MRS|MS|DR) [A-Z]").all() and honorific.len() >= 5
    suffixes = _changed(month, "name=suffix_variant")["description"]
    assert suffixes.str.contains(r"\(HK\)|CO\., L|LIMITED").any()
    assert _changed(month, "name=zh_space")["description"].str.contains("[\u4e00-\u9fff] 有限公司").all()


def test_reference_degradation_truncates_transposes_and_drops_references():
    month = _month("reference_degradation")
    pairs = _pairs(month)
    by_form = {form: pairs.join(_changed(month, f"ref={form}").select("id"), left_on="bank_ids", right_on="id")
               for form in ("truncated", "transposed", "digit_wrong", "number_bare", "absent")}
    for form, rows in by_form.items():
        assert rows.height > 0, form
        for description, invoice in rows.select("description", "ledger_ids").iter_rows():
            serial = re.search(r"(\d+)$", invoice).group(1)
            assert invoice not in description, (form, description)
            if form == "truncated":
                assert invoice[:-1] in description, description
            elif form == "transposed":
                seen = re.search(r"INV-2026-(\d+)", description)
                if seen and len(seen.group(1)) == len(serial):  # (a line cut at 35 characters may lose digits)
                    assert sorted(seen.group(1)) == sorted(serial) and seen.group(1) != serial, description
            elif form == "number_bare":
                assert re.search(rf"(?<!\d){serial.lstrip('0')}(?!\d)", description), description
            elif form == "absent":
                assert serial not in description, description


@pytest.mark.parametrize(
    ("form", "invoice", "expected"),
    [
        ("truncated", "INV-2026-01069", "INV-2026-0106"),
        ("truncated2", "INV-2026-01069", "INV-2026-010"),
        ("number_bare", "INV-2026-01163", "1163"),
        ("absent", "INV-2026-01163", None),
        ("number_bare", "INV/26/1163", "1163"),
    ],
)
def test_damaged_reference_forms(form, invoice, expected):
    import numpy as np

    got = damaged_references(pl.Series([invoice]), pl.Series(["2026"]), np.array([form]), np.random.default_rng(0))
    assert got[0] == expected


def test_random_damage_keeps_the_serial_recognisable():
    import numpy as np

    rng = np.random.default_rng(1)
    ids = pl.Series(["INV-2026-01069"] * 200)
    for form, check in {
        "transposed": lambda s: sorted(s) == sorted("01069") and s != "01069" and len(s) == 5,
        "digit_wrong": lambda s: len(s) == 5 and sum(a != b for a, b in zip(s, "01069", strict=True)) == 1,
        "digit_dropped": lambda s: len(s) == 4,
        "digit_doubled": lambda s: len(s) == 6,
    }.items():
        for text in damaged_references(ids, pl.Series(["2026"] * 200), np.array([form] * 200), rng):
            assert text.startswith("INV-2026-") and check(text.removeprefix("INV-2026-")), (form, text)
    prefixed = set(damaged_references(ids, pl.Series(["2026"] * 200), np.array(["prefix_changed"] * 200), rng))
    assert prefixed == {"IN2026-01069", "INV26-1069"}


def test_nameless_cheques_and_transfers_less_a_charge():
    month = _month("nameless")
    pairs = _pairs(month)
    cheques = pairs.join(_changed(month, "nameless=cheque").select("id"), left_on="bank_ids", right_on="id")
    assert cheques.height >= 5
    for description, amount, bank_date, item_type, item_date in cheques.select(
            "description", "amount", "date", "type", "date_ledger").iter_rows():
        whole, cents = amount.split(".")
        assert description == f"CHEQUE DEPOSIT {int(whole):,}.{cents}"
        assert item_type == "receipt" and 5 <= (bank_date - item_date).days <= 20
    ledger = month["ledger"].filter(pl.col("variant").str.contains("nameless=cheque"))
    assert set(ledger["description"]) == {"Cheque received"}
    transfers = pairs.join(_changed(month, "nameless=transfer").select("id"), left_on="bank_ids", right_on="id")
    assert transfers.height >= 1
    for description, amount, invoice, bank_date, item_date, adjustments in transfers.select(
            "description", "amount", "amount_ledger", "date", "date_ledger", "adjustments").iter_rows():
        assert description.startswith("TT IN ") and item_date == bank_date
        assert Decimal(invoice) - Decimal(amount) == Decimal("50.00")
        assert json.loads(adjustments) == [{"cause": "bank_charge", "amount": "-50.00"}]


def test_amount_repetition_gives_retainer_customers_one_amount():
    month = _month("amount_repetition")
    retainers = month["ledger"].filter(pl.col("variant").str.contains("retainer"))
    assert set(retainers["amount"]) <= {"3800.00", "2500.00"}
    assert retainers["counterparty"].n_unique() >= 5 and (retainers["case"] == "retainer_invoice").sum() >= 5
    lines = _changed(month, "retainer")
    assert lines.height > 0 and set(lines["amount"]) <= {"3800.00", "2500.00"}


def test_id_numbers_are_printed_before_the_name_and_fixed_per_payer():
    month = _month("id_numbers")
    fps = _changed(month, "id=fps_id")["description"]
    assert fps.len() > 0 and fps.str.contains(r"^FPS CR 9\d{9} ").all()
    assert _changed(month, "id=account")["description"].str.contains(r"^(CR TRF|IBT CR|TT IN) \d{3}-\d{6}-\d{3}").all()
    assert _changed(month, "id=payer_no")["description"].str.contains(r"^AUTOPAY CR PAYER \d{8} ").all()
    paid = _pairs(month).join(_changed(month, "id=fps_id").select("id"), left_on="bank_ids", right_on="id")
    per_payer = paid.group_by("counterparty_ledger").agg(pl.col("description").str.slice(7, 10).n_unique())
    assert per_payer.height > 5 and per_payer["description"].max() == 1


def test_script_mix_puts_bank_and_ledger_names_in_different_scripts():
    month = _month("script_mix")
    pairs = _pairs(month).join(_changed(month, "script_mix").select("id"), left_on="bank_ids", right_on="id")
    han = "[\u4e00-\u9fff]"
    mixed = pairs.filter(pl.col("case").is_in(["invoice_receipt", "same_amount_receipts", "repeat_invoice"]))
    assert mixed.height > 5
    ledger_zh = mixed["counterparty_ledger"].str.contains(han)
    assert ledger_zh.any() and (~ledger_zh).any()  # both directions


def test_ledger_style_numbers_invoices_from_an_offset():
    month = _month("ledger_style")
    invoices = month["ledger"].filter(pl.col("type") == "invoice")
    assert invoices["id"].str.contains(r"^INV/26/\d+$").all()
    assert invoices["id"].str.extract(r"(\d+)$").cast(pl.Int64).min() > 800
    assert month["bank"]["description"].str.contains(r"INV/26/\d+|INV26\d+").any()


def test_all_and_holdout_grow_the_ledger_mostly_with_open_invoices_and_orders():
    for name in ("all", "holdout"):
        month = _month(name)
        ratio = month["ledger"].height / month["bank"].height
        assert 2.5 <= ratio <= 3.1, (name, ratio)
        open_items = month["ledger"].filter(pl.col("case").is_in(["open_invoice", "sales_order"])).height
        assert open_items > 0.4 * month["ledger"].height, name


def test_the_holdout_profile_uses_forms_the_tuning_profiles_do_not():
    month = _month("holdout")
    variants = " ".join(month["bank"]["variant"].to_list())
    tuning = " ".join(_month("all")["bank"]["variant"].to_list())
    for tag in ("name=initials_first", "name=comma", "name=field_cut", "name=no_suffix", "ref=truncated2",
                "ref=prefix_changed", "ref=digit_dropped", "id=frn", "id=customer_no"):
        assert tag in variants and tag not in tuning, tag
    assert month["bank"]["description"].str.contains(r"^(CHQ DEP|CASH DEP) [0-9HKD]").any()
    assert month["ledger"].filter(pl.col("type") == "invoice")["id"].str.contains(r"^\d{8}$").all()
    assert HOLDOUT.held_out and not PROFILES["all"].held_out


# ---------------------------------------------------------------------------------------------
# labels: what changed, and what a careful human can still decide
# ---------------------------------------------------------------------------------------------
def _amount_unique(month, amount: Decimal, day: date, charge: bool) -> bool:
    """Brute force: one HKD ledger item of this amount 60 days before to 3 days after (less a
    charge: none of it, one a round HKD 5..200 above)."""
    exact = near = 0
    for item_amount, currency, item_day in month["ledger"].select("amount", "currency", "date").iter_rows():
        if currency != "HKD" or not day - timedelta(days=60) <= item_day <= day + timedelta(days=3):
            continue
        difference = Decimal(item_amount) - amount
        exact += difference == 0
        near += Decimal(0) < difference <= Decimal(200) and difference % 5 == 0
    return (exact == 0 and near == 1) if charge else exact == 1


def test_nameless_lines_labelled_decidable_have_a_unique_amount():
    month = _month("all")
    lines = month["bank"].filter(pl.col("variant").str.contains("|nameless=", literal=True)
                                 & (pl.col("case") != "duplicate_feed_line"))
    assert lines.height > 10
    verdicts = []
    for amount, day, variant in lines.select("amount", "date", "variant").iter_rows():
        unique = _amount_unique(month, Decimal(amount), day, "nameless=transfer" in variant)
        assert unique or variant.endswith(":undecidable"), variant
        verdicts.append(unique)
    assert any(verdicts)


def test_initials_labelled_decidable_are_unique_or_decided_otherwise():
    month = _month("name_forms")
    invoices = month["ledger"].filter(pl.col("type") == "invoice")
    keys = defaultdict(set)  # surname + initials -> ledger names (people, in latin script)
    for name in invoices["counterparty"].unique().to_list():
        tokens = _tokens(name)
        if 3 <= len(tokens) <= 4 and not re.search("LIMITED|LTD|COMPANY", name.upper()):
            surname, first, second = tokens[-3:]
            keys[(surname, first[0], second[0])].add(name)
    pairs = _pairs(month).join(_changed(month, "name=initials").select("id"), left_on="bank_ids", right_on="id")
    checked = 0
    for description, invoice, amount, day, variant in pairs.select(
            "description", "ledger_ids", "amount", "date", "variant").iter_rows():
        if variant.endswith(":undecidable"):
            continue
        serial = invoice.rsplit("-", 1)[1]
        if serial in description:
            continue  # the reference decides
        key = tuple(re.search(r"\b([A-Z]{2,}) ([A-Z]) ([A-Z])\b", description).groups())
        assert len(keys[key]) == 1 or _amount_unique(month, Decimal(amount), day, False), description
        checked += 1
    assert checked > 0


def test_some_lines_are_undecidable_and_most_are_not():
    for name in ("all", "holdout"):
        variants = _month(name)["bank"]["variant"]
        changed = variants.str.contains("|", literal=True).sum()
        undecidable = variants.str.ends_with(":undecidable").sum()
        assert 0 < undecidable < 0.15 * changed, (name, undecidable, changed)


def test_labels_csv_carries_the_variants_of_both_sides(tmp_path):
    month = _month("all")
    frame = labels(month)
    bank = frame.filter(pl.col("side") == "bank")
    assert bank["variant"].str.contains("|", literal=True).any()
    ledger = frame.filter(pl.col("side") == "ledger")
    assert {"retainer", "nameless=cheque", "ledger_style=slash"} <= set(
        ledger["variant"].drop_nulls().str.split("|").explode().to_list())


# ---------------------------------------------------------------------------------------------
# determinism, composition, command line
# ---------------------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_profiles_compose(tmp_path):
    first = save(generate(N_BANK, seed=SEED, profile="all"), tmp_path / "a")
    again = save(generate(N_BANK, seed=SEED, profile="all"), tmp_path / "b")
    for name, path in first.items():
        assert path.read_bytes() == again[name].read_bytes(), name
    both = generate(N_BANK, seed=SEED, profile="name_forms,nameless")
    variants = " ".join(both["bank"]["variant"].to_list())
    assert "name=" in variants and "nameless=" in variants and "ref=" not in variants


@pytest.mark.parametrize(
    ("profile", "message"),
    [("nonsense", "unknown profile"), ("holdout,name_forms", "used alone"), ("all,nameless", None)],
)
def test_resolving_profiles(profile, message):
    if message is None:
        assert resolve_profile(profile).nameless is PROFILES["nameless"].nameless
    else:
        with pytest.raises(ValueError, match=message):
            resolve_profile(profile)


def test_command_line_profile_and_ledger_ratio(tmp_path, capsys):
    assert main(["--bank-lines", "400", "--seed", "3", "--profile", "nameless,id_numbers",
                 "--open-items-ratio", "2.5", "--out", str(tmp_path)]) == 0
    bank = pl.read_csv(tmp_path / "bank.csv", infer_schema=False)
    ledger = pl.read_csv(tmp_path / "ledger.csv", infer_schema=False)
    assert 2.3 <= ledger.height / bank.height <= 2.7
    assert pl.read_csv(tmp_path / "labels.csv")["variant"].str.contains("nameless=|id=").any()
    with pytest.raises(SystemExit):
        main(["--bank-lines", "100", "--profile", "bogus", "--out", str(tmp_path / "x")])


# ---------------------------------------------------------------------------------------------
# the adversarial month
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_serials", [False, True])
def test_no_true_pair_month(with_serials):
    month = no_true_pair(300, 1_200, seed=2, with_serials=with_serials)
    bank, ledger = month["bank"], month["ledger"]
    assert (bank.height, ledger.height, month["truth"].height) == (300, 1_200, 0)
    assert set(bank["amount"]) == set(ledger["amount"]) == {"100.00"}
    assert (bank["amount_minor"] > 0).all() and bank["description"].str.contains(r"^FPS CR CUSTOMER \d+$").all()
    bank_numbers = set(bank["description"].str.extract(r"(\d+)$").cast(pl.Int64))
    customers = set(ledger["counterparty"].str.extract(r"^Customer (\d+) Limited$").cast(pl.Int64))
    serials = ledger["id"].str.extract(r"^INV-(\d+)$").cast(pl.Int64)
    assert len(bank_numbers) == 300 and not bank_numbers & customers
    assert ledger["id"].str.contains(r"^INV-\d{5,}$").all() and ledger["id"].is_unique().all()
    if with_serials:
        assert bank_numbers <= set(serials)
    else:
        assert not bank_numbers & set(serials)
    assert ledger["date"].max() < bank["date"].min()
    assert bank["date"].n_unique() > 20  # spread over the month


def test_no_true_pair_command_line_writes_an_empty_truth(tmp_path):
    assert main(["--adversarial", "no_true_pair", "--with-serials", "--bank-lines", "300", "--ledger-lines", "1200",
                 "--out", str(tmp_path)]) == 0
    truth = (tmp_path / "truth.csv").read_text().splitlines()
    assert truth == ["group_id,match_type,bank_ids,ledger_ids,adjustments,open_amount"]
    assert len((tmp_path / "ledger.csv").read_text().splitlines()) == 1_201
