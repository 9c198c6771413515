"""Tests of ``recon inspect FILE`` without ``--side``: a processor export is recognised as one
(feeds stage: :func:`feeds.registry.detect_side`, :func:`feeds.inspect.inspect_file`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feeds import registry
from feeds.inspect import format_inspection, inspect_file
from models.errors import FeedFormatError
from tests.feeds import helpers

DATA = Path(__file__).parent / "data"
SHARED = helpers.REALDATA
needs_shared = helpers.needs_shared()

#: every processor file of the real data: (format, lines, rejects) as read, or the reason a
#: file that is not payout data is refused (facts from ../shared/realdata/expected.json)
REAL_PROCESSOR_FILES: dict[str, tuple[str, int, int] | str] = {
    "stripe/djstripe_balance_transaction_charge.json": ("stripe", 1, 0),
    "stripe/djstripe_balance_transaction_dispute.json": ("stripe", 1, 0),
    "stripe/djstripe_charge.json": "is a Stripe charge object, not a balance transaction or payout",
    "stripe/djstripe_payout_bank_account.json": ("stripe", 1, 0),
    "stripe/hledger_stripe_balance_change_from_activity.csv": ("stripe", 2, 0),
    "stripe/stripe_openapi_fixtures3.json": "is Stripe's OpenAPI fixture bundle",
    "shopify/order_refund.json": "is a Shopify refund of one order",
    "shopify/order_single.json": "is a single Shopify order",
    "shopify/order_transactions.json": "is a list of Shopify order transactions",
    "shopify/orders_list.json": "is a list of Shopify orders",
    # 25 rows; adjustment 758509248 breaks net = amount - fee and is rejected
    "shopify/shopify_payments_balance_transactions.json": ("shopify", 24, 1),
    "shopify/shopify_payments_payout_single.json": ("shopify", 1, 0),
    "shopify/shopify_payments_payouts.json": ("shopify", 6, 0),
    "shopify/tender_transactions.json": "is Shopify tender transactions",
    "paypal/beancountimport_paypal_transaction_detail_de.json": ("paypal", 1, 0),
    "paypal/hledger_paypal_activity_custom_columns.csv": ("paypal", 7, 0),
    "paypal/ledgerautosync_paypal_activity_full.csv": ("paypal", 2, 0),
    "paypal/ledgerautosync_paypal_activity_short.csv": ("paypal", 2, 0),
    "paypal/ledgerautosync_venmo_statement.csv": ("paypal", 4, 0),
}


def test_every_real_processor_file_has_its_facts():
    for folder in ("stripe", "shopify", "paypal"):
        facts = {k.split("/", 1)[1]: v for k, v in REAL_PROCESSOR_FILES.items() if k.startswith(folder + "/")}
        helpers.check_facts_cover_files(SHARED / folder, facts, folder)


@needs_shared
@pytest.mark.parametrize("name", [n for n, f in REAL_PROCESSOR_FILES.items() if isinstance(f, tuple)])
@pytest.mark.parametrize("side", [None, "bank"])
def test_real_processor_export_inspects_as_processor_without_side(name, side):
    # side "bank" is what `recon inspect FILE` passed before --side could be left out
    format, lines, rejects = REAL_PROCESSOR_FILES[name]
    summary = inspect_file(str(SHARED / name), side=side)
    assert (summary["format"], summary["side"]) == (format, "processor")
    assert (summary["transactions"], len(summary["rejects"])) == (lines, rejects)
    assert summary["rows_read"] == lines + rejects
    said = [n for n in summary["notes"] if "reads as a processor file" in n]
    assert len(said) == (1 if side == "bank" else 0)
    assert f"{format} (processor side)" in format_inspection(summary)
    json.dumps(summary, default=str)


@needs_shared
@pytest.mark.parametrize("name", [n for n, f in REAL_PROCESSOR_FILES.items() if isinstance(f, str)])
def test_real_processor_json_that_is_not_payout_data_says_what_it_is_without_side(name):
    with pytest.raises(FeedFormatError) as error:
        inspect_file(str(SHARED / name))
    message = str(error.value)
    assert REAL_PROCESSOR_FILES[name] in message
    assert "could not recognise" not in message and "bank file" not in message


@needs_shared
@pytest.mark.parametrize(
    ("name", "format"),
    [
        ("mt940/rabobank_nl_iban.sta", "mt940"),
        ("camt/genkgo_camt053_001_02_minimal.xml", "camt"),
        ("ofx/ofxparse_checking_sgml102_indented.ofx", "ofx"),
        ("bank_csv/hsbc_hk_savings_tab_padded.csv", "bank_csv"),
    ],
)
def test_real_statements_still_inspect_as_bank_without_side(name, format):
    summary = inspect_file(str(SHARED / name))
    assert (summary["format"], summary["side"]) == (format, "bank")
    assert not any("reads as" in n for n in summary["notes"])


def test_own_stripe_report_inspects_as_processor_without_side():
    summary = inspect_file(str(DATA / "stripe_payout_sample.csv"))
    assert (summary["format"], summary["side"]) == ("stripe", "processor")
    assert summary["totals_in"]["JPY"] == "964"
    assert inspect_file(str(DATA / "stripe_payout_sample.csv"), side="processor")["notes"] == []


def test_detect_side_prefers_the_side_asked_for_then_asks_every_side(tmp_path):
    module, side = registry.detect_side(str(DATA / "bank_sample.csv"))
    assert (module.FORMAT, side) == ("canonical_csv", "bank")
    module, side = registry.detect_side(str(DATA / "ledger_sample.csv"), prefer="ledger")
    assert (module.FORMAT, side) == ("canonical_csv", "ledger")
    module, side = registry.detect_side(str(DATA / "stripe_payout_sample.csv"), prefer="bank")
    assert (module.FORMAT, side) == ("stripe", "processor")
    with pytest.raises(FeedFormatError, match="unknown side"):
        registry.detect_side(str(DATA / "bank_sample.csv"), prefer="banks")


def test_read_any_without_side_reads_as_the_format_serves():
    result = registry.read_any(str(DATA / "stripe_payout_sample.csv"), None)
    assert (result.format, result.side) == ("stripe", "processor")
    named = registry.read_any(str(DATA / "stripe_payout_sample.csv"), None, format="stripe")
    assert named.side == "processor" and named.frame.height == result.frame.height
    # a side that is given is kept: the matcher never reads a Stripe report as a bank statement
    with pytest.raises(FeedFormatError, match="could not recognise the format of this bank file"):
        registry.read_any(str(DATA / "stripe_payout_sample.csv"), "bank")


def test_unrecognised_file_without_side_lists_every_side_formats(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(FeedFormatError) as error:
        inspect_file(str(path))
    message = str(error.value)
    assert "could not recognise the format of this file" in message
    for title in ("canonical CSV", "OFX", "camt", "Stripe", "Shopify", "PayPal"):
        assert title in message
    assert "--side" in message and f"recon profile {path}" in message


def test_near_canonical_csv_still_names_its_missing_column_without_side(tmp_path):
    path = tmp_path / "almost.csv"
    path.write_text("id,date,value,currency\nA1,2026-01-05,10.00,HKD\n", encoding="utf-8")
    with pytest.raises(FeedFormatError, match="missing required column 'amount'"):
        inspect_file(str(path))


def test_explicit_side_with_a_real_error_keeps_that_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"object": "list", "data": 5}', encoding="utf-8")
    with pytest.raises(FeedFormatError, match="without a 'data' array"):
        inspect_file(str(path), side="processor")
    with pytest.raises(FeedFormatError, match="without a 'data' array"):
        inspect_file(str(path))
