"""``recon serve-events`` and ``recon poll``: processor events reach a workspace once each.

The webhook tests start the real server (``python -m engine.cli serve-events``) on 127.0.0.1 and
talk HTTP to it; a small fake of Stripe's balance-transaction list endpoint (a real HTTP server
on 127.0.0.1, newest first as Stripe lists, paged with ``starting_after`` / ``ending_before``, at
most two items a page) is what the server asks
for a paid payout's transactions and what ``recon poll --from URL`` reads.

The month: a bank credit ``STRIPE PAYOUT po_1HK001`` of 766.00 pays order SO-2001 (1000.00,
for 陳大文) less its refund CN-2001 (-200.00) and Stripe's 34.00 fee; a second credit pays
INV-1001 one to one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import engine.api as api
from engine import cli
from engine.workspace.store import Workspace
from feeds.stripe_events import sign

ROOT = Path(__file__).resolve().parents[3]
SECRET = "whsec_test_陳大文_secret"
DAY = 86400
T_0312 = 1773273600  # 2026-03-12 00:00 UTC

BANK = """id,date,amount,currency,description,counterparty
B1,2026-03-12,766.00,HKD,STRIPE PAYOUT po_1HK001,STRIPE PAYMENTS UK LTD
B2,2026-03-13,1250.00,HKD,FPS CR INV-1001,陳大文
"""
LEDGER = """id,date,amount,currency,description,counterparty,type
SO-2001,2026-03-09,1000.00,HKD,Order 2001,陳大文,order
CN-2001,2026-03-10,-200.00,HKD,Refund order 2001,陳大文,credit_note
INV-1001,2026-03-02,1250.00,HKD,Invoice 1001,陳大文,invoice
"""


def transactions(payout: str) -> list[dict]:
    """The balance transactions of a payout as Stripe lists them (``?payout=po_...``)."""
    return [
        {"id": "txn_1HK001", "object": "balance_transaction", "amount": 100000, "fee": 3400, "net": 96600,
         "currency": "hkd", "type": "charge", "reporting_category": "charge", "created": T_0312 - 3 * DAY,
         "available_on": T_0312 - DAY, "description": "Order 2001 陳大文",
         "source": {"id": "ch_1HK001", "object": "charge", "metadata": {"order_id": "2001"}}},
        {"id": "txn_1HK002", "object": "balance_transaction", "amount": -20000, "fee": 0, "net": -20000,
         "currency": "hkd", "type": "refund", "reporting_category": "refund", "created": T_0312 - 2 * DAY,
         "available_on": T_0312 - DAY, "description": "Refund order 2001", "source": "re_1HK002"},
        {"id": "txn_po", "object": "balance_transaction", "amount": -76600, "fee": 0, "net": -76600,
         "currency": "hkd", "type": "payout", "reporting_category": "payout", "created": T_0312,
         "available_on": T_0312, "source": payout},
    ]


def payout_event(event_id: str = "evt_1") -> dict:
    return {"id": event_id, "object": "event", "type": "payout.paid", "created": T_0312,
            "data": {"object": {"id": "po_1HK001", "object": "payout", "amount": 76600, "currency": "hkd",
                                "arrival_date": T_0312, "created": T_0312 - DAY, "status": "paid",
                                "balance_transaction": "txn_po", "description": "STRIPE PAYOUT"}}}


class FakeStripe:
    """A list endpoint ``/v1/balance_transactions`` (filter ``payout``, newest first, cursors
    ``starting_after`` and ``ending_before``, two items a page) on 127.0.0.1, recording every
    query it answered."""

    def __init__(self, items: list[dict], path: str = "/v1/balance_transactions"):
        self.items = items
        self.queries: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.queries.append(query)
                if parts.path != path or self.headers.get("Authorization") != "Bearer sk_test_1":
                    self.send_response(404 if parts.path != path else 401)
                    self.end_headers()
                    return
                # items are kept oldest first; Stripe lists them newest first
                rows = [i for i in reversed(fake.items)
                        if "payout" not in query or i.get("_payout") == query["payout"]]
                size = min(int(query.get("limit", 10)), 2)
                ids = [r["id"] for r in rows]
                if "ending_before" in query:  # the page just newer than the cursor
                    at = ids.index(query["ending_before"])
                    page, more = rows[max(0, at - size):at], at > size
                else:
                    if "starting_after" in query:
                        rows = rows[ids.index(query["starting_after"]) + 1:]
                    page, more = rows[:size], len(rows) > size
                body = json.dumps({"object": "list", "data": [{k: v for k, v in r.items() if k != "_payout"}
                                                             for r in page],
                                   "has_more": more}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_stripe():
    fake = FakeStripe([{**t, "_payout": "po_1HK001"} for t in transactions("po_1HK001")])
    yield fake
    fake.close()


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "bank.csv").write_text(BANK, encoding="utf-8")
    (tmp_path / "ledger.csv").write_text(LEDGER, encoding="utf-8")
    path = tmp_path / "books.duckdb"
    api.ingest(path, bank=tmp_path / "bank.csv", ledger=tmp_path / "ledger.csv")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(workspace, fake_stripe):
    """``recon serve-events`` on 127.0.0.1 (its --api the fake), until the test ends."""
    port = free_port()
    env = {**os.environ, "RECON_WEBHOOK_SECRET": SECRET, "STRIPE_API_KEY": "sk_test_1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve-events", "--workspace", str(workspace), "--port", str(port),
         "--api", fake_stripe.url],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"server did not start: {process.communicate()[1]}")
        time.sleep(0.2)
    yield base
    process.terminate()
    process.communicate(timeout=30)


def deliver(base: str, event: dict, *, secret: str = SECRET, at: int | None = None, body: bytes | None = None):
    payload = body if body is not None else json.dumps(event, ensure_ascii=False).encode("utf-8")
    header = sign(payload, secret, int(time.time()) if at is None else at)
    return httpx.post(f"{base}/webhooks/stripe", content=payload,
                      headers={"Stripe-Signature": header, "Content-Type": "application/json"}, timeout=30)


def wait_processed(base: str, event_id: str) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = httpx.get(f"{base}/events/{event_id}", timeout=30).json()
        if state["state"] != "received" and (state["state"] == "failed" or state["run_id"]):
            return state
        time.sleep(0.3)
    raise AssertionError(f"event {event_id} not applied: {state}")


def table(workspace: Path, sql: str) -> list[tuple]:
    with Workspace(workspace, wait=30) as ws:
        return ws.con.execute(sql).fetchall()


def test_signed_event_is_stored_once_ingested_and_matched(server, workspace, fake_stripe):
    event = payout_event()
    response = deliver(server, event)
    assert (response.status_code, response.json()) == (200, {"received": "evt_1"})
    state = wait_processed(server, "evt_1")
    # the payout line from the event, its charge and refund listed from the API (its own payout
    # transaction left out: the payout object is that line)
    assert (state["state"], state["lines_added"]) == ("processed", 3), state
    assert {"payout": "po_1HK001", "limit": "100"}.items() <= fake_stripe.queries[0].items()
    lines = table(workspace, "SELECT line_id, payout_id, net_minor FROM payout_lines ORDER BY line_id")
    assert lines == [("po_1HK001", "po_1HK001", -76600), ("txn_1HK001", "po_1HK001", 96600),
                     ("txn_1HK002", "po_1HK001", -20000)]
    proposals = table(workspace, f"SELECT match_type, bank_ids, ledger_ids, difference FROM proposals "
                                 f"WHERE run_id = '{state['run_id']}' AND match_type = 'payout'")
    assert [(p[0], p[1], p[2]) for p in proposals] == [("payout", "B1", "CN-2001;SO-2001")]
    assert str(proposals[0][3]) in ("-34.00", "-34.0", "-3400")  # Stripe's fee, to the cent

    # the same delivery again (a retry, or a replay): acknowledged, nothing applied twice
    again = deliver(server, event)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and "already received" in again.json()["note"]
    assert table(workspace, "SELECT count(*) FROM events") == [(1,)]
    assert table(workspace, "SELECT count(*) FROM payout_lines") == [(3,)]
    stored = table(workspace, "SELECT payload FROM events WHERE event_id = 'evt_1'")[0][0]
    assert json.loads(stored) == event


def test_bad_or_stale_signature_is_refused_and_nothing_stored(server, workspace):
    event = payout_event("evt_bad")
    payload = json.dumps(event).encode()
    now = int(time.time())
    forged = payload.replace(b"76600", b"96600")
    responses = {
        "wrong secret": deliver(server, event, secret="whsec_other"),
        "tampered body": httpx.post(f"{server}/webhooks/stripe", content=forged,
                                    headers={"Stripe-Signature": sign(payload, SECRET, now)}),
        "stale": deliver(server, event, at=now - 301),
        "no signature": httpx.post(f"{server}/webhooks/stripe", content=payload),
        "not an event": deliver(server, {}, body=b'{"object": "charge", "id": "ch_1"}'),
    }
    assert {case: (r.status_code, r.json()["error"].split(":")[0]) for case, r in responses.items()} == {
        "wrong secret": (400, "signature mismatch"),
        "tampered body": (400, "signature mismatch"),
        "stale": (400, "signature stale"),
        "no signature": (400, "signature missing"),
        "not an event": (400, "(webhook)"),
    }
    assert "beyond the tolerance of 300 s" in responses["stale"].json()["error"]
    assert httpx.get(f"{server}/events/evt_bad").status_code == 404
    assert table(workspace, "SELECT count(*) FROM events") == [(0,)]


def recon(capsys, monkeypatch, *args) -> tuple[int, str]:
    """``recon ARGS`` in this process (as ``python -m engine.cli`` runs it): (status, stdout)."""
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_1")
    capsys.readouterr()
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().out


def test_poll_a_drop_folder_twice_ingests_each_file_once(tmp_path, capsys, monkeypatch):
    drop = tmp_path / "drop"
    (drop / "ledger").mkdir(parents=True)
    (drop / "bank.csv").write_text(BANK, encoding="utf-8")  # recognised: a canonical CSV reads as bank
    (drop / "ledger" / "open_items.csv").write_text(LEDGER, encoding="utf-8")
    report = (ROOT / "tests/engine/data/stripe_payout.csv").read_text(encoding="utf-8")
    (drop / "stripe_report.csv").write_text(report, encoding="utf-8")
    (drop / "upload.part").write_text("half written", encoding="utf-8")
    workspace = tmp_path / "books.duckdb"

    status, out = recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", drop, "--json")
    assert status == 0
    (done,) = json.loads(out)
    assert sorted((Path(f["name"]).name, f["side"], f["state"], f["added"]) for f in done["files"]) == [
        ("bank.csv", "bank", "ingested", 2),
        ("open_items.csv", "ledger", "ingested", 3),
        ("stripe_report.csv", "processor", "ingested", 2),
    ]
    assert done["run_id"]
    matched = table(workspace, f"SELECT bank_ids, ledger_ids FROM proposals WHERE run_id = '{done['run_id']}' "
                               "ORDER BY bank_ids")
    assert matched == [("B1", "CN-2001;SO-2001"), ("B2", "INV-1001")]

    # again, plus a copy of a file already read under another name: nothing read, nothing matched
    (drop / "bank_copy.csv").write_text(BANK, encoding="utf-8")
    status, out = recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", drop)
    assert status == 0
    assert "already read: 4; lines added: 0; nothing new to match" in out
    assert table(workspace, "SELECT count(*) FROM bank_lines") == [(2,)]
    assert table(workspace, "SELECT count(DISTINCT run_id) FROM proposals") == [(1,)]


def test_poll_an_api_list_in_pages_resumes_from_its_cursor(tmp_path, workspace, capsys, monkeypatch):
    items = [{**t, "_payout": "po_2"} for t in transactions("po_2")]
    for n in range(3, 6):  # three more charges of the payout: five listed in all, two a page
        items.insert(-1, {**items[0], "id": f"txn_2_{n}", "amount": 1000 * n, "fee": 0, "net": 1000 * n,
                          "source": f"ch_{n}"})
    fake = FakeStripe(items)
    try:
        url = fake.url + "?payout=po_2"
        status, out = recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", url, "--json")
        assert status == 0
        (done,) = json.loads(out)
        # 6 items over 3 pages; the payout's own transaction is left out: 5 lines
        assert (done["items"], done["lines_added"], done["cursor"]) == (6, 5, "txn_po")
        # newest first, walked back to the oldest; the cursor is the newest item
        assert [q.get("starting_after") for q in fake.queries] == [None, "txn_2_5", "txn_2_3"]
        lines = table(workspace, "SELECT count(*), count(DISTINCT payout_id), min(payout_id) FROM payout_lines")
        assert lines == [(5, 1, "po_2")]

        # nothing new: one request from the stored cursor, nothing added
        (again,) = json.loads(recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", url, "--json")[1])
        assert (again["items"], again["lines_added"]) == (0, 0)
        assert fake.queries[-1]["ending_before"] == "txn_po"

        # a new item appears after the cursor: only it is read
        fake.items.append({**items[0], "id": "txn_2_9", "amount": 900, "net": 900, "fee": 0})
        (late,) = json.loads(recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", url, "--json")[1])
        assert (late["items"], late["lines_added"], late["cursor"]) == (1, 1, "txn_2_9")
        assert fake.queries[-1]["ending_before"] == "txn_po"
        assert table(workspace, "SELECT count(*) FROM payout_lines") == [(6,)]

        # three more, more than a page: read a page at a time, newer than the cursor each time
        for n in (10, 11, 12):
            fake.items.append({**items[0], "id": f"txn_2_{n}", "amount": 100 * n, "net": 100 * n, "fee": 0})
        asked = len(fake.queries)
        (more,) = json.loads(recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", url, "--json")[1])
        assert (more["items"], more["lines_added"], more["cursor"]) == (3, 3, "txn_2_12")
        assert [q.get("ending_before") for q in fake.queries[asked:]] == ["txn_2_9", "txn_2_11"]
        assert table(workspace, "SELECT count(*) FROM payout_lines") == [(9,)]
    finally:
        fake.close()


def test_poll_the_events_list_applies_each_event_once(workspace, capsys, monkeypatch):
    """Events missed by the webhook are listed by /v1/events: stored and applied once."""
    refund_only = {"id": "evt_2", "object": "event", "type": "charge.refunded", "created": T_0312,
                   "data": {"object": {"id": "ch_9", "object": "charge", "balance_transaction": "txn_9"}}}
    fake = FakeStripe([payout_event("evt_1"), refund_only], path="/v1/events")
    try:
        status, out = recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", fake.url, "--json")
        assert status == 0
        (done,) = json.loads(out)
        assert (done["items"], done["lines_added"]) == (2, 1)
        assert done["events"]["evt_1"]["state"] == "processed"
        assert "its balance transaction txn_9 is not expanded" in done["events"]["evt_2"]["note"]
        assert table(workspace, "SELECT event_id, source, run_id IS NOT NULL FROM events ORDER BY event_id") == [
            ("evt_1", fake.url, True), ("evt_2", fake.url, True)]
        # listed again from the start (a new cursor source): stored already, nothing applied twice
        fake.items.append(payout_event("evt_1"))
        status, out = recon(capsys, monkeypatch, "poll", "--workspace", workspace, "--from", fake.url + "?limit=5",
                            "--json")
        (again,) = json.loads(out)
        assert (again["lines_added"], again["skipped"]) == (0, 3)
        assert table(workspace, "SELECT count(*) FROM payout_lines") == [(1,)]
    finally:
        fake.close()
