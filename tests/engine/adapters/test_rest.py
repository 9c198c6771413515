"""The Xero write-back adapter against the fake Xero: what reaches the platform, idempotency,
reversal, terminal and transient failures, OAuth token rotation, settings."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from datetime import date
from decimal import Decimal

import pytest

from engine.adapters import open_target
from engine.adapters.base import JournalLine, MatchLine, WriteItem
from engine.adapters.outbox import OUTBOX_FILE
from engine.adapters.rest import TOKEN_FILE
from models.errors import InputError, TerminalAdapterError
from tests.engine.adapters.fake_xero import FakeXero
from tests.engine.adapters.rest_items import invoices_due, one_to_many, one_to_one

FAST = 0.001  # platform seconds -> wall seconds: a platform minute lasts 60 ms


@pytest.fixture
def xero_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("RECON_XERO_"):
            monkeypatch.delenv(name)

    def apply(fake: FakeXero, **overrides: str) -> None:
        for name, value in fake.environment(**overrides).items():
            monkeypatch.setenv(name, value)

    return apply


@pytest.fixture
def fake():
    with FakeXero(time_scale=FAST, token_lifetime=1800) as running:
        yield running


def test_payments_batch_payment_and_journal_reach_xero_in_its_shape(tmp_path, fake, xero_env):
    xero_env(fake)
    adapter = open_target(fake.target, tmp_path)
    results = adapter.write([
        one_to_one(1, amount_minor=1234_50, reference="金港貿易有限公司 INV-00001"),
        one_to_many(2),
        one_to_one(3, amount_minor=1000_00, journal_minor=50_00),
    ])
    adapter.close()

    assert [r.state for r in results] == ["written"] * 3
    by_invoice = {p["Invoice"]["InvoiceNumber"]: p for p in fake.live_payments()}
    assert by_invoice["INV-00001"]["Amount"] == Decimal("1234.50")
    assert by_invoice["INV-00001"]["Reference"] == "金港貿易有限公司 INV-00001"  # byte-exact
    assert by_invoice["INV-00001"]["Account"] == {"Code": "090"}
    assert by_invoice["INV-00001"]["Date"] == "2026-03-03"
    # the bank line paying two invoices is one batch payment of two payments
    (batch,) = fake.batch_payments.values()
    assert [(p["Invoice"]["InvoiceNumber"], p["Amount"]) for p in batch["Payments"]] == [
        ("INV-00002-a", Decimal("100.00")), ("INV-00002-b", Decimal("250.00"))]
    assert batch["Reference"] == "PAY 2"
    # the bank charge: the invoice is settled in full, the charge is a manual journal
    assert by_invoice["INV-00003"]["Amount"] == Decimal("1000.00")
    (journal,) = fake.journals.values()
    assert journal["Narration"] == "recon M3"
    assert [(line["AccountCode"], line["LineAmount"]) for line in journal["JournalLines"]] == [
        ("6800", Decimal("50.00")), ("090", Decimal("-50.00"))]
    # the ids come back with the results
    assert results[0].external_ids == {"payment:B1>INV-00001:PaymentID": by_invoice["INV-00001"]["PaymentID"]}
    # every call carried an idempotency key, each its own
    keys = [r.idempotency_key for r in fake.received]
    assert all(keys) and len(set(keys)) == len(keys) == 3


def test_a_second_write_of_the_same_items_sends_nothing(tmp_path, fake, xero_env):
    xero_env(fake)
    items = [one_to_one(1), one_to_many(2)]
    adapter = open_target(fake.target, tmp_path)
    first = adapter.write(items)
    calls = fake.api_calls
    second = adapter.write(items)
    adapter.close()
    again = open_target(fake.target, tmp_path).write(items)  # a new process reads the outbox

    assert [r.state for r in first] == ["written", "written"]
    assert [r.state for r in second] == [r.state for r in again] == ["already", "already"]
    assert second[0].external_ids == first[0].external_ids
    assert fake.api_calls == calls
    assert len(fake.live_payments()) == 3


def test_an_undo_deletes_the_payments_and_posts_a_reversing_journal_keeping_the_record(tmp_path, fake, xero_env):
    xero_env(fake)
    adapter = open_target(fake.target, tmp_path)
    written = one_to_one(3, amount_minor=1000_00, journal_minor=50_00)
    batch = one_to_many(4)
    adapter.write([written, batch])
    undo = [WriteItem("M3", 40, "reverse", "one_to_one", written.lines, memo="wrong customer"),
            WriteItem("M4", 41, "reverse", "one_to_many", batch.lines, memo="paid twice")]
    results = adapter.reverse(undo)
    again = adapter.reverse(undo)
    never = adapter.reverse([WriteItem("M9", 42, "reverse", "one_to_one", written.lines)])
    adapter.close()

    assert [r.state for r in results] == ["written", "written"]
    assert [r.state for r in again] == ["already", "already"]
    assert never[0].state == "already" and "nothing of match M9 was written" in never[0].reason
    assert fake.live_payments() == []  # deleted: the invoices are open again
    assert {p["Status"] for p in fake.payments.values()} == {"DELETED"}
    assert {b["Status"] for b in fake.batch_payments.values()} == {"DELETED"}
    journals = sorted(fake.journals.values(), key=lambda j: j["Narration"])
    assert [j["Narration"] for j in journals] == ["recon M3", "reversal of recon M3: wrong customer"]
    assert [line["LineAmount"] for line in journals[1]["JournalLines"]] == [Decimal("-50.00"), Decimal("50.00")]
    # the outbox only grew: the write's answers are still there beside the reversal's
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as con:
        states = con.execute("""SELECT e.action, a.state, count(*) FROM elements e JOIN answers a
                                USING (request_id, position) GROUP BY 1, 2 ORDER BY 1""").fetchall()
    assert states == [("reverse", "done", 3), ("write", "done", 3)]


def test_a_match_written_undone_and_written_again_is_undone_from_its_second_write_only(tmp_path, fake, xero_env):
    xero_env(fake)
    adapter = open_target(fake.target, tmp_path)
    first = one_to_one(3, amount_minor=1000_00, journal_minor=50_00)
    adapter.write([first])
    adapter.reverse([WriteItem("M3", 40, "reverse", "one_to_one", first.lines, memo="first undo")])
    again = WriteItem("M3", 50, "write", "one_to_one", first.lines, first.journal)  # accepted again
    assert [r.state for r in adapter.write([again])] == ["written"]
    second_undo = adapter.reverse([WriteItem("M3", 60, "reverse", "one_to_one", first.lines, memo="second undo")])
    adapter.close()

    assert [r.state for r in second_undo] == ["written"]
    assert fake.live_payments() == []
    reversals = [j for j in fake.journals.values() if j["Narration"].startswith("reversal")]
    # one reversing journal per undo: the second undoes the second write, not the first again
    assert sorted(j["Narration"] for j in reversals) == [
        "reversal of recon M3: first undo", "reversal of recon M3: second undo"]
    deleted = [p for p in fake.payments.values() if p["Status"] == "DELETED"]
    assert len(deleted) == 2 and len(fake.payments) == 2


def test_a_write_called_from_async_code_goes_through(tmp_path, fake, xero_env):
    # an event loop already runs in the caller's thread (a web handler, Playwright's sync API):
    # the adapter runs its own loop on a thread of its own, with the outbox opened in this one
    xero_env(fake)
    adapter = open_target(fake.target, tmp_path)

    async def caller():
        return adapter.write([one_to_one(5)])

    results = asyncio.run(caller())
    adapter.close()
    assert [r.state for r in results] == ["written"]
    assert len(fake.live_payments()) == 1


def test_a_refused_payment_fails_alone_with_its_reason_and_goes_through_once_fixed(tmp_path, xero_env):
    items = [one_to_one(1), one_to_one(2, invoice="INV-404"), one_to_one(3)]
    due = invoices_due(items)
    del due["INV-404"]
    with FakeXero(time_scale=FAST, invoices=due) as fake:
        xero_env(fake)
        adapter = open_target(fake.target, tmp_path)
        results = adapter.write(items)
        assert fake.api_calls == 1  # the three payments went in one request
        assert [r.state for r in results] == ["written", "failed", "written"]
        assert not results[1].retryable
        assert "Invoice number INV-404 could not be found" in results[1].reason
        assert sorted(p["Invoice"]["InvoiceNumber"] for p in fake.live_payments()) == ["INV-00001", "INV-00003"]

        fake.invoices["INV-404"] = Decimal("1000.00")  # someone fixes the books
        retried = adapter.write(items)
        adapter.close()
    assert [r.state for r in retried] == ["already", "written", "already"]
    assert sorted(p["Invoice"]["InvoiceNumber"] for p in fake.live_payments()) == ["INV-00001", "INV-00003", "INV-404"]


@pytest.mark.parametrize(("setup", "status"), [
    ({"token_lifetime": 0}, "401"),                       # every token is refused, even a new one
    ({"tenant_id": "another-organisation"}, "403"),       # the tenant header names another org
])
def test_terminal_answers_fail_the_items_without_retrying(tmp_path, xero_env, setup, status):
    with FakeXero(time_scale=FAST, **{k: v for k, v in setup.items() if k != "tenant_id"}) as fake:
        xero_env(fake, **({"RECON_XERO_TENANT_ID": setup["tenant_id"]} if "tenant_id" in setup else {}))
        adapter = open_target(fake.target, tmp_path)
        results = adapter.write([one_to_one(1), one_to_one(2)])
        adapter.close()
    assert {r.state for r in results} == {"failed"}
    assert not any(r.retryable for r in results)
    assert all(f"Xero answered {status}" in r.reason for r in results)
    assert fake.api_calls <= 2  # one call, plus one after a fresh token for the 401
    assert fake.payments == {}


def test_work_done_but_never_answered_is_sent_again_and_written_once(tmp_path, xero_env):
    """Every answer is lost (500 after the platform did the work): the items stay pending;
    the next write-back sends the same requests with the same keys and Xero answers from its
    idempotency store instead of paying twice."""
    items = [one_to_one(n) for n in range(6)]
    with FakeXero(time_scale=FAST, error_rate=1.0, error_after_work=1.0) as fake:
        xero_env(fake, RECON_XERO_MAX_ATTEMPTS="1", RECON_XERO_BATCH_SIZE="2")
        adapter = open_target(fake.target, tmp_path)
        first = adapter.write(items)
        assert {r.state for r in first} == {"failed"} and all(r.retryable for r in first)
        assert "the next write-back sends them again with the same idempotency key" in first[0].reason
        assert len(fake.live_payments()) == 6  # done on the platform, unheard of by recon

        fake.error_rate = 0.0
        second = adapter.write(items)
        adapter.close()
    assert [r.state for r in second] == ["written"] * 6
    assert sorted(r.replayed for r in fake.received) == [False] * 3 + [True] * 3
    assert sorted(p["Invoice"]["InvoiceNumber"] for p in fake.live_payments()) == [f"INV-{n:05d}" for n in range(6)]


def test_429_retry_after_is_waited_for(tmp_path, xero_env):
    with FakeXero(time_scale=0.05, throttle_every=2, retry_after=2) as fake:
        xero_env(fake, RECON_XERO_BATCH_SIZE="1", RECON_XERO_CONCURRENT="1")
        adapter = open_target(fake.target, tmp_path)
        results = adapter.write([one_to_one(1), one_to_one(2)])
        adapter.close()
    assert [r.state for r in results] == ["written", "written"]
    statuses = [r.status for r in fake.received]
    assert statuses == [200, 429, 200]
    assert fake.received[2].at - fake.received[1].at >= 2 * 0.05  # Retry-After: 2 platform seconds


def test_the_rotated_refresh_token_is_kept_0600_used_next_time_and_never_logged(tmp_path, fake, xero_env, caplog,
                                                                                 capsys):
    xero_env(fake)
    caplog.set_level(logging.DEBUG)
    first = fake.issued_refresh_tokens[0]
    open_target(fake.target, tmp_path).write([one_to_one(1)])
    token_file = tmp_path / TOKEN_FILE
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(token_file.read_text())["refresh_token"] == fake.refresh_token != first

    fake.access_tokens.clear()  # the platform forgets the access token: the next run must refresh
    results = open_target(fake.target, tmp_path).write([one_to_one(2)])  # env still says `first`
    assert results[0].state == "written"
    assert fake.refused_refresh_tokens == []  # the stored, rotated token was used
    assert fake.refreshes == 2
    output = caplog.text + "".join(capsys.readouterr())
    assert "refreshed" in caplog.text
    for token in fake.issued_refresh_tokens + fake.issued_access_tokens + [fake.client_secret]:
        assert token not in output


def test_a_refused_refresh_token_stops_the_write_back_with_what_to_do(tmp_path, fake, xero_env):
    xero_env(fake, RECON_XERO_REFRESH_TOKEN="rt-retired-long-ago")
    adapter = open_target(fake.target, tmp_path)
    with pytest.raises(TerminalAdapterError) as refused:
        adapter.write([one_to_one(1)])
    message = str(refused.value)
    assert "invalid_grant" in message and "authorise the app again" in message
    assert "rt-retired-long-ago" not in message
    assert fake.payments == {}


def test_settings_come_from_the_config_file_and_the_environment_wins(tmp_path, fake, xero_env, monkeypatch):
    env = fake.environment()
    (tmp_path / "xero.toml").write_text(
        "[xero]\n" + "".join(f'{name.removeprefix("RECON_XERO_").lower()} = "{value}"\n'
                             for name, value in env.items() if name != "RECON_XERO_BANK_ACCOUNT")
        + 'bank_account = "091"\n', encoding="utf-8")
    xero_env(fake)
    for name in env:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RECON_XERO_BANK_ACCOUNT", "092")
    adapter = open_target(fake.target, tmp_path)
    adapter.write([one_to_one(1)])
    assert fake.live_payments()[0]["Account"] == {"Code": "092"}

    monkeypatch.delenv("RECON_XERO_BANK_ACCOUNT")
    (tmp_path / "xero.toml").unlink()
    with pytest.raises(InputError) as missing:
        open_target(fake.target, tmp_path)
    for name in ("client_id", "client_secret", "tenant_id", "bank_account"):
        assert f"{name}: Field required" in str(missing.value)


def test_a_foreign_currency_journal_is_refused_when_the_base_currency_is_known(tmp_path, fake, xero_env):
    xero_env(fake, RECON_XERO_BASE_CURRENCY="HKD")
    on = date(2026, 3, 2)
    item = WriteItem("M7", 7, "write", "fx", (
        MatchLine("bank", "B7", on, 7800_00, "USD"), MatchLine("ledger", "INV-7", on, 7850_00, "USD")),
        (JournalLine(on, "7100", 50_00, 0, "USD", "M7", "fx"), JournalLine(on, "090", 0, 50_00, "USD", "M7", "fx")))
    (result,) = open_target(fake.target, tmp_path).write([item])
    assert result.state == "failed" and not result.retryable
    assert "base currency (HKD)" in result.reason
    assert fake.api_calls == 0
