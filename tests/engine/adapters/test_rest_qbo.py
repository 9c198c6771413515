"""The QuickBooks Online write-back (``qbo+http://...``) against the fake QuickBooks: what
reaches the company in its shape (a Payment linked to its invoices, a BillPayment, journal
entries), exactly once through 500s, 429s and expiring tokens (``requestid``), a reversal whose
payment was changed in QuickBooks reported as a conflict, terminal 400s with their reasons,
settings."""

from __future__ import annotations

import os
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from engine.adapters import open_target
from engine.adapters.base import JournalLine, MatchLine, WriteItem
from engine.adapters.rest import QBO_TOKEN_FILE
from models.errors import InputError
from tests.engine.adapters.fake_qbo import FakeQbo
from tests.engine.adapters.rest_items import DAY, month, one_to_many, one_to_one

FAST = 0.001  # platform seconds -> wall seconds: a platform minute lasts 60 ms


@pytest.fixture
def qbo_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("RECON_QBO_"):
            monkeypatch.delenv(name)

    def apply(fake: FakeQbo, **overrides: str) -> None:
        for name, value in fake.environment(**overrides).items():
            monkeypatch.setenv(name, value)

    return apply


def book(fake: FakeQbo, items: list[WriteItem], customer: str = "58") -> dict[str, str]:
    """The company's documents for ``items``: every ledger item open in full (an invoice for
    money in, a bill for money out, credit notes for the opposite sign); number -> Id."""
    ids = {}
    for item in items:
        money_in = next(line.amount_minor > 0 for line in item.lines if line.side == "bank")
        for line in item.lines:
            if line.side == "ledger" and line.line_id not in ids:
                credit = (line.amount_minor > 0) != money_in
                kind = {(True, False): "Invoice", (True, True): "CreditMemo", (False, False): "Bill",
                        (False, True): "VendorCredit"}[(money_in, credit)]
                ids[line.line_id] = fake.add_document(kind, line.line_id, Decimal(abs(line.amount_minor)) / 100,
                                                      party=customer if money_in else "77", currency=line.currency)
    return ids


def short_payment() -> WriteItem:
    """陳大文 pays 950.00 on an invoice of 1,000.00; the 50.00 written off against receivables."""
    return WriteItem(
        "M-short", 7, "write", "one_to_one",
        (MatchLine("bank", "B-short", DAY, 950_00, "HKD", "陳大文", "金港貿易有限公司 INV-S1"),
         MatchLine("ledger", "INV-S1", DAY, 1000_00, "HKD", "陳大文")),
        (JournalLine(DAY, "6900", 50_00, 0, "HKD", "M-short", "short_payment"),
         JournalLine(DAY, "1100", 0, 50_00, "HKD", "M-short", "short_payment")),
        memo="short by 50.00")


def supplier_bill() -> WriteItem:
    return WriteItem("M-bill", 8, "write", "one_to_one",
                     (MatchLine("bank", "B-bill", DAY, -500_00, "HKD", None, "CHQ 000123"),
                      MatchLine("ledger", "BILL-1", DAY, -500_00, "HKD", "金港貿易有限公司")))


@pytest.fixture
def fake():
    with FakeQbo(time_scale=FAST) as running:
        yield running


def test_payments_bill_payments_and_journal_entries_reach_quickbooks_in_its_shape(tmp_path, fake, qbo_env):
    items = [one_to_many(2), short_payment(), supplier_bill()]
    ids = book(fake, items)
    qbo_env(fake)
    adapter = open_target(fake.target, tmp_path)
    results = adapter.write(items)
    adapter.close()

    assert [r.state for r in results] == ["written"] * 3, [r.reason for r in results]
    payments = {p["PaymentRefNum"]: p for p in fake.live("Payment")}
    # one bank line paying two invoices: one Payment, a line linking each
    batch = payments["PAY 2"]
    assert batch["TotalAmt"] == Decimal("350.00") and batch["CustomerRef"] == {"value": "58"}
    assert [(line["Amount"], line["LinkedTxn"]) for line in batch["Line"]] == [
        (Decimal("100.00"), [{"TxnId": ids["INV-00002-a"], "TxnType": "Invoice"}]),
        (Decimal("250.00"), [{"TxnId": ids["INV-00002-b"], "TxnType": "Invoice"}])]
    assert batch["DepositToAccountRef"] == {"value": "35"}  # account 090, looked up by number
    assert batch["TxnDate"] == "2026-03-04" and batch["PrivateNote"] == "recon M2: bank line B2"
    # the short payment settles the invoice in full; the journal entry writes the 50.00 off,
    # naming the customer on the receivable line as QuickBooks requires
    short = next(p for p in payments.values() if p["Line"][0]["LinkedTxn"][0]["TxnId"] == ids["INV-S1"])
    assert short["TotalAmt"] == Decimal("1000.00") and short["PaymentRefNum"] == "金港貿易有限公司 INV-S1"[:21]
    (journal,) = fake.live("JournalEntry")
    assert journal["PrivateNote"] == "recon M-short: short by 50.00"
    assert [(line["Amount"], line["JournalEntryLineDetail"]["PostingType"],
             line["JournalEntryLineDetail"]["AccountRef"]["value"], line["JournalEntryLineDetail"].get("Entity"))
            for line in journal["Line"]] == [
        (Decimal("50.00"), "Debit", "91", None),
        (Decimal("50.00"), "Credit", "84", {"Type": "Customer", "EntityRef": {"value": "58"}})]
    # money out: a BillPayment from the bank account to the vendor
    (bill,) = fake.live("BillPayment")
    assert bill["VendorRef"] == {"value": "77"} and bill["PayType"] == "Check"
    assert bill["CheckPayment"] == {"BankAccountRef": {"value": "35"}}
    assert bill["Line"] == [{"Amount": Decimal("500.00"), "LinkedTxn": [{"TxnId": ids["BILL-1"], "TxnType": "Bill"}]}]
    assert {d["DocNumber"]: d["Balance"] for d in fake.documents.values()} == {
        "INV-00002-a": 0, "INV-00002-b": 0, "INV-S1": 0, "BILL-1": 0}
    # the ids and SyncToken come back with the results
    assert results[0].external_ids == {"payment:B2:Id": batch["Id"], "payment:B2:SyncToken": "0"}
    # every write carried its own requestid of at most 50 characters, and minorversion 75
    writes = [r for r in fake.received if r.method == "POST"]
    keys = [r.idempotency_key for r in writes]
    assert len(writes) == 4 and all(keys) and len(set(keys)) == 4 and max(map(len, keys)) <= 50
    reads = [r.path for r in fake.received if r.method == "GET"]
    assert reads and set(reads) == {"/query"}


def test_payments_and_journals_arrive_exactly_once_through_faults_and_token_expiry(tmp_path, qbo_env):
    items = month(200)
    with FakeQbo(time_scale=0.002, token_lifetime=120, error_rate=0.1, error_after_work=0.5,
                 throttle_every=25, seed=5) as fake:
        ids = book(fake, items)
        qbo_env(fake)
        adapter = open_target(fake.target, tmp_path)
        first = adapter.write(items)
        calls = fake.api_calls
        again = adapter.write(items)
        adapter.close()

    assert Counter(r.state for r in first) == {"written": 200}, [r.reason for r in first if not r.ok][:3]
    assert Counter(r.state for r in again) == {"already": 200} and fake.api_calls == calls
    # one payment a bank line: 140 one-to-one, 40 paying two invoices, 20 instalment pairs
    payments = fake.live("Payment")
    assert len(payments) == 140 + 40 + 2 * 20
    applied: Counter = Counter()
    for payment in payments:
        for line in payment["Line"]:
            applied[line["LinkedTxn"][0]["TxnId"]] += line["Amount"]
    due = {line.line_id: Decimal(line.amount_minor) / 100 for item in items for line in item.lines
           if line.side == "ledger"}
    assert applied == {ids[number]: amount for number, amount in due.items()}  # each paid once, in full
    assert all(d["Balance"] == 0 for d in fake.documents.values())
    journals = Counter(j["PrivateNote"] for j in fake.live("JournalEntry"))
    assert journals == Counter(f"recon M{n}" for n in range(200) if n % 10 < 7 and n % 3 == 0)
    # the faults happened: 500s after the work answered again from the requestid store
    assert fake.injected_500 >= 5 and fake.injected_429 >= 3 and fake.refreshes >= 2
    assert any(r.replayed for r in fake.received)
    assert fake.limit_exceeded == []


def test_a_reversal_of_a_payment_changed_in_quickbooks_is_a_conflict_not_overwritten(tmp_path, fake, qbo_env):
    items = [one_to_one(1, journal_minor=50_00), one_to_one(2), one_to_one(3)]
    book(fake, items)
    qbo_env(fake)
    adapter = open_target(fake.target, tmp_path)
    written = adapter.write(items)
    payment = {p["PaymentRefNum"]: p["Id"] for p in fake.live("Payment")}
    fake.change(payment["FPS INV-00001"])        # a bookkeeper edits M1's payment before the undo
    fake.change_after_read.add(payment["FPS INV-00003"])  # and M3's between recon's read and delete
    undo = [WriteItem(f"M{n}", 40 + n, "reverse", "one_to_one", items[n - 1].lines, memo="wrong customer")
            for n in (1, 2, 3)]
    results = adapter.reverse(undo)
    again = adapter.reverse(undo)
    assert [j["PrivateNote"] for j in fake.live("JournalEntry")] == ["recon M1"]
    # the bookkeeper settles both by deleting the payments in QuickBooks: the undo completes
    fake.delete(payment["FPS INV-00001"])
    fake.delete(payment["FPS INV-00003"])
    settled = adapter.reverse(undo)
    adapter.close()

    assert [r.state for r in written] == ["written"] * 3
    assert [r.state for r in results] == ["conflict", "written", "conflict"]
    assert not results[0].retryable
    assert results[0].reason == (
        f"Payment {payment['FPS INV-00001']} was changed in QuickBooks since recon wrote it (SyncToken 0 -> 1): "
        "not deleted; undo it in QuickBooks, then run recon writeback again")
    assert "Stale Object Error" in results[2].reason and "not overwritten" in results[2].reason
    assert [r.state for r in again] == ["conflict", "already", "conflict"]
    # until then M2 alone was undone (its payment deleted, the invoice open again); M1 and M3
    # untouched, M1's journal not reversed
    deletes = [r for r in fake.received if r.method == "POST" and r.status == 200 and r.path == "/payment"
               and r.idempotency_key and not r.replayed]
    assert len(deletes) == 3 + 1  # three payments, then one delete
    assert {d["DocNumber"]: d["Balance"] for d in fake.documents.values()}["INV-00002"] == Decimal("1000.00")
    assert [r.state for r in settled] == ["written", "already", "written"]
    assert fake.live("Payment") == []
    assert sorted(j["PrivateNote"] for j in fake.live("JournalEntry")) == [
        "recon M1", "reversal of recon M1: wrong customer"]


def test_an_undo_deletes_the_payment_and_posts_a_reversing_journal_entry(tmp_path, fake, qbo_env):
    item = short_payment()
    book(fake, [item])
    qbo_env(fake)
    adapter = open_target(fake.target, tmp_path)
    adapter.write([item])
    (result,) = adapter.reverse([WriteItem("M-short", 9, "reverse", "one_to_one", item.lines,
                                           memo="paid by 金港貿易有限公司")])
    adapter.close()
    assert result.state == "written"
    assert fake.live("Payment") == []
    (reversal,) = [j for j in fake.live("JournalEntry") if j["PrivateNote"].startswith("reversal")]
    assert reversal["PrivateNote"] == "reversal of recon M-short: paid by 金港貿易有限公司"
    assert [line["JournalEntryLineDetail"]["PostingType"] for line in reversal["Line"]] == ["Credit", "Debit"]
    reads = [r for r in fake.received if r.method == "GET" and r.path.startswith("/payment/")]
    assert len(reads) == 1  # the payment read for its SyncToken before the delete


def test_terminal_400s_fail_their_items_with_quickbooks_reason(tmp_path, fake, qbo_env):
    items = [one_to_one(1), one_to_one(2), one_to_one(3, invoice="INV-404")]
    book(fake, items[:2])
    paid_elsewhere = next(d for d in fake.documents.values() if d["DocNumber"] == "INV-00002")
    paid_elsewhere["Balance"] = Decimal("400.00")  # someone recorded 600.00 of it in QuickBooks
    qbo_env(fake)
    adapter = open_target(fake.target, tmp_path)
    results = adapter.write(items)
    retried = adapter.write(items)
    adapter.close()

    assert [r.state for r in results] == ["written", "failed", "failed"]
    assert not results[1].retryable and not results[2].retryable
    assert results[1].reason == (
        "payment:B2: QuickBooks answered 400: Business Validation Error: 1000.00 applied to Invoice INV-00002, "
        "whose open balance is 400.00 (code 6000)")
    assert results[2].reason == "QuickBooks holds no Invoice numbered INV-404"
    assert [r.state for r in retried] == ["already", "failed", "failed"]
    assert [p["PaymentRefNum"] for p in fake.live("Payment")] == ["FPS INV-00001"]


def test_settings_from_qbo_toml_the_environment_wins_and_the_rotated_token_is_kept_0600(tmp_path, fake, qbo_env,
                                                                                       monkeypatch):
    env = fake.environment()
    (tmp_path / "qbo.toml").write_text(
        "[qbo]\n" + "".join(f'{name.removeprefix("RECON_QBO_").lower()} = "{value}"\n'
                            for name, value in env.items() if name != "RECON_QBO_BANK_ACCOUNT")
        + 'bank_account = "1190"\n[qbo.accounts]\n"090" = "35"\n', encoding="utf-8")
    qbo_env(fake)
    for name in env:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RECON_QBO_BANK_ACCOUNT", "090")
    item = one_to_one(1)
    book(fake, [item])
    (result,) = open_target(fake.target, tmp_path).write([item])
    assert result.state == "written"
    assert fake.live("Payment")[0]["DepositToAccountRef"] == {"value": "35"}
    token_file = tmp_path / QBO_TOKEN_FILE
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert fake.refresh_token in token_file.read_text()

    monkeypatch.setenv("RECON_QBO_ACCOUNTS", "6800")
    with pytest.raises(InputError, match="NUMBER=ID pairs"):
        open_target(fake.target, tmp_path)
    monkeypatch.delenv("RECON_QBO_ACCOUNTS")
    (tmp_path / "qbo.toml").unlink()
    with pytest.raises(InputError) as missing:
        open_target(fake.target, tmp_path)
    for name in ("client_id", "client_secret", "realm_id"):
        assert f"{name}: Field required" in str(missing.value)
    assert "RECON_QBO_REALM_ID" in str(missing.value)


def test_an_unknown_account_fails_the_item_with_what_to_set(tmp_path, fake, qbo_env):
    on = date(2026, 3, 2)
    item = WriteItem("M9", 9, "write", "one_to_one",
                     (MatchLine("bank", "B9", on, 950_00, "HKD"), MatchLine("ledger", "INV-9", on, 1000_00, "HKD")),
                     (JournalLine(on, "6801", 50_00, 0, "HKD", "M9", "fee"),
                      JournalLine(on, "090", 0, 50_00, "HKD", "M9", "fee")))
    book(fake, [item])
    qbo_env(fake)
    (result,) = open_target(fake.target, tmp_path).write([item])
    assert result.state == "failed"
    assert "QuickBooks has no account numbered or named '6801'" in result.reason
    assert 'RECON_QBO_ACCOUNTS="6801=ID"' in result.reason
    assert not [r for r in fake.received if r.method == "POST"]  # nothing of the item sent
