"""The alias table as a run reads it (``recon match --aliases FILE``): the feed reads the file
byte-exact and names the line of a bad row; the engine refuses an entry that is no name."""

from __future__ import annotations

import polars as pl
import pytest

from engine.prepare.names import checked_aliases
from feeds.aliases import ALIAS_SCHEMA
from feeds.aliases import read_aliases as read_alias_file
from models.errors import FeedFormatError


def read_aliases(path):
    """What a run does with --aliases FILE: the feed reads the file, the engine checks the names."""
    return checked_aliases(read_alias_file(path))


def _write(tmp_path, text: str, name: str = "aliases.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_read_aliases_keeps_names_byte_exact(tmp_path):
    path = _write(tmp_path, "name,alias\n陳大文,CHAN TAI MAN\n金港貿易有限公司,GOLDEN HARBOUR TRADING CO LTD\n")
    table = read_aliases(path)
    assert table.schema == pl.Schema(ALIAS_SCHEMA)
    assert table.select("name", "alias", "source_line").rows() == [
        ("陳大文", "CHAN TAI MAN", 2),
        ("金港貿易有限公司", "GOLDEN HARBOUR TRADING CO LTD", 3),
    ]
    assert table["name"][1].encode("utf-8") == "金港貿易有限公司".encode()


def test_read_aliases_header_in_any_order_bom_blank_lines_quotes_and_extra_columns(tmp_path):
    path = _write(tmp_path, '\ufeffNote, Alias ,NAME\r\n\r\nold name,"KAM WING, LTD",金永\r\n')
    assert read_aliases(path).select("name", "alias", "source_line").rows() == [("金永", "KAM WING, LTD", 3)]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name,other\n陳大文,CHAN TAI MAN\n", 1, "no 'alias' column"),
        ("alias\nCHAN TAI MAN\n", 1, "no 'name' column"),
        ("name,alias\n陳大文,CHAN TAI MAN\n金港貿易\n", 3, "has no alias"),
        ("name,alias\n陳大文,CHAN TAI MAN\n金港貿易,  \n", 3, "the alias is empty"),
        ("name,alias\n,CHAN TAI MAN\n", 2, "the name is empty"),
        ("name,alias\n陳大文,12345\n", 2, "'12345' is no name"),
        ("name,alias\n陳大文,\nx,\n", 2, "1 more problem"),
    ],
)
def test_read_aliases_bad_rows_name_the_file_and_line(tmp_path, text, line, words):
    path = _write(tmp_path, text)
    with pytest.raises(FeedFormatError) as raised:
        read_aliases(path)
    assert raised.value.line == line
    assert str(raised.value).startswith(f"{path}:{line}: ")
    assert words in str(raised.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        ("name,alias\n陳大文,CHAN\n".encode("big5"), "is not UTF-8"),
    ],
)
def test_read_aliases_unreadable_files(tmp_path, content, words):
    path = tmp_path / "aliases.csv"
    path.write_bytes(content)
    with pytest.raises(FeedFormatError, match=words) as raised:
        read_aliases(path)
    assert str(path) in str(raised.value)


def test_read_aliases_missing_file_names_it(tmp_path):
    with pytest.raises(FeedFormatError, match="file not found") as raised:
        read_aliases(tmp_path / "missing.csv")
    assert "missing.csv" in str(raised.value)
