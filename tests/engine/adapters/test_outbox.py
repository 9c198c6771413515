"""The durable outbox: recorded before sending, answered after, resumable, append-only."""

from __future__ import annotations

import sqlite3

from engine.adapters.outbox import Outbox, OutboxElement, idempotency_key


def _element(item_key: str, part: str) -> OutboxElement:
    return OutboxElement(item_key, item_key.split(":")[0], "write", part, '{"Amount": 1.00}')


def _record_two(outbox: Outbox):
    return outbox.record([
        ("payments", "PUT", "/Payments", {"summarizeErrors": "false"}, '{"Payments": []}',
         [(_element("M1:1", "payment:B1>INV-1"), 0), (_element("M2:2", "payment:B2>INV-2"), 0)]),
        ("manual_journals", "PUT", "/ManualJournals", {}, '{"ManualJournals": []}',
         [(_element("M1:1", "journal:HKD"), 0)]),
    ])


def test_a_recorded_request_is_pending_until_answered_and_survives_a_new_connection(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite", "xero+https://api.xero.com#t1")
    payments, journal = _record_two(outbox)
    outbox.close()  # the process dies here: nothing was answered

    reopened = Outbox(tmp_path / "o.sqlite", "xero+https://api.xero.com#t1")
    pending = reopened.pending()
    assert [p.idempotency_key for p in pending] == [payments.idempotency_key, journal.idempotency_key]
    assert pending[0].body == '{"Payments": []}' and pending[0].params == {"summarizeErrors": "false"}
    assert [e.part for e in pending[0].elements] == ["payment:B1>INV-1", "payment:B2>INV-2"]

    reopened.answer(payments.request_id, 200, [("done", {"PaymentID": "p-1"}, ""), ("failed", {}, "Invoice gone")])
    assert [p.request_id for p in reopened.pending()] == [journal.request_id]
    states = reopened.states(["M1:1", "M2:2"])
    assert states["M1:1"]["payment:B1>INV-1"].state == "done"
    assert states["M1:1"]["payment:B1>INV-1"].external_ids == {"PaymentID": "p-1"}
    assert states["M1:1"]["journal:HKD"].state == "pending"
    assert (states["M2:2"]["payment:B2>INV-2"].state, states["M2:2"]["payment:B2>INV-2"].reason) == (
        "failed", "Invoice gone")
    assert reopened.written_parts("M1") == [("payment:B1>INV-1", '{"Amount": 1.00}', {"PaymentID": "p-1"})]


def test_an_answer_is_recorded_once_and_other_targets_are_kept_apart(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite", "xero+https://api.xero.com#t1")
    payments, _ = _record_two(outbox)
    outbox.answer(payments.request_id, 200, [("done", {"PaymentID": "p-1"}, ""), ("done", {"PaymentID": "p-2"}, "")])
    outbox.answer(payments.request_id, 200, [("failed", {}, "late duplicate"), ("failed", {}, "late duplicate")])
    assert outbox.states(["M1:1"])["M1:1"]["payment:B1>INV-1"].state == "done"

    other = Outbox(tmp_path / "o.sqlite", "xero+https://api.xero.com#t2")
    assert other.pending() == [] and other.states(["M1:1"]) == {}


def test_a_new_attempt_of_a_failed_element_gets_its_own_key_and_nothing_is_overwritten(tmp_path):
    outbox = Outbox(tmp_path / "o.sqlite", "t")
    (first,) = outbox.record([("payments", "PUT", "/Payments", {}, "{}", [(_element("M1:1", "payment:B1>INV-1"), 0)])])
    outbox.answer(first.request_id, 400, [("failed", {}, "Xero answered 400: Invoice not found")])
    (second,) = outbox.record([("payments", "PUT", "/Payments", {}, "{}", [(_element("M1:1", "payment:B1>INV-1"), 1)])])
    outbox.answer(second.request_id, 200, [("done", {"PaymentID": "p-9"}, "")])

    assert first.idempotency_key != second.idempotency_key
    assert second.idempotency_key == idempotency_key([("M1:1", "payment:B1>INV-1", 1)])
    assert outbox.states(["M1:1"])["M1:1"]["payment:B1>INV-1"].state == "done"
    with sqlite3.connect(tmp_path / "o.sqlite") as con:
        assert con.execute("SELECT state FROM answers ORDER BY request_id").fetchall() == [("failed",), ("done",)]
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_idempotency_key_fits_a_header_whatever_the_ids():
    key = idempotency_key([("陳大文-金港貿易有限公司:7", "payment:B 1>INV/1", 0)])
    assert key.isascii() and len(key) <= 128 and key.startswith("recon-")
    assert key == idempotency_key([("陳大文-金港貿易有限公司:7", "payment:B 1>INV/1", 0)])
