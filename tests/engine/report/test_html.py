"""The report's HTML and CSV as a reader sees them: every value escaped (a description holding
``<script>`` is text), Chinese names as written, amounts with their currency's decimals, a
fragment to embed, and an empty period."""

from __future__ import annotations

import csv
import html as html_lib
from html.parser import HTMLParser

from engine.report import build_report, render_html, write_csv


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Collect:
    parser = _Collect()
    parser.feed(page)
    return parser


def test_a_script_in_a_description_is_inert_text(small_ws):
    page = render_html(build_report(small_ws, "2026-10", opening_balances={"HKD": "10000.00"}))
    parsed = _parse(page)
    assert "script" not in parsed.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt; FEE" in page
    assert "<script>alert(1)</script> FEE" in "".join(parsed.text)  # shown as the bank wrote it


def test_chinese_names_and_amounts_display_as_written(small_ws, tmp_path):
    report = build_report(small_ws, "2026-10", opening_balances={"HKD": "10000.00"})
    page = render_html(report)
    text = "".join(_parse(page).text)
    assert "TT INV-2 金港貿易有限公司" not in text  # B5 is matched: not a reconciling item
    assert "12,425.00" in text and "13,000.00" in text and "-575.00" in text
    path = write_csv(report, tmp_path / "october.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    fee = next(r for r in rows if r["ids"] == "B3")
    assert fee["description"] == "<script>alert(1)</script> FEE" and fee["amount"] == "-25.00"
    assert fee["to_books"] == "25.00" and fee["age_days"] == "11"


def test_chinese_names_of_open_lines_round_trip(small_ws, tmp_path):
    from engine import api

    undone = build_report(small_ws, "2026-10")
    match_id = next(i.match_id for i in undone.statements[0].items if i.category == "adjustment")
    api.unmatch(small_ws, match_id, reason="not this customer", by="controller")
    report = build_report(small_ws, "2026-10")
    page = render_html(report)
    assert "TT INV-2 金港貿易有限公司" in "".join(_parse(page).text)
    assert page.encode("utf-8").count("金港貿易有限公司".encode()) >= 2  # description and counterparty
    rows = list(csv.DictReader(write_csv(report, tmp_path / "r.csv").open(encoding="utf-8")))
    b5 = next(r for r in rows if r["ids"] == "B5")
    assert (b5["description"], b5["counterparty"]) == ("TT INV-2 金港貿易有限公司", "金港貿易有限公司")


def test_fragment_embeds_without_a_page(small_ws):
    fragment = render_html(build_report(small_ws, "2026-10"), fragment=True)
    assert fragment.lstrip().startswith('<div class="recon-report">')
    assert "<html" not in fragment and "<body" not in fragment and "<svg" in fragment


def test_a_period_with_nothing_in_it_renders(small_ws, tmp_path):
    report = build_report(small_ws, "2025-01")
    page = render_html(report)
    assert "nothing to reconcile" in html_lib.unescape(page)
    rows = list(csv.DictReader(write_csv(report, tmp_path / "empty.csv").open(encoding="utf-8")))
    assert rows == []
