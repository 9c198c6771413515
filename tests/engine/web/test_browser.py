"""The review page in a real browser (headless Chromium from the system packages, driven by
Playwright): a reviewer filters the queue, decides with the keyboard, bulk-accepts, undoes,
matches by hand, and the decisions are in the workspace; a ``<script>`` description is shown as
text; 100 proposals cleared with the keyboard at 100k proposals, each action timed on the
server; screenshots of the queue, a proposal and the report."""

from __future__ import annotations

import getpass
import os
import statistics
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from benchmarks.web_review import make_review_workspace
from engine import api
from engine.web.app import create_app
from tests.engine.web.conftest import HOSTILE, HOSTILE_BANK, serving

ME = getpass.getuser()
#: a review proposal of the sample month: B000000141 pays INV-2026-00067 short by 151.70
SHORT = ("B000000141", "INV-2026-00067")


def _match_of(ws: Path, bank_id: str) -> str:
    frame = api.review(ws, state=None)
    return frame.filter(frame["bank_ids"].str.contains(bank_id, literal=True))["match_id"][0]


def _decisions(ws: Path, match_id: str) -> list[tuple]:
    with duckdb.connect(str(ws), read_only=True) as con:
        return con.execute('SELECT action, "by", after_state, comment FROM decisions WHERE match_id = ? ORDER BY seq',
                           [match_id]).fetchall()


def _server_ms(response) -> float:
    return float(response.headers["server-timing"].split("dur=")[1])


def test_filter_then_accept_and_undo_with_the_keyboard(sample_ws, browser_page):
    page = browser_page
    match_id = _match_of(sample_ws, SHORT[0])
    proposed = api.review(sample_ws).height
    with serving(create_app(sample_ws, idle=0.2)) as url:
        page.goto(url + "/")
        assert page.locator('[data-count="proposed"]').inner_text() == f"{proposed:,}"
        # "/" jumps to the search box; the filter narrows the queue to the one proposal
        page.keyboard.press("/")
        page.keyboard.type(SHORT[1])
        page.keyboard.press("Enter")
        page.wait_for_url("**q=INV-2026-00067**")
        rows = page.locator("#queue tbody tr")
        assert rows.count() == 1 and rows.first.get_attribute("data-match-id") == match_id
        assert "HKD -151.70" in rows.first.inner_text()
        page.keyboard.press("j")  # one row: stays on it
        with page.expect_response(f"**/api/matches/{match_id}/accept") as accepted:
            page.keyboard.press("a")
        assert accepted.value.ok
        assert rows.first.locator(".state .badge").inner_text() == "accepted"
        assert page.locator('[data-count="accepted"]').inner_text() == "1"
        page.fill("#comment", "wrong customer: 陳大文 paid this")
        page.locator("#queue").click(position={"x": 5, "y": 40})  # back to the table, off the box
        with page.expect_response(f"**/api/matches/{match_id}/unmatch") as undone:
            page.keyboard.press("u")
        assert undone.value.ok
        assert rows.first.locator(".state .badge").inner_text() == "reversed"
        assert page.url.endswith("q=INV-2026-00067&sort=priority") or "q=INV-2026-00067" in page.url
    assert _decisions(sample_ws, match_id) == [
        ("accept", ME, "accepted", None),
        ("unmatch", ME, "reversed", "wrong customer: 陳大文 paid this"),
    ]


def test_bulk_accept_of_a_filtered_set(sample_ws, browser_page):
    page = browser_page
    payouts = api.review(sample_ws, status="auto", match_type="payout")
    assert payouts.height > 5
    with serving(create_app(sample_ws, idle=0.2)) as url:
        page.goto(url + "/?status=auto&type=payout")
        assert page.locator("#total").get_attribute("data-total") == str(payouts.height)
        page.fill("#comment", "October payouts")
        with page.expect_response("**/api/bulk-accept") as bulk:
            page.click("#bulk-accept button")  # the confirm dialog is accepted
        assert bulk.value.ok
        page.wait_for_selector("#empty")  # reloaded: nothing proposed passes the filters now
    accepted = api.review(sample_ws, status="auto", match_type="payout", state="accepted")
    assert sorted(accepted["match_id"]) == sorted(payouts["match_id"])
    assert api.review(sample_ws, match_type="payout", status="auto").height == 0
    assert _decisions(sample_ws, payouts["match_id"][0]) == [("accept", ME, "accepted", "October payouts")]


def test_manual_match_with_the_running_difference_booked_to_a_cause(sample_ws, browser_page):
    page = browser_page
    with serving(create_app(sample_ws, idle=0.2)) as url:
        page.goto(url + f"/manual?bq={SHORT[0]}&lq={SHORT[1]}")
        page.check(f'input[name="bank"][value="{SHORT[0]}"]')
        assert page.inner_text("#difference") == "HKD 15,018.30"
        page.check(f'input[name="ledger"][value="{SHORT[1]}"]')
        assert page.inner_text("#bank-total") == "HKD 15,018.30"
        assert page.inner_text("#ledger-total") == "HKD 15,170.00"
        assert page.inner_text("#difference") == "HKD -151.70"
        page.select_option("#adjust", "short_payment")
        page.fill('input[name="comment"]', "discount agreed by phone")
        page.click("#save-manual")
        page.wait_for_url("**/matches/M-*")
        assert page.inner_text("#state") == "accepted"
        assert "short_payment" in page.inner_text("table.adjustments")
        match_id = page.url.rsplit("/", 1)[1]
    row = api.review(sample_ws, state="accepted", match_ids=[match_id]).row(0, named=True)
    assert (row["match_type"], row["bank_ids"], row["ledger_ids"]) == ("manual", SHORT[0], SHORT[1])
    assert row["adjustments"] == "short_payment -151.70 (6900)"
    assert _decisions(sample_ws, match_id) == [("manual", ME, "accepted", "discount agreed by phone")]


def test_a_script_in_a_description_is_shown_as_text(sample_ws, browser_page):
    page = browser_page
    match_id = _match_of(sample_ws, HOSTILE_BANK)
    with serving(create_app(sample_ws, idle=0.2)) as url:
        for path in (f"/matches/{match_id}", "/?state=any&q=XSS", f"/manual?bq={HOSTILE_BANK}"):
            page.goto(url + path)
            assert HOSTILE in page.inner_text("main")
            assert page.evaluate("window.__pwned") is None
            assert page.title() != "pwned"
        assert "金港貿易有限公司" in page.inner_text("main")


def test_recon_serve_refuses_a_non_local_address_without_authentication(sample_ws):
    for host in ("0.0.0.0", "192.0.2.10"):
        done = subprocess.run([sys.executable, "-m", "engine.cli", "serve", "--workspace", str(sample_ws),
                               "--host", host, "--port", "8765"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"recon: error: refusing to serve on {host} without authentication")


@pytest.fixture(scope="module")
def workspace_100k(tmp_path_factory) -> Path:
    return make_review_workspace(tmp_path_factory.mktemp("web-100k") / "books.duckdb", 100_000)


def test_a_reviewer_clears_100_proposals_with_the_keyboard_at_100k(workspace_100k, browser_page):
    page = browser_page
    server_ms = []
    with serving(create_app(workspace_100k)) as url:
        page.goto(url + "/?limit=100&sort=confidence")
        assert page.locator("#total").get_attribute("data-total") == "100000"
        ids = page.locator("#queue tbody tr").evaluate_all("rows => rows.map(r => r.dataset.matchId)")
        assert len(ids) == 100
        for match_id in ids:
            with page.expect_response(f"**/api/matches/{match_id}/accept") as done:
                page.keyboard.press("a")
            assert done.value.ok, done.value.text()
            server_ms.append(_server_ms(done.value))
        assert page.locator('[data-count="accepted"]').inner_text() == "100"
    accepted = api.review(workspace_100k, state="accepted")
    assert sorted(accepted["match_id"]) == sorted(ids)
    within = sum(ms < 200 for ms in server_ms)
    print(f"\n100 keyboard accepts at 100k proposals: server time median {statistics.median(server_ms):.0f} ms, "
          f"max {max(server_ms):.0f} ms, {within} under 200 ms")
    # the budget is 200 ms an action; on a machine shared with other work a few commits wait
    # for the disk or the CPU, but the reviewer's actions must be well within it
    assert statistics.median(server_ms) < 200, statistics.median(server_ms)
    assert within >= 90, sorted(server_ms)[-15:]


def test_screenshots_of_the_queue_a_proposal_and_the_report(sample_ws, browser_page, tmp_path):
    page = browser_page
    out = Path(os.environ.get("RECON_WEB_SCREENSHOTS") or tmp_path)
    match_id = _match_of(sample_ws, "B000000946")  # a CNY receipt with its FX difference
    with serving(create_app(sample_ws, idle=0.2)) as url:
        page.goto(url + "/?status=review")
        page.screenshot(path=str(out / "queue.png"))
        page.goto(url + f"/matches/{match_id}")
        assert "fx_difference" in page.inner_text("table.adjustments")
        page.screenshot(path=str(out / "proposal.png"), full_page=True)
        page.goto(url + "/report?period=2026-10")
        assert page.locator("#report .recon-report").count() == 1
        assert "2026-10" in page.inner_text("#report")
        page.screenshot(path=str(out / "report.png"), full_page=True)
    for name in ("queue.png", "proposal.png", "report.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
