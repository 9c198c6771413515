"""Feed tests: let pytest rewrite the asserts of the shared helpers (tests/feeds/helpers.py)."""

import pytest

pytest.register_assert_rewrite("tests.feeds.helpers")
