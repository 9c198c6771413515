"""The REST write-back adapter against the fake Xero under load and under kill -9 (issue 12's
acceptance and reliability points).

Time is scaled: the fake and the client share ``time_scale`` (wall seconds per platform second),
so Xero's 60 calls a rolling minute, 5-minute tokens and ``Retry-After`` all run 20 times as
fast. The batch size is scaled down with time (6 elements a request instead of Xero's 50) so
that 2,000 matches take some 470 calls: eight rate windows and more than one token lifetime.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests.engine.adapters.fake_xero import FakeXero
from tests.engine.adapters.rest_items import (
    expected_payments,
    invoices_due,
    month,
    received_payments,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def xero_env(monkeypatch):
    """Set a fake's RECON_XERO_* variables for the test (and drop any set outside)."""
    for name in list(os.environ):
        if name.startswith("RECON_XERO_"):
            monkeypatch.delenv(name)

    def apply(fake: FakeXero, **overrides: str) -> None:
        for name, value in fake.environment(**overrides).items():
            monkeypatch.setenv(name, value)

    return apply


def _writer(tmp_path: Path) -> Path:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(_WRITER.format(root=str(ROOT))), encoding="utf-8")
    return script


def test_2000_matches_through_faults_arrive_exactly_once_at_the_rate_limit(tmp_path, xero_env):
    """recon's writer is its own process (as ``recon writeback`` is), the platform another."""
    items = month(2000)
    fake = FakeXero(time_scale=0.05, token_lifetime=300, error_rate=0.05, throttle_every=50, seed=12,
                    invoices=invoices_due(items))
    with fake:
        xero_env(fake, RECON_XERO_BATCH_SIZE="6")
        run = subprocess.run([sys.executable, str(_writer(tmp_path)), fake.target, str(tmp_path / "ws"), "2000"],
                             cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])

    assert outcome["states"] == {"written": 2000}
    # every payment exactly once, at its amount; every batch payment and journal exactly once
    assert received_payments(fake) == expected_payments(items)
    assert len(fake.live_payments()) == 2600
    assert len(fake.batch_payments) == 400
    narrations = Counter(j["Narration"] for j in fake.journals.values())
    assert narrations == Counter(f"recon M{n}" for n in range(2000) if n % 10 < 7 and n % 3 == 0)
    # the faults happened, and some were answered again from the idempotency store
    assert fake.injected_500 >= 10 and fake.injected_429 >= 8
    assert any(r.replayed for r in fake.received), "no 500-after-the-work was retried"
    assert fake.refreshes >= 2, "the 5-minute token should have expired during the run"
    # the client never broke the limits itself, and used them: within 10% of the sustained rate
    assert fake.limit_exceeded == []
    wall, calls = outcome["wall"], fake.api_calls
    allowed = fake.rate_seconds(calls)
    print(f"\n2000 matches: {calls} calls, {fake.injected_500} 500s, {fake.injected_429} 429s, "
          f"{fake.refreshes} token refreshes; wall {wall:.2f} s, at the rate limit {allowed:.2f} s "
          f"({wall / allowed:.3f}x), least possible {fake.minimum_seconds(calls):.2f} s")
    assert fake.minimum_seconds(calls) <= wall <= 1.10 * allowed


_WRITER = """
import json, logging, sys, time
from collections import Counter
from pathlib import Path
sys.path.insert(0, {root!r})
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from engine.adapters import open_target
from tests.engine.adapters.rest_items import month
items = month(int(sys.argv[3]))
adapter = open_target(sys.argv[1], Path(sys.argv[2]))
started = time.monotonic()
results = adapter.write(items)
wall = time.monotonic() - started
adapter.close()
print(json.dumps({{"states": Counter(r.state for r in results), "wall": wall}}))
"""


def test_kill_9_mid_batch_then_rerun_writes_every_payment_once(tmp_path, xero_env):
    """The writer is killed while the fake holds an answer to a request whose work it has
    done; the rerun sends what was pending again (same idempotency key) and the rest."""
    items = month(200)
    script = _writer(tmp_path)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    fake = FakeXero(time_scale=0.02, token_lifetime=1800, invoices=invoices_due(items))
    fake.hold_after = 12
    outputs = []
    with fake:
        xero_env(fake, RECON_XERO_BATCH_SIZE="5")
        command = [sys.executable, str(script), fake.target, str(workspace), "200"]
        writer = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert fake.held.wait(60), "the writer never reached the held request"
        os.kill(writer.pid, signal.SIGKILL)
        out, err = writer.communicate(timeout=30)
        outputs += [out, err]
        assert writer.returncode == -signal.SIGKILL
        fake.release.set()
        written_before_rerun = len(fake.live_payments())
        assert 0 < written_before_rerun < 260

        rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        outputs += [rerun.stdout, rerun.stderr]
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        states = json.loads(rerun.stdout.strip().splitlines()[-1])["states"]

    assert received_payments(fake) == expected_payments(items)
    assert len(fake.batch_payments) == 40
    assert len(fake.journals) == sum(1 for n in range(200) if n % 10 < 7 and n % 3 == 0)
    # what the killed run had done came back as 'written' (done now on recon's side), not twice
    assert states.get("written", 0) + states.get("already", 0) == 200
    assert any(r.replayed and r.idempotency_key == fake.held_key for r in fake.received), \
        "the held request was not sent again with its idempotency key"
    token_file = workspace / "xero-token.json"
    assert token_file.stat().st_mode & 0o777 == 0o600
    stored = json.loads(token_file.read_text())
    assert stored["refresh_token"] == fake.refresh_token  # the rotated one, saved at once
    for text in outputs:
        for token in fake.issued_refresh_tokens + fake.issued_access_tokens:
            assert token not in text
