import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the throwaway PostgreSQL server (fixtures postgres_url, postgres_database)
pytest_plugins = ("tests.pg_server",)


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout (real sample files); skip when absent."""
    if not (SHARED / "realdata").is_dir():
        pytest.skip(f"shared sample data not found at {SHARED} (it sits beside the checkout in CI)")
    return SHARED
