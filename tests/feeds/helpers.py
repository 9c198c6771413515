"""Helpers shared by the feed tests: the real sample files, result checks, fuzzing.

The real files sit in ``../shared/realdata`` beside the checkout (in CI as on a developer's
machine); tests that need them skip when the folder is absent. ``tests/feeds/conftest.py``
registers this module for pytest's assertion rewriting, so a failing check here reports its
values as an assert in a test module does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import strategies as st

from models.errors import FeedFormatError
from models.schema import BALANCE_SCHEMA, BANK_SCHEMA, REJECTS_SCHEMA

#: ``../shared/realdata`` beside the checkout
REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


# --- the real sample files ------------------------------------------------------------------


def needs_shared(folder: Path = REALDATA) -> pytest.MarkDecorator:
    """A marker that skips a test when ``folder`` (part of the real data) is absent.

    Parameters
    ----------
    folder
        The folder the test reads from.

    Returns
    -------
    pytest.MarkDecorator
        ``pytest.mark.skipif`` with a reason naming the folder.
    """
    return pytest.mark.skipif(
        not folder.is_dir(), reason=f"shared real sample data not found at {folder}"
    )


def real_files(folder: Path) -> list[str]:
    """The names of the files in ``folder``, sorted; none when the folder is absent.

    Parameters
    ----------
    folder
        A folder of real sample files (``REALDATA / "camt"``).

    Returns
    -------
    list[str]
        File names, for parametrizing and for fuzzing seeds.
    """
    return sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []


def real_path(folder: Path, name: str) -> str:
    """The path of real file ``name`` in ``folder``; skips the test when the folder is absent.

    Parameters
    ----------
    folder
        A folder of real sample files.
    name
        A file name in it.

    Returns
    -------
    str
        ``str(folder / name)``.
    """
    if not folder.is_dir():
        pytest.skip(f"shared real-data folder not found at {folder} (it sits beside the checkout in CI)")
    return str(folder / name)


def check_facts_cover_files(folder: Path, facts: dict[str, dict], kind: str) -> None:
    """Assert that every real file in ``folder`` has its facts recorded (skip without it).

    Parameters
    ----------
    folder
        A folder of real sample files.
    facts
        The test module's facts per file name.
    kind
        How the format is named in the failure message ("camt", "OFX", "MT940").
    """
    if not folder.is_dir():
        pytest.skip(f"shared real-data folder not found at {folder}")
    assert set(real_files(folder)) == set(facts), f"a new real {kind} file needs its facts here"


# --- results of the bank statement readers (OFX, MT940, camt) -------------------------------


def load_expected(sample: Path) -> dict:
    """The reviewed expected output stored beside ``sample`` (``NAME.expected.json``).

    Parameters
    ----------
    sample
        A sample statement in ``tests/feeds/data``.

    Returns
    -------
    dict
        The parsed JSON (``rows_read``, ``accounts``, ``rows``, ``rejects``, ``balances``, ...).
    """
    return json.loads(sample.with_suffix(".expected.json").read_text(encoding="utf-8"))


def check_result_shape(result, format: str) -> None:
    """Assert a bank statement reader's result has the canonical schemas and counts.

    Parameters
    ----------
    result
        A :class:`models.schema.FeedResult`.
    format
        The reader's ``FORMAT``.
    """
    assert result.frame.schema == pl.Schema(BANK_SCHEMA)
    assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)
    assert result.balances.schema == pl.Schema(BALANCE_SCHEMA)
    assert result.rows_read == result.frame.height + result.rejects.height
    assert result.format == format and result.side == "bank"


def check_expected(result, expected: dict, format: str, raw_ok: Callable[[str], bool]) -> None:
    """Assert a bank statement reader's result equals a reviewed expected output.

    Parameters
    ----------
    result
        A :class:`models.schema.FeedResult`.
    expected
        From :func:`load_expected`: an ``id`` of ``"fp-"`` stands for any fingerprint id,
        dates are ISO text, each reject gives a ``reason_contains`` text.
    format
        The reader's ``FORMAT``.
    raw_ok
        Whether a reject's ``raw`` text looks like the record of this format.
    """
    check_result_shape(result, format)
    assert result.rows_read == expected["rows_read"]
    assert result.accounts == expected["accounts"]
    rows = result.frame.to_dicts()
    assert len(rows) == len(expected["rows"])
    for got, want in zip(rows, expected["rows"], strict=True):
        for key, value in want.items():
            if key == "id" and value == "fp-":
                assert re.fullmatch(r"fp-[0-9a-f]{16}", got["id"]), got
            elif key == "date":
                assert got["date"] == dt.date.fromisoformat(value), (got, want)
            else:
                assert got[key] == value, (key, got, want)
    rejects = result.rejects.to_dicts()
    assert [r["line"] for r in rejects] == [r["line"] for r in expected["rejects"]]
    for got, want in zip(rejects, expected["rejects"], strict=True):
        assert want["reason_contains"] in got["reason"], got
        assert raw_ok(got["raw"]), got
    for note in expected.get("notes_contain", []):
        assert any(note in n for n in result.notes), result.notes
    balances = result.balances.to_dicts()
    assert len(balances) == len(expected["balances"])
    for got, want in zip(balances, expected["balances"], strict=True):
        for key, value in want.items():
            got_value = got[key].isoformat() if key == "date" else got[key]
            assert got_value == value, (key, got, want)


def check_missing_file_and_directory(read: Callable, folder: Path, name: str) -> None:
    """Assert ``read`` names a missing file and a directory in its FeedFormatError.

    Parameters
    ----------
    read
        The reader (``camt.read``).
    folder
        An existing directory (``tmp_path``).
    name
        A file name that does not exist in ``folder``.
    """
    with pytest.raises(FeedFormatError, match="not found"):
        read(str(folder / name))
    with pytest.raises(FeedFormatError, match="directory"):
        read(str(folder))


def check_whole_file_problem(read: Callable, path: Path, content: bytes, message: str) -> None:
    """Assert that ``read`` refuses a file holding ``content`` with ``message`` in the error.

    Parameters
    ----------
    read
        The reader.
    path
        Where to write the file.
    content
        The file's bytes.
    message
        Text the :class:`FeedFormatError` must contain.
    """
    path.write_bytes(content)
    with pytest.raises(FeedFormatError) as error:
        read(str(path))
    assert message in str(error.value)


# --- fuzzing --------------------------------------------------------------------------------

#: edit plans for :func:`mutate`: (operation, where as a fraction of the length, payload)
MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "delete", "insert", "duplicate"]), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
    min_size=1, max_size=6,
)


def mutate(data: bytes, plan, *, copy: int = 80) -> bytes:
    """``data`` with the edits of ``plan`` (drawn from :data:`MUTATIONS`) applied in order.

    Parameters
    ----------
    data
        A real or sample file.
    plan
        (operation, position fraction, payload) tuples: flip a byte, delete a run, insert the
        payload, or duplicate the ``copy`` bytes that follow the position.
    copy
        How many bytes a "duplicate" edit repeats.

    Returns
    -------
    bytes
        The mutated file.
    """
    buffer = bytearray(data)
    for op, where, payload in plan:
        if not buffer:
            break
        pos = int(where * (len(buffer) - 1))
        if op == "flip":
            buffer[pos] ^= payload[0] or 1
        elif op == "delete":
            del buffer[pos: pos + len(payload) * 3]
        elif op == "insert":
            buffer[pos:pos] = payload
        else:
            buffer[pos:pos] = buffer[pos: pos + copy]
    return bytes(buffer)


def read_fuzzed(read: Callable, path: Path, data: bytes, format: str):
    """Write ``data`` to ``path`` and read it: a result of the right shape, or None.

    Parameters
    ----------
    read
        The reader.
    path
        Where to write the file.
    data
        The fuzzed bytes.
    format
        The reader's ``FORMAT``.

    Returns
    -------
    FeedResult or None
        None when the reader refused the whole file with a :class:`FeedFormatError` (any
        other exception fails the test).
    """
    path.write_bytes(data)
    try:
        result = read(str(path))
    except FeedFormatError:
        return None
    check_result_shape(result, format)
    return result
