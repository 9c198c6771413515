"""Each comparison level on its edge cases (table-driven: bank line, ledger item, expected level),
measured as the pipeline measures candidate pairs; and levels round-trip to the rule file."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from engine.pipeline import prepare_bank_frame, prepare_ledger_frame
from engine.scoring.evidence import measure_pairs
from engine.scoring.levels import COMPARISONS, comparisons_for
from engine.scoring.score import level_codes
from feeds.aliases import read_aliases
from models.schema import BANK_SCHEMA, LEDGER_SCHEMA
from rules.model import default_rules, from_mapping

RULES = default_rules()


def _frame(schema: dict, row: dict) -> pl.DataFrame:
    base = {"id": "X", "date": date(2026, 10, 15), "amount_minor": 1_000_000, "currency": "HKD",
            "description": None, "counterparty": None, "reference": None, "account": "001",
            "type": "invoice", "due_date": None, "attributes": "{}", "source_file": "t.csv", "source_line": 2}
    values = {**base, **row}
    return pl.DataFrame({name: [values.get(name)] for name in schema}, schema=schema)


def levels(bank: dict, ledger: dict, aliases: pl.DataFrame | None = None) -> dict[str, str]:
    """The level key of every comparison for the one pair (bank line, ledger item)."""
    prepared_bank = prepare_bank_frame(_frame(BANK_SCHEMA, {"id": "B1", **bank}), aliases)
    prepared_ledger = prepare_ledger_frame(_frame(LEDGER_SCHEMA, {"id": "L1", **ledger}), RULES, aliases)
    pairs = pl.DataFrame({"bank_idx": [0], "ledger_idx": [0], "via": [0]},
                         schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8})
    evidence = measure_pairs(pairs, prepared_bank, prepared_ledger, RULES)
    codes = level_codes(evidence, prepared_bank, prepared_ledger, RULES)
    comparisons = comparisons_for(RULES)
    return {name: comparisons[name].levels[int(codes[name][0])].key for name in COMPARISONS}


@pytest.mark.parametrize(
    ("bank_text", "ledger_name", "expected"),
    [
        ("FPS CR KAM WING TRADING CO LTD", "Kam Wing Trading Limited", "same name"),
        ("FPS CR KWAN MING CHOW", "Chow Kwan Ming", "same name"),  # surname last
        ("FPS CR MS KWOK HOI SIU", "Kwok Hoi Siu", "same name"),  # honorific
        ("FPS CR KWOK HOI SIU MS.", "Kwok Hoi Siu", "same name"),
        ("FPS CR 明珠物流 有限公司", "明珠物流有限公司", "same name"),  # a space inside the Chinese
        ("TT IN KAM WING TRADING CO., LIMITED", "Kam Wing Trading (HK) Ltd", "same name"),
        ("FPS CR HO H L", "Ho Ho Ling", "initials"),
        ("FPS CR NG M P", "Ng Mei Pui", "initials"),
        ("FPS CR T M CHAN", "Chan Tai Man", "initials"),
        ("FPS CR HO H L", "Ho Ho Man", "different name"),  # the initials do not fit
        ("FPS CR CUSTOMER 4842", "Customer 3609 Limited", "digits_differ"),
        ("FPS CR CUSTOMER 3609", "Customer 3609 Limited", "same name"),
        ("FPS CR 9255227770 LO FUNG MAN", "Lo Fung Man", "same name"),  # an FPS id is not the name
        ("FPS CR 陳大文", "CHAN TAI MAN", "different script"),
        ("CHEQUE DEPOSIT", "Kam Wing Trading Limited", "missing"),
    ],
)
def test_name_levels(bank_text, ledger_name, expected):
    assert levels({"description": bank_text}, {"counterparty": ledger_name})["name"] == expected


def test_an_alias_table_links_names_in_two_scripts(tmp_path):
    table = tmp_path / "aliases.csv"
    table.write_text("name,alias\n陳大文,CHAN TAI MAN\n", encoding="utf-8")
    aliases = read_aliases(table)
    assert levels({"description": "FPS CR 陳大文"}, {"counterparty": "CHAN TAI MAN"}, aliases)["name"] == "alias"
    # unlinked names in two scripts stay no evidence either way
    assert levels({"description": "FPS CR 陳小文"}, {"counterparty": "CHAN TAI MAN"}, aliases)["name"] == "different script"


@pytest.mark.parametrize(
    ("bank_text", "expected"),
    [
        ("FPS CR KAM WING INV-2026-01069", "full"),
        ("FPS CR KAM WING INV202601069", "full"),
        ("FPS CR KAM WING 2026-01069", "reformatted"),
        ("FPS CR KAM WING 1069", "serial"),  # only the number, leading zero dropped
        ("FPS CR KAM WING INV-2026-10069", "near"),  # two digits swapped
        ("FPS CR KAM WING INV-2026-01068", "near"),  # one digit off
        ("FPS CR KAM WING INV-2026-0106", "truncated"),
        ("FPS CR KAM WING INV-2026-05555", "conflict"),  # another complete document number
        ("FPS CR KAM WING", "none"),
        ("FPS CR KAM WING HKD 1,069.00", "none"),  # an amount is not a reference
    ],
)
def test_reference_levels(bank_text, expected):
    ledger = {"counterparty": "Kam Wing Ltd", "reference": "INV-2026-01069"}
    assert levels({"description": bank_text}, ledger)["reference"] == expected


@pytest.mark.parametrize(
    ("bank_minor", "expected"),
    [
        (1_000_000, "exact"),
        (995_000, "bank_charge"),  # 50.00 less: a round charge
        (980_000, "discount"),  # 2% less
        (999_700, "within_tolerance"),  # 3.00 less, no recognisable cause
    ],
)
def test_amount_levels(bank_minor, expected):
    assert levels({"amount_minor": bank_minor, "description": "FPS CR KAM WING"},
                  {"counterparty": "Kam Wing Ltd"})["amount"] == expected


@pytest.mark.parametrize(
    ("days_after", "expected"),
    [(0, "inside"), (10, "inside"), (16, "near"), (40, "outside")],  # a receipt's window: 10 days after
)
def test_window_levels(days_after, expected):
    bank = {"date": date.fromordinal(date(2026, 10, 1).toordinal() + days_after), "description": "CHEQUE DEPOSIT"}
    ledger = {"date": date(2026, 10, 1), "type": "receipt", "counterparty": "Kam Wing Ltd"}
    assert levels(bank, ledger)["window"] == expected


def test_a_unique_nameless_amount_is_the_only_item_with_it():
    found = levels({"amount_minor": 2_880_815, "description": "CHEQUE DEPOSIT 28,808.15"},
                   {"amount_minor": 2_880_815, "type": "receipt", "counterparty": "Cheque receipt"})
    assert found["commonness"] == "the only item with this amount"
    assert found["uniqueness"] == "unique"


def test_levels_round_trip_to_the_rule_file():
    changed = RULES.with_changes(weights={**RULES.weights.model_dump(mode="json"),
                                          "name_initials": 2.25, "near_window": -1.25})
    comparisons = comparisons_for(changed)
    section: dict = {}
    for comparison in comparisons.values():
        section.update(comparison.weights_section())
    rebuilt = from_mapping({**changed.model_dump(mode="json"),
                            "weights": {**changed.weights.model_dump(mode="json"), **section}})
    assert rebuilt.weights == changed.weights
    assert comparisons["name"].levels[comparisons["name"].index("initials")].weight == 2.25


@pytest.mark.parametrize(
    ("bank_text", "expected"),
    [
        ("FPS CR KAM WING INV/26/49777", "conflict"),  # a shorter number of the same series: another invoice
        ("FPS CR KAM WING INV/26/10185", "truncated"),  # the item's own number cut short
        ("FPS CR KAM WING PO 4411", "none"),  # the customer's own PO number says nothing
    ],
)
def test_a_shorter_number_of_the_same_series_conflicts(bank_text, expected):
    ledger = {"counterparty": "Kam Wing Ltd", "reference": "INV/26/101851"}
    assert levels({"description": bank_text}, ledger)["reference"] == expected


def test_quoting_another_items_reference_conflicts_with_an_item_without_one():
    # the bank quotes INV/26/39293 as written; the sales order (no reference of its own) of a
    # similar name is another document, not merely "no reference"
    bank = prepare_bank_frame(_frame(BANK_SCHEMA, {"id": "B1", "description": "FPS CR TAK SHUN LOGISTICS INV/26/39293"}))
    ledger = prepare_ledger_frame(pl.concat([
        _frame(LEDGER_SCHEMA, {"id": "INV/26/39293", "reference": "INV/26/39293", "counterparty": "德信物流有限公司"}),
        _frame(LEDGER_SCHEMA, {"id": "SO-2026-48158", "type": "order", "counterparty": "Hoi Shun Logistics Ltd"}),
    ]), RULES)
    pairs = pl.DataFrame({"bank_idx": [0, 0], "ledger_idx": [0, 1], "via": [0, 0]},
                         schema={"bank_idx": pl.UInt32, "ledger_idx": pl.UInt32, "via": pl.UInt8})
    evidence = measure_pairs(pairs, bank, ledger, RULES)
    codes = level_codes(evidence, bank, ledger, RULES)
    reference = comparisons_for(RULES)["reference"]
    by_item = dict(zip(ledger["id"].to_list(), (reference.levels[int(c)].key for c in codes["reference"]), strict=True))
    assert by_item == {"INV/26/39293": "full", "SO-2026-48158": "conflict"}
