"""FX receipt groups: exact conversion at the bank date's rate, the fx_difference / bank_charge
split, and the balancing invariant."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from engine.candidates.fx import fx_groups, rate_fractions
from engine.candidates.groups import GROUP_SCHEMA
from engine.prepare.features import prepare_bank, prepare_ledger
from feeds.fx import FX_SCHEMA
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules import default_rules

RULES = default_rules()


def _frame(schema, rows):
    base = {c: "" for c in schema if schema[c] == pl.Utf8}
    data = [{**base, "attributes": "{}", "source_file": "t.csv", "source_line": i + 2, **r} for i, r in enumerate(rows)]
    return pl.DataFrame(data, schema=schema)


def _bank(*lines):
    rows = [
        {"id": f"B{i}", "date": d, "amount_minor": amount, "currency": "HKD", "description": text}
        for i, (d, amount, text) in enumerate(lines, start=1)
    ]
    return prepare_bank(_frame(BANK_SCHEMA, rows))


def _ledger(*items):
    rows = [
        {"id": ref, "date": d, "amount_minor": amount, "currency": currency,
         "counterparty": name, "reference": ref, "type": "invoice", "due_date": None}
        for ref, d, amount, currency, name in items
    ]
    return prepare_ledger(_frame(LEDGER_SCHEMA, rows), RULES)


def _rates(*rows):
    return pl.DataFrame(
        [{"date": d, "base": b, "quote": q, "rate_text": r, "rate": float(r), "source_file": "fx.csv",
          "source_line": i + 2} for i, (d, b, q, r) in enumerate(rows)],
        schema=FX_SCHEMA,
    )


def _adjustments(group) -> dict[str, int]:
    return {a["cause"]: a["amount_minor"] for a in group["adjustments"]}


def _balanced(groups: pl.DataFrame, bank: pl.DataFrame) -> bool:
    for g in groups.iter_rows(named=True):
        amount = bank["amount_minor"][g["bank_idx"][0]]
        if g["ledger_total"] + sum(_adjustments(g).values()) != amount:
            return False
    return True


USD_INVOICE = ("INV-2026-00001", date(2026, 9, 20), 470217, "USD", "Harbour Eastern Trading Inc")
TEXT = "TT IN USD4702.17 HARBOUR EASTERN TRADING INC INV-2026-00001"


def test_example_from_the_docs_converts_splits_and_balances():
    # USD 4,702.17 at 7.7804 = HKD 36,584.76 (36,584.763468); credited HKD 36,481.40
    bank = _bank((date(2026, 10, 5), 3648140, TEXT))
    groups = fx_groups(bank, _ledger(USD_INVOICE), _rates((date(2026, 10, 5), "USD", "HKD", "7.7804")), RULES)
    assert groups.schema == pl.Schema(GROUP_SCHEMA)
    g = groups.row(0, named=True)
    assert g["kind"] == "one_to_one" and g["bank_idx"] == [0] and g["ledger_idx"] == [0]
    assert g["ledger_total"] == 3658476
    assert _balanced(groups, bank)
    assert "USD 4702.17 at 7.7804 (USD/HKD on 2026-10-05) = HKD 36584.76" in g["evidence"]
    assert "bank text states USD 4702.17" in g["evidence"]
    assert "INV-2026-00001" in g["evidence"]


@pytest.mark.parametrize(
    "amount_minor, rate_text, expected_minor",
    [
        # 1.005 * 100: float gives 100.49999999999999 -> 100 with round-half-up on floats; exact is 100.50 -> 101
        (100, "1.005", 101),
        # USD 0.15 at 7.85 = 1.1775 HKD -> 1.18 (float 0.15 * 7.85 = 1.1774999999999998)
        (15, "7.85", 118),
        # a large amount where float products lose the last digit: 1e12 minor units at 7.78045
        (10**12, "7.78045", 7_780_450_000_000),
        # round half away from zero on an exact half: 0.50 USD at 7.8 = 3.90; 1 cent at 7.85 = 0.0785 -> 0.08
        (1, "7.85", 8),
    ],
)
def test_conversion_is_exact(amount_minor, rate_text, expected_minor):
    exact = (Decimal(amount_minor) * Decimal(rate_text)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert int(exact) == expected_minor
    ledger = _ledger(("INV-2026-00001", date(2026, 10, 1), amount_minor, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), expected_minor, "TT IN HARBOUR EASTERN TRADING INC INV-2026-00001"))
    groups = fx_groups(bank, ledger, _rates((date(2026, 10, 5), "USD", "HKD", rate_text)), RULES)
    assert groups["ledger_total"].to_list() == [expected_minor]
    assert groups["adjustments"].to_list() == [[]]


def test_float_would_round_wrong():
    # 1.005 as a float is 1.00499999999999989...: a float conversion of 100 units rounds down
    assert round(100 * 1.005) == 100
    ledger = _ledger(("INV-2026-00001", date(2026, 10, 1), 100, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), 101, "TT IN HARBOUR EASTERN TRADING INC INV-2026-00001"))
    groups = fx_groups(bank, ledger, _rates((date(2026, 10, 5), "USD", "HKD", "1.005")), RULES)
    assert groups["ledger_total"].to_list() == [101]


def test_nearest_earlier_rate_within_the_age_limit():
    rates = _rates(
        (date(2026, 9, 28), "USD", "HKD", "7.7000"),
        (date(2026, 10, 2), "USD", "HKD", "7.8000"),  # nearest earlier for 2026-10-05
        (date(2026, 10, 6), "USD", "HKD", "7.9000"),  # after the bank date: never used
    )
    ledger = _ledger(("INV-2026-00001", date(2026, 9, 20), 100000, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), 780000, "TT IN HARBOUR EASTERN TRADING INC INV-2026-00001"))
    g = fx_groups(bank, ledger, rates, RULES).row(0, named=True)
    assert g["ledger_total"] == 780000
    assert "7.8000 (USD/HKD on 2026-10-02)" in g["evidence"]


def test_rate_too_old_or_missing_gives_no_group():
    ledger = _ledger(("INV-2026-00001", date(2026, 9, 20), 100000, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 20), 780000, "TT IN HARBOUR EASTERN TRADING INC INV-2026-00001"))
    old = _rates((date(2026, 10, 9), "USD", "HKD", "7.8000"))  # 11 days before: older than 10
    assert fx_groups(bank, ledger, old, RULES).height == 0
    other_pair = _rates((date(2026, 10, 20), "EUR", "HKD", "8.4000"))
    assert fx_groups(bank, ledger, other_pair, RULES).height == 0
    assert fx_groups(bank, ledger, _rates(), RULES).height == 0
    recent = _rates((date(2026, 10, 10), "USD", "HKD", "7.8000"))
    assert fx_groups(bank, ledger, recent, RULES).height == 1


def test_inverse_quote_is_inverted_exactly():
    # only HKD/USD is quoted: 1 HKD = 0.128 USD, so 1 USD = 7.8125 HKD exactly
    rates = _rates((date(2026, 10, 5), "HKD", "USD", "0.128"))
    fractions = rate_fractions(rates)
    assert fractions.filter(pl.col("base") == "USD").select("rate_num", "rate_den").row(0) == (1000, 128)
    ledger = _ledger(("INV-2026-00001", date(2026, 9, 20), 100000, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), 781250, "TT IN HARBOUR EASTERN TRADING INC INV-2026-00001"))
    g = fx_groups(bank, ledger, rates, RULES).row(0, named=True)
    assert g["ledger_total"] == 781250 and g["adjustments"] == []
    assert "1/0.128 (HKD/USD" in g["evidence"]


def test_a_direct_quote_wins_over_the_inverse():
    rates = _rates((date(2026, 10, 5), "HKD", "USD", "0.128"), (date(2026, 10, 5), "USD", "HKD", "7.8000"))
    fractions = rate_fractions(rates)
    assert fractions.filter(pl.col("base") == "USD").select("rate_num", "rate_den", "inverse").rows() == [
        (78, 10, False)
    ]


@pytest.mark.parametrize(
    "bank_rate, charge",
    [
        # the bank credits USD 4,702.17 at its own 4-decimal buying rate (mid 7.7804), then
        # may deduct a flat charge from the list
        ("7.7698", 0),
        ("7.7698", 5000),
        ("7.7718", 10000),
    ],
)
def test_charge_split_prefers_the_banks_four_decimal_rate(bank_rate, charge):
    credited_at_rate = int((Decimal(470217) * Decimal(bank_rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    credited = credited_at_rate - charge
    bank = _bank((date(2026, 10, 5), credited, TEXT))
    g = fx_groups(bank, _ledger(USD_INVOICE), _rates((date(2026, 10, 5), "USD", "HKD", "7.7804")), RULES).row(0, named=True)
    expected = {"fx_difference": credited_at_rate - 3658476}
    if charge:
        expected["bank_charge"] = -charge
    assert _adjustments(g) == expected
    assert g["ledger_total"] + sum(_adjustments(g).values()) == credited


def test_two_four_decimal_splits_take_the_smaller_charge():
    # USD 4,702.17 x 0.0319 = HKD 150.00: rate 7.7450 less HKD 200 and rate 7.7131 less HKD 50
    # give the same credit; the split cannot tell them apart and takes the smaller charge
    credited = int((Decimal(470217) * Decimal("7.7450")).quantize(Decimal(1), rounding=ROUND_HALF_UP)) - 20000
    assert int((Decimal(470217) * Decimal("7.7131")).quantize(Decimal(1), rounding=ROUND_HALF_UP)) - 5000 == credited
    bank = _bank((date(2026, 10, 5), credited, TEXT))
    g = fx_groups(bank, _ledger(USD_INVOICE), _rates((date(2026, 10, 5), "USD", "HKD", "7.7804")), RULES).row(0, named=True)
    assert _adjustments(g)["bank_charge"] == -5000


def test_without_a_four_decimal_rate_no_charge_then_the_smallest():
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.7804"))
    # HKD 36,500.01: no 4-decimal rate gives it with or without a charge (steps of 47 cents)
    assert all((470217 * r + 5000) // 10000 != 3650001 + c for r in range(77000, 78000) for c in (0, 5000))
    bank = _bank((date(2026, 10, 5), 3650001, TEXT))
    g = fx_groups(bank, _ledger(USD_INVOICE), rates, RULES).row(0, named=True)
    assert _adjustments(g) == {"fx_difference": 3650001 - 3658476}


def test_outside_the_spread_or_wrong_sign_gives_no_group():
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.7804"))
    # converted 36,584.77: 1% spread and HKD 250 at most -> below 35,968.92 is too little
    bank = _bank(
        (date(2026, 10, 5), 3590000, TEXT),
        (date(2026, 10, 5), -3653491, TEXT),
        (date(2026, 10, 5), 3700000, TEXT),  # far more than the conversion
    )
    assert fx_groups(bank, _ledger(USD_INVOICE), rates, RULES).height == 0


def test_alternatives_are_all_offered_and_the_stated_amount_decides():
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.8000"))
    ledger = _ledger(
        ("INV-2026-00001", date(2026, 10, 2), 100000, "USD", "Harbour Eastern Trading Inc"),
        ("INV-2026-00002", date(2026, 10, 3), 100100, "USD", "Harbour Eastern Trading Inc"),
    )
    # USD 1,000.00 and 1,001.00 both fit HKD 7,790.00: both are offered, the solver sees a tie
    bank = _bank((date(2026, 10, 5), 779000, "TT IN HARBOUR EASTERN TRADING INC"))
    groups = fx_groups(bank, ledger, rates, RULES)
    assert sorted(groups["ledger_idx"].to_list()) == [[0], [1]] and _balanced(groups, bank)
    # the text states USD 1,001.00: that item is clearly the best
    bank = _bank((date(2026, 10, 5), 779000, "TT IN USD1001.00 HARBOUR EASTERN TRADING INC"))
    groups = fx_groups(bank, ledger, rates, RULES).sort("score", descending=True)
    best = groups.row(0, named=True)
    assert best["ledger_idx"] == [1]
    assert "bank text states USD 1001.00" in best["evidence"]
    assert groups.height == 1 or best["score"] - groups["score"][1] >= 4


def test_same_currency_items_are_not_fx():
    ledger = _ledger(("INV-2026-00001", date(2026, 9, 20), 780000, "HKD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), 780000, "TT IN HARBOUR EASTERN TRADING INC INV-2026-00001"))
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.8000"))
    assert fx_groups(bank, ledger, rates, RULES).height == 0


def test_payment_out_costs_the_bank_side_more():
    # a USD 4,702.17 bill paid from the HKD account: the bank sells USD at 7.7910 (mid 7.7804),
    # HKD 36,634.61, and takes HKD 100: debit 36,734.61 = -36,584.76 - 49.85 - 100.00
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.7804"))
    ledger = _ledger(("BILL-2026-00007", date(2026, 10, 1), -470217, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), -3673461, "TT OUT HARBOUR EASTERN TRADING INC BILL-2026-00007"))
    groups = fx_groups(bank, ledger, rates, RULES)
    g = groups.row(0, named=True)
    assert g["ledger_total"] == -3658476
    assert _adjustments(g) == {"fx_difference": -4985, "bank_charge": -10000}
    assert _balanced(groups, bank)


def test_a_fitting_amount_alone_is_no_candidate():
    # HKD 7,800.00 fits USD 1,000.00 at 7.80, but nothing else ties the line to the item
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.8000"))
    ledger = _ledger(("INV-2026-00001", date(2026, 10, 4), 100000, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), 780000, "FPS CR CHAN TAI MAN"))
    assert fx_groups(bank, ledger, rates, RULES).height == 0


@pytest.mark.parametrize(
    "text",
    [
        "TT IN HARBOUR EASTERN TRADING INC",  # the same name
        "TT IN HARBOUREASTERN TRADING",  # spaced differently
        "TT IN HARBOUR EASTERN TRAD",  # cut short
        "TT IN USD1000.00",  # the foreign amount stated (no name)
        "TT IN CHAN TAI MAN INV-2026-00001",  # the reference quoted
    ],
)
def test_name_stated_amount_or_reference_make_a_candidate(text):
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.8000"))
    ledger = _ledger(("INV-2026-00001", date(2026, 9, 20), 100000, "USD", "Harbour Eastern Trading Inc"))
    bank = _bank((date(2026, 10, 5), 780000, text))
    groups = fx_groups(bank, ledger, rates, RULES)
    assert groups["ledger_idx"].to_list() == [[0]]


def test_stated_amount_same_payer_and_fit_are_decisive_when_unique():
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.8000"))
    invoice = ("INV-2026-00001", date(2026, 9, 5), 100100, "USD", "Harbour Eastern Trading Inc")
    bank = _bank((date(2026, 10, 5), 779000, "TT IN USD1001.00 HARBOUR EASTERN TRADING INC"))
    g = fx_groups(bank, _ledger(invoice), rates, RULES).row(0, named=True)
    assert g["score"] >= 5.5  # auto (0.97 is 5.0 bits)
    assert "no other FX candidate" in g["evidence"]
    # another invoice of the payer also fits: the stated amount still decides between them,
    # but the group is no longer the clear choice on its own (review)
    other = ("INV-2026-00002", date(2026, 9, 6), 100000, "USD", "Harbour Eastern Trading Inc")
    groups = fx_groups(bank, _ledger(invoice, other), rates, RULES).sort("score", descending=True)
    assert groups["ledger_idx"].to_list()[0] == [0]
    assert groups["score"][0] < 5.0 and "no other FX candidate" not in groups["evidence"][0]
    # so does another line of the payer that fits the invoice
    two_lines = _bank(
        (date(2026, 10, 5), 779000, "TT IN USD1001.00 HARBOUR EASTERN TRADING INC"),
        (date(2026, 10, 6), 779500, "TT IN HARBOUR EASTERN TRADING INC"),
    )
    groups = fx_groups(two_lines, _ledger(invoice), rates, RULES).sort("score", descending=True)
    assert groups["bank_idx"].to_list()[0] == [0] and groups["score"][0] < 5.0


def _canonical_bank(*lines):
    return _frame(BANK_SCHEMA, [
        {"id": f"B{i}", "date": d, "amount_minor": amount, "currency": "HKD", "description": text}
        for i, (d, amount, text) in enumerate(lines, start=1)
    ])


def _canonical_ledger(*items):
    return _frame(LEDGER_SCHEMA, [
        {"id": ref, "date": d, "amount_minor": amount, "currency": currency, "counterparty": name,
         "reference": ref, "type": "invoice", "due_date": None}
        for ref, d, amount, currency, name in items
    ])


def test_an_item_no_rate_can_convert_says_which_rate_is_missing():
    from engine.pipeline import match_frames

    bank = _canonical_bank((date(2026, 10, 5), 12345, "FPS CR SOMEONE ELSE"))
    ledger = _canonical_ledger(
        USD_INVOICE, ("INV-2026-00002", date(2026, 9, 21), 10000, "EUR", "Kam Wing Trading"),
    )
    with_eur = match_frames(bank, ledger, RULES, fx_rates=_rates((date(2026, 10, 1), "EUR", "HKD", "8.4")))
    reasons = dict(with_eur.unmatched_ledger.select("id", "reason").iter_rows())
    assert reasons["INV-2026-00001"] == (
        "no bank line in USD (the bank account is in HKD), and the FX rates given (--fx) have no "
        "USD/HKD rate to convert it"
    )
    assert reasons["INV-2026-00002"].startswith("no bank line with this amount")  # a rate exists
    without = match_frames(bank, ledger, RULES)
    reasons = dict(without.unmatched_ledger.select("id", "reason").iter_rows())
    assert reasons["INV-2026-00001"] == (
        "no bank line in USD (the bank account is in HKD), and no FX rates were given (--fx) to convert it"
    )
    assert reasons["INV-2026-00002"].endswith("no FX rates were given (--fx) to convert it")


def test_fx_settings_are_read_from_the_rule_set():
    # the bank text does not state the foreign amount: the fit alone is the amount evidence
    bank = _bank((date(2026, 10, 5), 3648140, "TT IN HARBOUR EASTERN TRADING INC INV-2026-00001"))
    rates = _rates((date(2026, 10, 5), "USD", "HKD", "7.7804"))
    base = fx_groups(bank, _ledger(USD_INVOICE), rates, RULES).row(0, named=True)
    worth_more = RULES.with_changes(fx={"fit_weight_share": 1.0})
    more = fx_groups(bank, _ledger(USD_INVOICE), rates, worth_more).row(0, named=True)
    assert more["score"] - base["score"] == pytest.approx(RULES.weights.amount.exact * 0.5)
    # two invoices of the same payer and amount both fit: both kept, or only the best one
    twin = ("INV-2026-00002", date(2026, 9, 21), 470217, "USD", "Harbour Eastern Trading Inc")
    assert fx_groups(bank, _ledger(USD_INVOICE, twin), rates, RULES).height == 2
    assert fx_groups(bank, _ledger(USD_INVOICE, twin), rates, RULES.with_changes(fx={"max_alternatives": 1})).height == 1
