#!/usr/bin/env python3
"""Project task runner: needs only python3.

    python3 dev.py sample   # set up .venv, run `recon match` on the bundled sample, print the summary
    python3 dev.py test     # set up .venv, run the whole test suite

Set-up is idempotent: the virtualenv is created once and re-installed only when pyproject.toml
changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".recon-installed"


def _run(cmd: list[str], **kw) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under whatever python3 the machine has
        sys.exit(f"recon needs Python >= 3.11 (this is {sys.version.split()[0]})")
    if not PY.exists():
        if _run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("could not create the virtualenv (on Debian/Ubuntu: apt-get install python3-venv)")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    quiet = ["-q"] if os.environ.get("CI") else []
    if _run([PY, "-m", "pip", "install", *quiet, "--upgrade", "pip"]) != 0:
        sys.exit("pip upgrade failed")
    if _run([PY, "-m", "pip", "install", *quiet, "-e", ".[test]"]) != 0:
        sys.exit("installing recon and its dependencies failed")
    STAMP.write_text(digest)


def sample() -> int:
    setup()
    data = ROOT / "benchmarks" / "sample"
    out = ROOT / "out" / "sample"
    return _run([
        BIN / "recon", "match",
        "--bank", data / "bank.csv",
        "--ledger", data / "ledger.csv",
        "--fx", data / "fx.csv",
        "--processor", data / "stripe_payouts.csv",
        "--out", out,
        "--truth", data / "truth.csv",
    ])


def ensure_postgres() -> None:
    """The PostgreSQL ledger feed is tested against a real, throwaway server (started by the
    test fixture). Install the server binaries when missing and this machine can (root with
    apt-get); otherwise those tests skip and say why."""
    if list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return
    if os.name != "posix" or os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        print("PostgreSQL binaries not found and cannot be installed here: its tests will skip")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = ["-qq"]
    if _run(["apt-get", *quiet, "update"], env=env) != 0 or _run(
        ["apt-get", *quiet, "install", "-y", "--no-install-recommends", "postgresql"], env=env
    ) != 0:
        print("installing PostgreSQL failed: its tests will skip")


def ensure_chromium() -> None:
    """The review page's browser tests drive the system's headless Chromium (a browser
    automation library's own browser download is not available here). Install it when missing
    and this machine can (root with apt-get); otherwise those tests skip and say why."""
    # with a font for Chinese (the pages show 陳大文 and 金港貿易有限公司; without one the
    # screenshots show empty boxes)
    have_fonts = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").exists()
    if Path("/usr/bin/chromium").exists() and have_fonts:
        return
    if os.name != "posix" or os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        print("Chromium or a CJK font is missing and cannot be installed here: the browser tests skip "
              "or show Chinese as boxes")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if _run(["apt-get", "-qq", "update"], env=env) != 0 or _run(
        ["apt-get", "-qq", "install", "-y", "--no-install-recommends", "chromium", "fonts-noto-cjk"], env=env
    ) != 0:
        print("installing Chromium failed: the browser tests will skip")


def test(extra: list[str]) -> int:
    setup()
    ensure_postgres()
    ensure_chromium()
    return _run([PY, "-m", "pytest", *extra])


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"sample", "test", "setup"}:
        print(__doc__)
        return 2
    cmd = sys.argv[1]
    if cmd == "setup":
        setup()
        return 0
    if cmd == "sample":
        return sample()
    return test(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
