"""Review page benchmark: the queue and a reviewer's decisions at N proposals.

Stage: benchmarks (issue 13: "a reviewer clears 100 proposals with the keyboard, each action
under 200 ms server time at 100k proposals in the workspace").

:func:`make_review_workspace` builds a workspace of ``n`` undecided proposals through the store
API in a few seconds: one run of one-to-one proposals (bank ``B{i}`` pays ledger ``L{i}``),
a third for review, the rest auto; confidences spread over 0.50-0.99; amounts in HKD, USD and
JPY; every tenth less a bank charge; payers in Chinese and English; two bank accounts; dates
over four weeks. The browser test (``tests/engine/web/test_browser.py``) uses it at 100k.

Run on its own, it times, in process (Starlette's test client, the same app ``recon serve``
runs), the queue's first page, a filtered page, a deep page, a proposal page, and N accepts
followed by undos, printing the server time of each (the ``Server-Timing`` header).

Examples
--------
``python -m benchmarks.web_review --n 100000 --actions 100``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.workspace.store import Workspace  # noqa: E402
from rules.model import default_rules  # noqa: E402

_PAYERS = ("陳大文", "金港貿易有限公司", "Lee Hoi Man", "Tsang Chun Kit", "永恒蓮花運輸", "Orient Summit Hardware Co., Ltd.")
_CURRENCIES = ("HKD", "HKD", "HKD", "USD", "JPY")
RUN = "R-20261031T000000000000"


def _text(minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """Exact decimal text of minor units (JPY has no decimals)."""
    whole = (minor.abs() // 100).cast(pl.Utf8) + "." + (minor.abs() % 100).cast(pl.Utf8).str.zfill(2)
    text = pl.when(currency == "JPY").then(minor.abs().cast(pl.Utf8)).otherwise(whole)
    return pl.when(minor < 0).then("-" + text).otherwise(text)


def make_review_workspace(path: str | Path, n: int) -> Path:
    """A workspace of ``n`` undecided one-to-one proposals (see the module docstring)."""
    i = pl.int_range(0, n, eager=True, dtype=pl.Int64)
    frame = pl.DataFrame({"i": i}).with_columns(
        ids=pl.col("i").cast(pl.Utf8).str.zfill(7),
        currency=pl.col("i").map_elements(lambda k: _CURRENCIES[k % len(_CURRENCIES)], return_dtype=pl.Utf8),
        payer=pl.col("i").map_elements(lambda k: _PAYERS[k % len(_PAYERS)], return_dtype=pl.Utf8),
        ledger_minor=10_000 + (pl.col("i") * 7919) % 5_000_000,
        charged=pl.col("i") % 10 == 0,
        day=pl.lit(date(2026, 10, 1)) + pl.duration(days=pl.col("i") % 28),
        review=pl.col("i") % 3 == 0,
    ).with_columns(
        bank_minor=pl.when(pl.col("charged")).then(pl.col("ledger_minor") - 1500).otherwise(pl.col("ledger_minor")),
        account=pl.when(pl.col("i") % 2 == 0).then(pl.lit("HSBC-001")).otherwise(pl.lit("HASE-002")),
    )
    bank = frame.select(
        id="B" + pl.col("ids"), date="day", amount_minor="bank_minor", currency="currency",
        description="FPS CR " + pl.col("payer") + " INV-" + pl.col("ids"), counterparty="payer",
        reference=pl.lit(""), account="account")
    ledger = frame.select(
        id="L" + pl.col("ids"), date=pl.col("day") - pl.duration(days=7), amount_minor="ledger_minor",
        currency="currency", description=pl.lit("Consulting services"), counterparty="payer",
        reference="INV-" + pl.col("ids"), type=pl.lit("invoice"))
    proposals = frame.select(
        match_id="M-" + pl.col("ids"), match_type=pl.lit("one_to_one"),
        status=pl.when(pl.col("review")).then(pl.lit("review")).otherwise(pl.lit("auto")),
        confidence=0.5 + (pl.col("i") * 37 % 50).cast(pl.Float64) / 100,
        bank_ids="B" + pl.col("ids"), ledger_ids="L" + pl.col("ids"),
        bank_amount=_text(pl.col("bank_minor"), pl.col("currency")),
        ledger_amount=_text(pl.col("ledger_minor"), pl.col("currency")),
        difference=_text(pl.col("bank_minor") - pl.col("ledger_minor"), pl.col("currency")),
        currency="currency",
        explanation="reference INV-" + pl.col("ids") + " found in bank text; amount equal; same name",
        adjustments=pl.when(pl.col("charged")).then(
            "bank_charge " + _text(pl.col("bank_minor") - pl.col("ledger_minor"), pl.col("currency")) + " (6800)"
        ).otherwise(pl.lit("")),
        open_amount=pl.lit(""), margin=pl.lit(6.0), runner_up=pl.lit(""))
    lines = pl.concat([
        frame.select(match_id="M-" + pl.col("ids"), side=pl.lit("bank"), id="B" + pl.col("ids"),
                     amount_minor="bank_minor", currency="currency"),
        frame.select(match_id="M-" + pl.col("ids"), side=pl.lit("ledger"), id="L" + pl.col("ids"),
                     amount_minor="ledger_minor", currency="currency"),
    ])
    rules = default_rules()
    empty_rejects = pl.DataFrame(schema={"source_file": pl.Utf8, "line": pl.Int64, "column": pl.Utf8,
                                         "reason": pl.Utf8, "raw": pl.Utf8})
    path = Path(path)
    with Workspace(path) as ws:
        ws.record_run(RUN, datetime(2026, 10, 31, tzinfo=UTC), bank, ledger, proposals, lines, empty_rejects,
                      rules.name, json.dumps(rules.to_toml_dict()), {}, {}, "", mode="incremental")
        ws.con.execute("CHECKPOINT")
    return path


def _ms(response) -> float:
    return float(response.headers["server-timing"].split("dur=")[1])


def run(n: int, actions: int) -> dict:
    from starlette.testclient import TestClient

    from engine.web.app import create_app

    figures: dict = {"n": n}
    with tempfile.TemporaryDirectory(prefix="recon-web-") as tmp:
        start = time.perf_counter()
        path = make_review_workspace(Path(tmp) / "books.duckdb", n)
        figures["build s"] = round(time.perf_counter() - start, 1)
        with TestClient(create_app(path), base_url="http://127.0.0.1") as client:
            first = client.get("/")
            csrf = first.text.split('name="csrf-token" content="')[1].split('"')[0]
            for name, url in (("queue (first load)", "/"), ("queue", "/"), ("queue review, by amount", "/?status=review&sort=amount"),
                              ("queue text search", "/?q=%E9%99%B3%E5%A4%A7%E6%96%87"),
                              ("queue page 1000", f"/?offset={max(n - 50, 0)}"), ("proposal", "/matches/M-0000003")):
                response = client.get(url)
                assert response.status_code == 200, response.text[:500]
                figures[f"{name} ms"] = _ms(response)
            timings = {"accept": [], "unmatch": []}
            for k in range(actions):
                for action in ("accept", "unmatch"):
                    response = client.post(f"/api/matches/M-{k:07d}/{action}", json={"comment": "benchmark"},
                                           headers={"X-CSRF-Token": csrf})
                    assert response.status_code == 200, response.text
                    timings[action].append(_ms(response))
            for action, values in timings.items():
                figures[f"{action} median ms"] = round(statistics.median(values), 1)
                figures[f"{action} max ms"] = round(max(values), 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="proposals (default 100000)")
    parser.add_argument("--actions", type=int, default=100, help="accepts (each then undone) timed (default 100)")
    args = parser.parse_args(argv)
    for key, value in run(args.n, args.actions).items():
        print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
