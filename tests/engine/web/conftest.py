"""Fixtures of the review page tests: the bundled sample month ingested and matched into a
workspace (with one hostile line whose description holds a ``<script>``), the app served by
uvicorn on a free loopback port, and the system's headless Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from engine import api

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "benchmarks" / "sample"
CHROMIUM = Path("/usr/bin/chromium")
#: the hostile line: a description a browser must show as text, never run
HOSTILE = "<script>window.__pwned = 1; document.title = 'pwned'</script> 金港貿易有限公司"
HOSTILE_BANK = "B-XSS-1"
HOSTILE_LEDGER = "INV-XSS-1"


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory) -> Path:
    """The sample month (bank, ledger, Stripe payouts, FX) and the hostile line, ingested and
    matched once a session (copied by :func:`sample_ws`)."""
    folder = tmp_path_factory.mktemp("web-sample")
    bank_extra = folder / "bank_extra.csv"
    bank_extra.write_text(
        "id,date,amount,currency,description,counterparty,reference,account\n"
        f'{HOSTILE_BANK},2026-10-15,8888.88,HKD,"{HOSTILE}",金港貿易有限公司,{HOSTILE_LEDGER},004-512345-001\n',
        encoding="utf-8")
    ledger_extra = folder / "ledger_extra.csv"
    ledger_extra.write_text(
        "id,date,amount,currency,description,counterparty,reference,account,type,due_date\n"
        f'{HOSTILE_LEDGER},2026-10-01,8888.88,HKD,"{HOSTILE}",金港貿易有限公司,{HOSTILE_LEDGER},1100,invoice,2026-10-31\n',
        encoding="utf-8")
    ws = folder / "books.duckdb"
    api.ingest(ws, bank=[SAMPLE / "bank.csv", bank_extra], ledger=[SAMPLE / "ledger.csv", ledger_extra],
               processor=SAMPLE / "stripe_payouts.csv", fx=SAMPLE / "fx.csv")
    api.match_workspace(ws)
    return ws


@pytest.fixture
def sample_ws(tmp_path, sample_template) -> Path:
    """A workspace of its own: the sample month matched, no decision yet."""
    ws = tmp_path / "books.duckdb"
    shutil.copyfile(sample_template, ws)
    return ws


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium from the system packages (dev.py installs it), driven by Playwright;
    the tests skip, saying why, when either is missing. One browser a module, not a session:
    Playwright's sync API keeps an event loop running in the main thread while it lives, which
    the tests after these must not run inside."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (python3 dev.py test installs it with apt-get when run as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context and page (its own cookies), 1400x900, dialogs accepted."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        yield page
    finally:
        context.close()
