"""Benchmark runner: accuracy and throughput of ``recon match`` on generated months.

Stage: benchmarks. For each size it generates a month with :mod:`benchmarks.generate` (``--mix``,
default ``full``; timed apart, not counted), runs the real command line in a child process
exactly as a user would,

    python -m engine.cli match --bank bank.csv --ledger ledger.csv [--fx fx.csv]
        [--processor stripe_payouts.csv] --out DIR [--rules FILE]

(``--fx`` / ``--processor`` when the month has foreign-currency invoices / Stripe payouts),
measures its wall time and peak resident memory (the whole process tree, polled every 50 ms,
checked against ``getrusage(RUSAGE_CHILDREN)``), scores ``DIR/matches.csv`` against the truth
with :func:`engine.evaluate.evaluate_files`, then does the same for the plain baseline
(:mod:`benchmarks.baseline`: exact amount, +-7 days, first-come greedy) on the same files, and
prints a markdown table with a row per system and size, appending it, with the machine and the
exact commands, to ``benchmarks/RESULTS.md``.

``--profile NAME[,NAME]`` generates the months with variation profiles of
:mod:`benchmarks.profiles` (``all`` is the tuning profile); ``--holdout`` adds, for each size, a
month made with the held-out profile ``holdout`` (rows ``profile=holdout``) next to the usual one,
so generalisation shows beside the figures one tunes on. Never tune on the held-out rows.

Besides recall and the exact-group auto error, each row shows the wrong-books auto error (auto
proposals that would book a line against an item of another truth group, or write off part of
one), the auto coverage of the bank lines that belong to a truth group, and the Brier score of
the proposals' confidence; the section ends with the reliability table of each recon run.

Data goes under ``benchmarks/_data/`` (git-ignored) and is deleted after each size unless
``--keep`` is given.

Examples
--------
``python -m benchmarks.run --sizes 10000 100000 1000000``
``python -m benchmarks.run --sizes 2000 --rules my_rules.toml --keep``
``python -m benchmarks.run --sizes 10000 --mix foundation --no-baseline``
``python -m benchmarks.run --sizes 10000 --holdout --scorer learned``
``python -m benchmarks.run --sizes 10000 --seed 1 --profile all --holdout``
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import polars as pl
import psutil

from benchmarks.generate import DEFAULT_MIX, MIXES, generate, save
from benchmarks.profiles import HOLDOUT_PROFILE, resolve_profile
from engine.evaluate import EvaluationReport, evaluate_files, format_ratio
from models.errors import ReconError

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "benchmarks" / "_data"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
POLL_SECONDS = 0.05

RESULTS_HEADER = """# Benchmark results

Appended by `python -m benchmarks.run` (newest last); never edit old sections by hand. Each run
generates a synthetic month for a Hong Kong SME's HKD account with `benchmarks/generate.py` (its
module docstring lists the case mix), runs `recon match` on it in a child process and scores
`matches.csv` against the generated truth with `engine/evaluate.py`.

| column | meaning |
|---|---|
| system | `recon` (`recon match`) or `baseline` (`benchmarks/baseline.py`: exact amount, +-7 days, first-come greedy, one-to-one) on the same files |
| bank lines / ledger lines | rows of bank.csv (duplicate deliveries included) / ledger.csv |
| gen s | seconds to generate and write the data (not part of the measurement) |
| wall s | wall-clock seconds of `recon match`, process start to exit |
| peak RSS MB | peak resident memory of the `recon match` process tree (MiB) |
| precision | proposed groups exactly in truth / proposed groups (auto and review) |
| recall | truth groups exactly proposed, any status / truth groups; also per truth match type |
| recall decidable | the same over the truth groups none of whose bank lines `labels.csv` marks `:undecidable` (a variation profile keeps some lines no careful person could decide; profiles keep different shares of them) |
| auto error | auto proposals not in truth / auto proposals: wrong bookings nobody reviews |
| auto coverage | bank lines in a correct auto proposal / all bank lines |
| ceiling | bank lines in some truth group / all bank lines: the best auto coverage possible |
| adj ok | correct proposals whose adjustment lines total the truth's (full mix; n/a without an `adjustments` column) |
| profile | variation profile of `benchmarks/profiles.py` the month was generated with (`none`: the plain month; `holdout` is held out, never tuned on) |
| wrong books | auto proposals that pair a line with an item of another truth group (or of none), or book a write-off on part of one / auto proposals; also per claimed match type |
| auto cov truth | bank lines in a correct auto proposal / bank lines in some truth group |
| brier | mean squared difference between a proposal's confidence and "it is exactly a truth group" |

A group is correct only if its bank ids and ledger ids are exactly a truth group's; a partial
overlap counts as wrong. Timings depend on the machine and on its load (shown per section).
"""


@dataclass
class SystemResult:
    """How one matcher did on one generated month."""

    wall_seconds: float | None = None
    peak_rss_bytes: int | None = None
    status: str = "ok"
    report: EvaluationReport | None = None
    command: list[str] = field(default_factory=list)
    recall_decidable: float | None = None


@dataclass
class SizeResult:
    """One generated month and the systems run on it (rows of the results table)."""

    size: int
    seed: int
    mix: str = DEFAULT_MIX
    profile: str = "none"
    bank_lines: int = 0
    ledger_lines: int = 0
    generate_seconds: float = 0.0
    wall_seconds: float | None = None
    peak_rss_bytes: int | None = None
    status: str = "ok"
    report: EvaluationReport | None = None
    command: list[str] = field(default_factory=list)
    baseline: SystemResult | None = None
    recall_decidable: float | None = None

    def systems(self) -> list[tuple[str, SystemResult]]:
        """(name, result) for recon and, when it ran, the baseline."""
        recon = SystemResult(self.wall_seconds, self.peak_rss_bytes, self.status, self.report, self.command,
                             self.recall_decidable)
        return [("recon", recon), *([("baseline", self.baseline)] if self.baseline else [])]


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_measured(command: list[str], log_path: Path, timeout: float | None = None,
                 env: dict[str, str] | None = None) -> tuple[int | None, float, int]:
    """Run ``command``; return (exit code or None on timeout, wall seconds, peak tree RSS bytes).

    stdout and stderr go to ``log_path``. Peak RSS is the larger of the polled process-tree sum
    and the kernel's peak for the largest child that finished during the call.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak = 0
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        child = psutil.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        code: int | None = None
        while True:
            try:
                peak = max(peak, _tree_rss(child))
            except psutil.NoSuchProcess:
                pass
            try:
                code = child.wait(timeout=POLL_SECONDS)
                break
            except psutil.TimeoutExpired:
                if timeout is not None and time.perf_counter() - started > timeout:
                    for p in [*child.children(recursive=True), child]:
                        try:
                            p.kill()
                        except psutil.NoSuchProcess:
                            pass
                    child.wait()
                    code = None
                    break
        wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if after > before:
        peak = max(peak, after * 1024)
    return code, wall, peak


def _failure_line(log_path: Path) -> str:
    """The line of the log that says what went wrong (recon prints ``recon: error: ...``)."""
    lines = [ln.strip() for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("recon:") or "Error" in ln]
    return (said or lines or ["no output"])[-1][:160]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def recon_command(paths: dict[str, Path], out: Path, rules: str | None = None) -> list[str]:
    """``recon match`` on a generated month, with ``--fx`` / ``--processor`` when it has them."""
    return [
        sys.executable, "-m", "engine.cli", "match", "--bank", str(paths["bank"]),
        "--ledger", str(paths["ledger"]),
        *(["--fx", str(paths["fx"])] if "fx" in paths else []),
        *(["--processor", str(paths["stripe"])] if "stripe" in paths else []),
        "--out", str(out), *(["--rules", rules] if rules else []),
    ]


#: bank lines of the month a learned scorer is trained on (plain full mix, another seed: never a
#: profile month, never the month it is measured on)
TRAINING_LINES = 20_000


def scorer_rules(scorer: str, seed: int, data_dir: Path = DATA_DIR) -> str | None:
    """A rule file selecting ``scorer`` (None for the rule set's own weights). For ``learned``,
    a model is first trained with ``recon train`` on a plain month of another seed."""
    if scorer == "rules":
        return None
    folder = data_dir / f"scorer-{scorer}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["[scoring]", f'scorer = "{scorer}"']
    if scorer == "learned":
        paths = save(generate(TRAINING_LINES, seed=seed + 1000), folder / "training")
        command = [sys.executable, "-m", "engine.cli", "train", "--bank", str(paths["bank"]),
                   "--ledger", str(paths["ledger"]), "--truth", str(paths["truth"]),
                   "--out", str(folder / "model.json"), "--quiet"]
        subprocess.run(command, check=True, env=_child_env())
        lines.append('model = "model.json"')
    rules = folder / f"{scorer}.toml"
    rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(rules)


def baseline_command(paths: dict[str, Path], out: Path) -> list[str]:
    """The plain baseline on the same bank and ledger files."""
    return [sys.executable, "-m", "benchmarks.baseline", "--bank", str(paths["bank"]),
            "--ledger", str(paths["ledger"]), "--out", str(out)]


def run_system(command: list[str], out: Path, paths: dict[str, Path], log_path: Path,
               timeout: float | None) -> SystemResult:
    """Run one matcher in a child process (measured) and score its ``out/matches.csv``."""
    result = SystemResult(command=command)
    if out.exists():
        shutil.rmtree(out)
    code, result.wall_seconds, result.peak_rss_bytes = run_measured(command, log_path, timeout=timeout, env=_child_env())
    if code is None:
        result.status = f"timeout after {timeout:g}s"
    elif code != 0:
        result.status = f"exit {code}: {_failure_line(log_path)}"
    else:
        try:
            result.report = evaluate_files(out, paths["truth"], bank_path=paths["bank"])
            if "labels" in paths:
                result.recall_decidable = decidable_recall(out / "matches.csv", paths["truth"], paths["labels"])
        except ReconError as exc:
            result.status = f"evaluation failed: {exc}"
    return result


def decidable_recall(matches: Path, truth: Path, labels: Path) -> float | None:
    """Recall over the truth groups a careful person can decide: those none of whose bank lines
    ``labels.csv`` marks ``:undecidable`` (see :mod:`benchmarks.profiles`). Profiles keep
    different shares of undecidable lines, so this is the figure that compares them."""
    def keyed(frame: pl.DataFrame) -> pl.Series:
        ids = [pl.col(c).fill_null("").str.split(";").list.sort().list.join(";") for c in ("bank_ids", "ledger_ids")]
        return frame.select(pl.concat_str(ids, separator="|")).to_series()

    truth_frame = pl.read_csv(truth, infer_schema=False)
    undecidable = (
        pl.read_csv(labels, infer_schema=False)
        .filter((pl.col("side") == "bank") & pl.col("variant").str.ends_with(":undecidable"))["id"]
    )
    decidable = truth_frame.filter(
        ~pl.col("bank_ids").str.split(";").list.eval(pl.element().is_in(undecidable.implode())).list.any()
    )
    if decidable.height == 0:
        return None
    proposed = keyed(pl.read_csv(matches, infer_schema=False, columns=["bank_ids", "ledger_ids"]))
    return float(keyed(decidable).is_in(proposed.implode()).mean())


def run_size(size: int, seed: int, rules: str | None, keep: bool, timeout: float | None,
             data_dir: Path = DATA_DIR, mix: str = DEFAULT_MIX, baseline: bool = True,
             profile: str | None = None, open_items_ratio: float | None = None) -> SizeResult:
    """Generate one month of ``size`` bank lines (with ``profile``, when given), match it with the
    CLI (and the baseline), score it."""
    label = (profile or "none") + ("" if open_items_ratio is None else f"+ledger{open_items_ratio:g}x")
    result = SizeResult(size=size, seed=seed, mix=mix, profile=label)
    suffix = "" if profile is None and open_items_ratio is None else "-" + label.replace(",", "+")
    work = data_dir / f"bank{size}-seed{seed}-{mix}{suffix}"
    try:
        started = time.perf_counter()
        month = generate(size, seed=seed, mix=mix, profile=profile, open_items_ratio=open_items_ratio)
        paths = save(month, work)
        result.generate_seconds = time.perf_counter() - started
        result.bank_lines, result.ledger_lines = month["bank"].height, month["ledger"].height
        del month
        recon = run_system(recon_command(paths, work / "out", rules), work / "out", paths, work / "recon.log", timeout)
        result.wall_seconds, result.peak_rss_bytes = recon.wall_seconds, recon.peak_rss_bytes
        result.status, result.report, result.command = recon.status, recon.report, recon.command
        result.recall_decidable = recon.recall_decidable
        if baseline:
            result.baseline = run_system(baseline_command(paths, work / "baseline"), work / "baseline", paths,
                                         work / "baseline.log", timeout)
    finally:
        if not keep and work.exists():
            shutil.rmtree(work)
    return result


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> list[str]:
    """One markdown bullet per fact about the machine and software versions."""
    memory = psutil.virtual_memory().total / 2**30
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return [
        f"- CPU: {_cpu_model()}, {psutil.cpu_count(logical=False) or '?'} cores / "
        f"{os.cpu_count()} threads; RAM {memory:.1f} GiB; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"polars {_version('polars')}, duckdb {_version('duckdb')}, numpy {_version('numpy')}",
        f"- recon at git {_git_revision()}",
    ]


def results_table(results: list[SizeResult]) -> str:
    """The markdown table of a run: one row per size and system (recon, then the baseline)."""
    types = sorted({t for r in results for _, sys_ in r.systems() if sys_.report for t in sys_.report.truth_by_type})
    header = ["size", "system", "bank lines", "ledger lines", "profile", "gen s", "wall s", "peak RSS MB",
              "precision", "recall", "recall decidable", *[f"recall {t}" for t in types], "auto error",
              *[f"auto error {t}" for t in types], "wrong books", *[f"wrong books {t}" for t in types],
              "auto coverage", "ceiling", "auto cov truth", "brier", "adj ok", "status"]
    lines = ["| " + " | ".join(header) + " |", "|---:|---|" + "---:|" * (len(header) - 3) + "---|"]
    for r in results:
        for name, run in r.systems():
            rep = run.report
            cells = [
                f"{r.size:,}", name, f"{r.bank_lines:,}", f"{r.ledger_lines:,}", r.profile,
                f"{r.generate_seconds:.1f}" if name == "recon" else "",
                "n/a" if run.wall_seconds is None else f"{run.wall_seconds:.1f}",
                "n/a" if run.peak_rss_bytes is None else f"{run.peak_rss_bytes / 2**20:,.0f}",
                format_ratio(rep.precision if rep else None), format_ratio(rep.recall if rep else None),
                format_ratio(run.recall_decidable),
                *[format_ratio(rep.recall_by_type.get(t) if rep else None) for t in types],
                format_ratio(rep.auto_error_rate if rep else None),
                *[format_ratio(rep.auto_error_rate_by_type.get(t) if rep else None) for t in types],
                format_ratio(rep.auto_wrong_books_rate if rep else None),
                *[format_ratio(rep.auto_wrong_books_rate_by_type.get(t) if rep else None) for t in types],
                format_ratio(rep.auto_coverage if rep else None),
                format_ratio(rep.auto_coverage_ceiling if rep else None),
                format_ratio(rep.auto_coverage_truth if rep else None),
                "n/a" if rep is None or rep.brier_score is None else f"{rep.brier_score:.4f}",
                format_ratio(rep.adjustment_total_accuracy if rep else None),
                run.status.replace("|", "/"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_tables(results: list[SizeResult]) -> str:
    """Per recon run with confidences: the reliability table (proposals, mean confidence and share
    exactly right per confidence bin)."""
    parts = []
    for r in results:
        for name, run in r.systems():
            rep = run.report
            if name != "recon" or rep is None or not rep.calibrated:
                continue
            parts += [f"Reliability, {r.size:,} bank lines, profile `{r.profile}` ({name}; Brier "
                      f"{rep.brier_score:.4f} over {rep.calibrated:,} proposals):", "", *rep.reliability_markdown(), ""]
    return "\n".join(parts)


def _shown(command: list[str]) -> str:
    root = str(ROOT) + os.sep
    return shlex.join([Path(command[0]).name, *(a.removeprefix(root) for a in command[1:])])


def section(results: list[SizeResult], argv: list[str], started: datetime | None = None,
            machine: list[str] | None = None) -> str:
    """A RESULTS.md section dated when the run started: machine, exact commands, table."""
    when = (started or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {when}", "", *(machine or machine_info()), "",
             f"Command: `python -m benchmarks.run {shlex.join(argv)}`"]
    mixes = sorted({r.mix for r in results})
    if mixes:
        lines.append(f"Case mix: {', '.join(f'`{m}`' for m in mixes)} (see `benchmarks/generate.py`)")
    profiles = sorted({r.profile for r in results} - {"none"})
    if profiles:
        lines.append(f"Profiles: {', '.join(f'`{p}`' for p in profiles)} (see `benchmarks/profiles.py`)"
                     + (f"; `{HOLDOUT_PROFILE}` is held out: never tune on it" if HOLDOUT_PROFILE in profiles else ""))
    example = next((r.command for r in results if r.command), None)
    if example:
        lines.append(f"Each size runs: `{_shown(example)}`")
    baseline = next((r.baseline.command for r in results if r.baseline and r.baseline.command), None)
    if baseline:
        lines.append(f"Baseline: `{_shown(baseline)}`")
    lines += ["", "Rows per size: `recon`, then `baseline` (exact amount, +-7 days, first-come greedy, "
              "one-to-one) on the same files. `adj ok`: correct groups whose adjustments total the truth's.",
              "", results_table(results), ""]
    calibration = calibration_tables(results)
    if calibration:
        lines += [calibration]
    return "\n".join(lines)


def append_results(text: str, path: Path = RESULTS) -> None:
    """Append a section to RESULTS.md, writing the explanatory header first if the file is new."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8") as f:
        if new:
            f.write(RESULTS_HEADER)
        f.write("\n" + text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="bank lines per generated month (default: 10000 100000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", choices=sorted(MIXES), default=DEFAULT_MIX,
                        help=f"case mix of the generated months (default {DEFAULT_MIX})")
    parser.add_argument("--profile", metavar="NAME[,NAME]",
                        help="variation profile(s) of benchmarks/profiles.py for the months (e.g. all)")
    parser.add_argument("--holdout", action="store_true",
                        help=f"also run, for each size, a month of the held-out profile '{HOLDOUT_PROFILE}' "
                             "(never tune on it)")
    parser.add_argument("--open-items-ratio", type=float, metavar="R", help="ledger rows per bank row")
    parser.add_argument("--no-baseline", action="store_true", help="do not run the plain baseline")
    parser.add_argument("--rules", metavar="FILE", help="rule-set file passed to recon match")
    parser.add_argument("--scorer", choices=["rules", "estimated", "learned"], default="rules",
                        help="scorer of the recon runs (learned: trained first on a plain "
                             f"{TRAINING_LINES:,}-line month of another seed)")
    parser.add_argument("--keep", action="store_true", help="keep generated data and outputs")
    parser.add_argument("--timeout", type=float, help="seconds before a recon match run is killed")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to append to")
    parser.add_argument("--no-append", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.rules and not Path(args.rules).is_file():
        parser.error(f"rule file not found: {args.rules}")
    rules = str(Path(args.rules).resolve()) if args.rules else None
    if args.scorer != "rules":
        if rules:
            parser.error("--scorer and --rules: put [scoring] in the rule file instead")
        rules = scorer_rules(args.scorer, args.seed)
    try:
        if args.profile is not None or args.open_items_ratio is not None:
            resolve_profile(args.profile, open_items_ratio=args.open_items_ratio)
    except ValueError as exc:
        parser.error(str(exc))
    profiles = [args.profile] + ([HOLDOUT_PROFILE] if args.holdout and args.profile != HOLDOUT_PROFILE else [])
    started, machine = datetime.now(UTC), machine_info()  # the load before we add ours
    results = []
    for size in args.sizes:
        for profile in profiles:
            shown = f"{size:,} bank lines" + (f", profile {profile}" if profile else "")
            print(f"benchmark: {shown} ...", file=sys.stderr, flush=True)
            ratio = args.open_items_ratio if profile == args.profile else None
            result = run_size(size, args.seed, rules, args.keep, args.timeout, mix=args.mix,
                              baseline=not args.no_baseline, profile=profile, open_items_ratio=ratio)
            said = ", ".join(f"{name} {run.status}" for name, run in result.systems())
            print(f"benchmark: {shown}: generated in {result.generate_seconds:.1f}s, {said}",
                  file=sys.stderr, flush=True)
            results.append(result)
    text = section(results, argv, started, machine)
    print(text)
    if not args.no_append:
        append_results(text, args.results)
        print(f"appended to {args.results}", file=sys.stderr)
    return 0 if all(run.status == "ok" for r in results for _, run in r.systems()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
