"""Scale benchmark: wall time and peak memory of ``recon match`` on adversarial month shapes.

Stage: benchmarks (issue 11, item 6). Each case is a month *shape* that stresses one part of the
engine, generated at two sizes so that growth shows: the months come from
:mod:`benchmarks.shapes` (and, for ``full_mix``, :mod:`benchmarks.generate`), are written as
canonical CSV files, and the real command line runs on them in a fresh child process,

    python -m engine.cli match --bank bank.csv --ledger ledger.csv [--fx fx.csv]
        [--processor stripe_payouts.csv] --out DIR --quiet

measured by a small wrapper process: wall time from start to exit, and the kernel's peak
resident memory of the run (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in the wrapper, which ran
nothing else). A watchdog polls the run's memory and kills it past ``--rss-limit`` (default
12 GiB), and ``--timeout`` stops a run that takes too long: the row then says so.

Cases (small / large):

=====================  ======================================================================
``one_payer``          one payer with 2,500 / 10,000 open invoices (500 / 2,000 credits paying
                       one to four of them) beside a plain month of 5,000 bank lines
``web_orders_report``  5,000 (large) / 1,250 (small) web orders a day for a month, daily Stripe
                       payouts, with the itemized payout report, beside a plain 2,000-line month
``web_orders``         the same without the report (payouts inferred from the orders)
``busy_shop``          the acceptance's busy shop: 2,000 (large) / 500 (small) card orders a day
                       for two weeks, 10 ``STRIPE PAYMENTS UK LTD`` credits, no report; the row
                       counts the payouts proposed exactly (target: 8 of 10, peak RSS <= 2 GB)
``common_amount``      HKD 100.00 on half of all lines: 10,000 / 40,000 bank lines
``one_name``           one counterparty name on every line: 5,000 / 20,000 bank lines, 1.4x
                       as many invoices
``full_mix``           the project's full mix at 100,000 / 1,000,000 bank lines, as many
                       ledger items as the generator allows (``open_items_ratio`` 1.0: ~1.26x)
``independent``        the independent month's shape (issue 11: 169k bank x 498k ledger, busy
                       shop with its report, FX): 8,500 / 25,000 bank lines; ``--case
                       independent_169k`` runs the full 169,000
=====================  ======================================================================

Where a case has ``duckdb`` set, the runner also times the acceptance's reference: a one-pass
DuckDB join of the two files on (currency, amount, date +-3 days), in its own measured process,
and reports recon's wall time as a multiple of it (the target is <= 15x).

The table shows, per case and size, bank x ledger lines, wall seconds, peak RSS, the growth of
lines, wall and RSS from the small to the large size, recall of the truth groups and, for the
shop cases, the payouts proposed exactly (any status) of those in truth. ``--stages`` adds a
per-stage probe of each run (a fresh process calling the engine's stages one at a time with a
memory sampler) so a blow-up can be pinned on a stage.

Examples
--------
``python -m benchmarks.scale --case busy_shop --sizes large``
``python -m benchmarks.scale --sizes both --markdown scale.md``
``python -m benchmarks.scale --case web_orders --sizes small --stages``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import psutil

from benchmarks import shapes
from benchmarks.generate import generate
from benchmarks.generate import save as save_generated

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "benchmarks" / "_data" / "scale"
POLL_SECONDS = 0.05
DEFAULT_RSS_LIMIT_GIB = 12.0
DEFAULT_TIMEOUT = 1_200.0

Month = dict[str, pl.DataFrame]


@dataclass(frozen=True)
class Case:
    """One adversarial shape at two sizes: ``make(size)`` returns the month (frames) to write."""

    name: str
    what: str
    sizes: tuple[int, int]
    make: Callable[[int], Month]
    duckdb: bool = False
    by_default: bool = True


def _full_mix(n_bank: int) -> Month:
    return generate(n_bank, seed=0, open_items_ratio=1.0)


CASES: dict[str, Case] = {c.name: c for c in [
    Case("one_payer", "one payer, N open invoices", (2_500, 10_000),
         lambda n: shapes.one_party(n // 5, n, base_bank_lines=5_000)),
    Case("web_orders_report", "N web orders a day, daily payouts, Stripe report", (1_250, 5_000),
         lambda n: shapes.busy_shop(n, with_report=True, base_bank_lines=2_000)),
    Case("web_orders", "N web orders a day, daily payouts, no report", (1_250, 5_000),
         lambda n: shapes.busy_shop(n, with_report=False, base_bank_lines=2_000)),
    Case("busy_shop", "N card orders a day for 2 weeks, 10 payouts, no report", (500, 2_000),
         lambda n: shapes.busy_shop(n, with_report=False, base_bank_lines=2_000, order_days=14)),
    Case("common_amount", "100.00 on half of N bank lines and half the ledger", (10_000, 40_000),
         lambda n: shapes.common_amount(n)),
    Case("one_name", "one counterparty name on all N bank lines", (5_000, 20_000),
         lambda n: shapes.one_party(n, int(n * 1.4))),
    Case("full_mix", "the project's full mix, N bank lines", (100_000, 1_000_000), _full_mix, duckdb=True),
    Case("independent", "independent month's shape, N bank lines", (8_500, 25_000),
         lambda n: shapes.independent_month(n), duckdb=True),
    Case("independent_169k", "independent month's shape at its own size", (85_000, 169_000),
         lambda n: shapes.independent_month(n), duckdb=True, by_default=False),
]}


@dataclass
class Measured:
    """A measured child run."""

    status: str = "ok"
    wall_seconds: float | None = None
    peak_rss_bytes: int | None = None
    command: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """One case at one size."""

    case: str
    size: int
    bank_lines: int = 0
    ledger_lines: int = 0
    processor_lines: int = 0
    recon: Measured = field(default_factory=Measured)
    join: Measured | None = None
    join_pairs: int | None = None
    recall: float | None = None
    payouts_exact: int | None = None
    payouts_auto: int | None = None
    payouts_truth: int | None = None
    stages: list[dict] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return self.bank_lines + self.ledger_lines + self.processor_lines


# --- measurement --------------------------------------------------------------------------------

#: the wrapper: runs the command, then reports the kernel's peak RSS of it (its only child)
_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "open(sys.argv[1], 'w').write(json.dumps({'code': code, 'peak': peak}))\n"
    "sys.exit(code)\n"
)


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _kill_tree(process: psutil.Process) -> None:
    for p in [*process.children(recursive=True), process]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def measure(command: list[str], log_path: Path, timeout: float, rss_limit: int) -> Measured:
    """Run ``command`` in a fresh wrapper process; wall seconds and the kernel's peak RSS.

    The run is killed when it passes ``timeout`` seconds or its polled memory passes
    ``rss_limit`` bytes (status says which); the peak is then the polled one."""
    result = Measured(command=command)
    report = log_path.with_suffix(".peak.json")
    report.unlink(missing_ok=True)
    polled = 0
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        child = psutil.Popen([sys.executable, "-c", _WRAPPER, str(report), *command], stdout=log,
                             stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        while True:
            try:
                polled = max(polled, _tree_rss(child))
            except psutil.NoSuchProcess:
                pass
            try:
                code = child.wait(timeout=POLL_SECONDS)
                break
            except psutil.TimeoutExpired:
                elapsed = time.perf_counter() - started
                if elapsed > timeout or polled > rss_limit:
                    _kill_tree(child)
                    child.wait()
                    code = None
                    result.status = (f"killed at {polled / 2**30:.1f} GiB (limit)" if polled > rss_limit
                                     else f"timeout after {timeout:g}s")
                    break
        result.wall_seconds = time.perf_counter() - started
    peak = polled
    if code is not None and report.exists():
        peak = max(peak, json.loads(report.read_text())["peak"])
    result.peak_rss_bytes = peak
    if code not in (None, 0):
        said = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
        result.status = f"exit {code}: " + (said[-1][:140] if said else "no output")
    return result


def recon_command(paths: dict[str, Path], out: Path) -> list[str]:
    """``recon match`` on a written month, with ``--fx`` / ``--processor`` when it has them."""
    return [sys.executable, "-m", "engine.cli", "match", "--bank", str(paths["bank"]), "--ledger", str(paths["ledger"]),
            *(["--fx", str(paths["fx"])] if "fx" in paths else []),
            *(["--processor", str(paths["stripe"])] if "stripe" in paths else []),
            "--out", str(out), "--quiet"]


#: the acceptance's reference: one pass of DuckDB over both files, joined on currency, exact
#: amount and date within 3 days, the pairs written out (so the join is not optimised away)
JOIN_SQL = """
COPY (
    SELECT b.id AS bank_id, l.id AS ledger_id
    FROM read_csv('{bank}', all_varchar = true) AS b
    JOIN read_csv('{ledger}', all_varchar = true) AS l
      ON b.currency = l.currency
     AND CAST(b.amount AS DECIMAL(18, 3)) = CAST(l.amount AS DECIMAL(18, 3))
     AND CAST(l.date AS DATE) BETWEEN CAST(b.date AS DATE) - 3 AND CAST(b.date AS DATE) + 3
) TO '{out}' (FORMAT parquet)
"""


def join_command(paths: dict[str, Path], out: Path) -> list[str]:
    """The one-pass DuckDB join of the bank and ledger files, as a child process."""
    sql = JOIN_SQL.format(bank=paths["bank"], ledger=paths["ledger"], out=out)
    return [sys.executable, "-c", f"import duckdb; duckdb.sql({sql!r})"]


# --- scoring ------------------------------------------------------------------------------------

def _id_sets(frame: pl.DataFrame) -> pl.Series:
    def canon(column: str) -> pl.Expr:
        return pl.col(column).fill_null("").str.split(";").list.eval(
            pl.element().str.strip_chars()).list.sort().list.join(";")
    return frame.select(pl.concat_str([canon("bank_ids"), pl.lit("|"), canon("ledger_ids")]).alias("key"))["key"]


def payouts_found(matches: pl.DataFrame, truth: pl.DataFrame) -> tuple[int, int, int]:
    """(payouts proposed exactly, of them auto, payouts in truth) for the shop's payouts."""
    wanted = shapes.payout_truth(truth)
    if not wanted.height:
        return 0, 0, 0
    keys = set(_id_sets(wanted).to_list())
    proposed = matches.with_columns(_key=_id_sets(matches)).filter(pl.col("_key").is_in(list(keys)))
    return proposed.height, int((proposed["status"] == "auto").sum()), wanted.height


def _score(result: RunResult, out: Path, paths: dict[str, Path]) -> None:
    from engine.evaluate import evaluate_files

    try:
        result.recall = evaluate_files(out, paths["truth"], bank_path=paths["bank"]).recall
    except Exception as exc:  # a row of the table, not a crash of the benchmark
        result.recon.status += f"; evaluation failed: {exc}"[:120]
    matches = pl.read_csv(out / "matches.csv", infer_schema=False)
    truth = pl.read_csv(paths["truth"], infer_schema=False)
    if shapes.payout_truth(truth).height:
        result.payouts_exact, result.payouts_auto, result.payouts_truth = payouts_found(matches, truth)


# --- one case at one size -----------------------------------------------------------------------

def write_month(case: Case, size: int, folder: Path) -> dict[str, Path]:
    """Generate and write one case's month; the paths by name (``bank``, ``ledger``, ...)."""
    month = case.make(size)
    if case.name == "full_mix":
        return save_generated(month, folder)
    return shapes.save(month, folder)


def _count_rows(path: Path) -> int:
    return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()


def run_case(case: Case, size: int, *, timeout: float, rss_limit: int, keep: bool, stages: bool,
             data_dir: Path = DATA_DIR) -> RunResult:
    """Generate, run and measure one case at one size (and the DuckDB join when the case has it)."""
    result = RunResult(case.name, size)
    folder = data_dir / f"{case.name}-{size}"
    if folder.exists():
        shutil.rmtree(folder)
    try:
        paths = write_month(case, size, folder)
        result.bank_lines, result.ledger_lines = _count_rows(paths["bank"]), _count_rows(paths["ledger"])
        result.processor_lines = _count_rows(paths["stripe"]) if "stripe" in paths else 0
        out = folder / "out"
        result.recon = measure(recon_command(paths, out), folder / "recon.log", timeout, rss_limit)
        if result.recon.status == "ok":
            try:
                _score(result, out, paths)
            except Exception as exc:  # a row of the table, not a crash of the whole benchmark
                result.recon.status = f"ok; scoring failed: {type(exc).__name__}: {exc}"[:160]
        if case.duckdb:
            pairs = folder / "join_pairs.parquet"
            result.join = measure(join_command(paths, pairs), folder / "join.log", timeout, rss_limit)
            if result.join.status == "ok":
                result.join_pairs = pl.scan_parquet(pairs).select(pl.len()).collect().item()
        if stages:
            result.stages = probe_stages(paths, folder, timeout, rss_limit)
    finally:
        if not keep and folder.exists():
            shutil.rmtree(folder)
    return result


# --- stage probe ----------------------------------------------------------------------------------

class _PeakSampler:
    """Samples this process's RSS in a thread; :meth:`stage` returns the peak since the last call."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def stage(self) -> int:
        peak = max(self._peak, self._process.memory_info().rss)
        self._peak = self._process.memory_info().rss
        return peak

    def stop(self) -> None:
        self._stop.set()


def _probe(paths: dict[str, str], report: Path) -> None:
    """In a fresh process: the engine's stages one at a time (time and peak RSS of each).

    Group generators run here one after the other (the pipeline runs them beside the pair
    stages), then the whole :func:`engine.pipeline.match_prepared` once more for the assignment
    and output stages' own timings."""
    import feeds
    from engine import api
    from engine.candidates.caps import CapLog
    from engine.candidates.compound import compound_groups
    from engine.candidates.fx import fx_groups
    from engine.candidates.pairs import generate_candidates
    from engine.candidates.payouts import (
        inferred_payout_groups,
        report_linked_ledger,
        report_payout_groups,
    )
    from engine.pipeline import match_prepared, prepare_bank_frame, prepare_ledger_frame
    from engine.scoring.evidence import measure_pairs
    from engine.scoring.score import level_codes, scored_frame, scorer_for
    from rules.model import default_rules

    rules = default_rules()
    sampler = _PeakSampler()
    rows: list[dict] = []
    state: dict = {}

    def stage(name: str, fn: Callable[[], object], size: Callable[[object], int] | None = None) -> object:
        started = time.perf_counter()
        try:
            value = fn()
            status = "ok"
        except Exception as exc:  # the probe reports a stage that fails, then goes on
            value, status = None, f"{type(exc).__name__}: {exc}"[:120]
        seconds = time.perf_counter() - started
        rows.append({"stage": name, "seconds": round(seconds, 2), "peak_rss": sampler.stage(),
                     "rows": size(value) if value is not None and size else None, "status": status})
        report.write_text(json.dumps(rows))
        return value

    def height(frame) -> int:
        return getattr(frame, "height", 0)

    bank = stage("read bank", lambda: api.load_bank(paths["bank"]).frame, height)
    ledger = stage("read ledger", lambda: api.load_ledger(paths["ledger"]).frame, height)
    processor = (stage("read processor", lambda: api.load_processor(paths["stripe"]).frame, height)
                 if "stripe" in paths else None)
    fx = stage("read fx", lambda: feeds.read_fx_csv(paths["fx"])[0], height) if "fx" in paths else None
    state["bank"] = stage("prepare bank", lambda: prepare_bank_frame(bank), height)
    state["ledger"] = stage("prepare ledger", lambda: prepare_ledger_frame(ledger, rules), height)
    b, lg = state["bank"], state["ledger"]
    pairs = stage("candidate pairs", lambda: generate_candidates(b, lg, rules), height)
    if pairs is not None and pairs.height:
        evidence = stage("pair evidence", lambda: measure_pairs(pairs, b, lg, rules))
        codes = stage("pair levels", lambda: level_codes(evidence, b, lg, rules))
        scorer = stage("scorer", lambda: scorer_for(rules, evidence, codes, b, lg))
        stage("scored pairs", lambda: scored_frame(pairs, evidence, codes, scorer), height)
    caps = CapLog()
    stage("groups: compound", lambda: compound_groups(b, lg, rules, caps=caps), height)
    if fx is not None:
        stage("groups: fx", lambda: fx_groups(b, lg, fx, rules), height)
    explained = None
    if processor is not None:
        stage("groups: report payouts", lambda: report_payout_groups(b, lg, processor, rules), height)
        explained = report_linked_ledger(lg, processor)
    stage("groups: inferred payouts",
          lambda: inferred_payout_groups(b, lg, rules, exclude_ledger=explained, caps=caps), height)
    outcome = stage("whole match_prepared", lambda: match_prepared(b, lg, rules, fx, processor))
    if outcome is not None:
        for name in ("assignment", "output"):
            if name in outcome.timings:
                rows.append({"stage": f"  of which {name}", "seconds": round(outcome.timings[name], 2),
                             "peak_rss": None, "rows": None, "status": "ok"})
        rows.append({"stage": "  caps that bit", "seconds": None, "peak_rss": None, "rows": len(outcome.warnings),
                     "status": "; ".join(outcome.warnings)[:200] or "none"})
    report.write_text(json.dumps(rows))
    sampler.stop()


def probe_stages(paths: dict[str, Path], folder: Path, timeout: float, rss_limit: int) -> list[dict]:
    """Run :func:`_probe` in a fresh measured process; its stage rows (as far as it got)."""
    report = folder / "stages.json"
    command = [sys.executable, "-m", "benchmarks.scale", "--probe", str(report),
               *[f"{name}={path}" for name, path in paths.items() if name in ("bank", "ledger", "fx", "stripe")]]
    measured = measure(command, folder / "stages.log", timeout, rss_limit)
    rows = json.loads(report.read_text()) if report.exists() else []
    if measured.status != "ok":
        rows.append({"stage": "probe", "seconds": measured.wall_seconds, "peak_rss": measured.peak_rss_bytes,
                     "rows": None, "status": measured.status})
    return rows


# --- reporting ----------------------------------------------------------------------------------

def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f} MB"


def _growth(large: float | None, small: float | None) -> str:
    return "" if not large or not small else f"{large / small:.1f}x"


def table(results: list[RunResult]) -> str:
    """The markdown table: a row per case and size, growth on the large size's row."""
    lines = ["| case | size | bank x ledger (+ report) lines | wall s | peak RSS | lines growth | wall growth "
             "| RSS growth | recall | payouts exact (auto) | DuckDB join s (pairs) | recon / join | status |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    small: dict[str, RunResult] = {}
    for r in results:
        before = small.get(r.case)
        wall = r.recon.wall_seconds
        grown = before is not None and before.size < r.size
        join = r.join.wall_seconds if r.join and r.join.status == "ok" else None
        cells = [
            f"`{r.case}`", f"{r.size:,}",
            f"{r.bank_lines:,} x {r.ledger_lines:,}" + (f" (+ {r.processor_lines:,})" if r.processor_lines else ""),
            "n/a" if wall is None else f"{wall:.1f}", _mb(r.recon.peak_rss_bytes),
            _growth(r.lines, before.lines) if grown else "",
            _growth(wall, before.recon.wall_seconds) if grown else "",
            _growth(r.recon.peak_rss_bytes, before.recon.peak_rss_bytes) if grown else "",
            "" if r.recall is None else f"{r.recall:.1%}",
            "" if r.payouts_truth is None else f"{r.payouts_exact} of {r.payouts_truth} ({r.payouts_auto})",
            "" if r.join is None else (f"{join:.1f} ({r.join_pairs:,})" if join is not None else r.join.status),
            _growth(wall, join) if join and r.recon.status == "ok" else "",
            r.recon.status.replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
        small.setdefault(r.case, r)
    return "\n".join(lines)


def stage_tables(results: list[RunResult]) -> str:
    """Per run with a stage probe: seconds, peak RSS and output rows of each stage."""
    parts = []
    for r in results:
        if not r.stages:
            continue
        parts += [f"Stages of `{r.case}` at {r.size:,}:", "", "| stage | s | peak RSS | rows | status |",
                  "|---|---:|---:|---:|---|"]
        for row in r.stages:
            seconds = "" if row.get("seconds") is None else f"{row['seconds']:.2f}"
            rows = "" if row.get("rows") is None else f"{row['rows']:,}"
            parts.append(f"| {row['stage']} | {seconds} | {_mb(row.get('peak_rss')) if row.get('peak_rss') else ''} "
                         f"| {rows} | {str(row.get('status', '')).replace('|', '/')} |")
        parts.append("")
    return "\n".join(parts)


def _git_revision() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "engine", "feeds", "rules",
                                "models"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        return sha + (" (engine/feeds/rules with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(results: list[RunResult], argv: list[str], started: datetime) -> str:
    """A markdown section: when, where, the command, the table and any stage tables."""
    load = os.getloadavg()
    head = [f"Measured {started:%Y-%m-%d %H:%M} UTC at git {_git_revision()}; {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, load average at start {load[0]:.2f}.",
            f"Command: `python -m benchmarks.scale {' '.join(argv)}`", ""]
    return "\n".join([*head, table(results), "", stage_tables(results)]).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe"]:
        _probe(dict(a.split("=", 1) for a in argv[2:]), Path(argv[1]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", nargs="+", choices=sorted(CASES), metavar="NAME",
                        help=f"cases to run (default: all but the opt-in ones); known: {', '.join(CASES)}")
    parser.add_argument("--sizes", choices=["small", "large", "both"], default="both")
    parser.add_argument("--size", type=int, nargs="+", metavar="N", help="explicit sizes instead of --sizes")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds before a run is killed")
    parser.add_argument("--rss-limit", type=float, default=DEFAULT_RSS_LIMIT_GIB, metavar="GIB",
                        help="kill a run whose resident memory passes this many GiB")
    parser.add_argument("--stages", action="store_true", help="also probe each run stage by stage")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and outputs")
    parser.add_argument("--data-dir", type=Path, default=None, help=f"where to write months (default {DATA_DIR})")
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    names = args.case or [name for name, c in CASES.items() if c.by_default]
    data_dir = args.data_dir or (DATA_DIR if args.keep else Path(tempfile.mkdtemp(prefix="recon-scale-")))
    started = datetime.now(UTC)
    results = []
    for name in names:
        case = CASES[name]
        sizes = args.size or {"small": case.sizes[:1], "large": case.sizes[1:], "both": case.sizes}[args.sizes]
        for size in sizes:
            print(f"scale: {name} at {size:,} ...", file=sys.stderr, flush=True)
            result = run_case(case, size, timeout=args.timeout, rss_limit=int(args.rss_limit * 2**30),
                              keep=args.keep, stages=args.stages, data_dir=data_dir)
            print(f"scale: {name} at {size:,}: {result.recon.status}, {result.recon.wall_seconds or 0:.1f} s, "
                  f"{_mb(result.recon.peak_rss_bytes)}", file=sys.stderr, flush=True)
            results.append(result)
            if args.markdown:  # as far as it got, should a later case take the machine down
                args.markdown.write_text(report(results, argv, started), encoding="utf-8")
    text = report(results, argv, started)
    print(text)
    if not args.keep and args.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if all(r.recon.status == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
