"""Month-end report stage: the report as HTML, a page that needs nothing but itself.

:func:`render_html` renders a :class:`~engine.report.statement.Report` with Jinja2 (every value
escaped by the template engine: a description holding ``<script>`` is shown as text), amounts
formatted for their currency, and the charts drawn as inline SVG: no script, no stylesheet and
no font is fetched, so the file opens the same offline, in a mail attachment or in an archive.
``fragment=True`` gives the body only (its styles scoped under ``.recon-report``), for a page
that embeds the report (the web app's ``/report``).
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment

from engine.report.statement import AGE_BUCKETS, CATEGORIES, OUTCOMES, Report, format_amount

__all__ = ["render_html", "DEFAULT_MAX_ROWS"]

#: detail rows shown per category (the CSV holds every item)
DEFAULT_MAX_ROWS = 500

_COLORS = {
    "auto": "#2e7d32", "review": "#66bb6a", "manual": "#1565c0", "pending": "#f9a825", "open": "#c62828",
    "unmatched_bank": "#c62828", "deposit_in_transit": "#1565c0", "outstanding_payment": "#ef6c00",
}
_SHORT = {"unmatched_bank": "bank lines not in the books", "deposit_in_transit": "deposits in transit",
          "outstanding_payment": "outstanding payments"}

_STYLE = """
.recon-report { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK TC",
  "PingFang TC", "Microsoft JhengHei", "Hiragino Sans", sans-serif; color: #1b1b1b; line-height: 1.4;
  max-width: 72rem; margin: 0 auto; padding: 1rem; }
.recon-report h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
.recon-report h2 { font-size: 1.2rem; margin: 1.8rem 0 .5rem; border-bottom: 1px solid #ccc; }
.recon-report h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.recon-report .meta { color: #555; font-size: .9rem; }
.recon-report table { border-collapse: collapse; margin: .4rem 0; font-size: .9rem; }
.recon-report th, .recon-report td { padding: .2rem .6rem; border-bottom: 1px solid #e3e3e3; text-align: left;
  vertical-align: top; }
.recon-report th { background: #f4f4f4; }
.recon-report td.date { white-space: nowrap; }
.recon-report td.num, .recon-report th.num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.recon-report tr.total td { font-weight: 600; border-top: 2px solid #888; }
.recon-report tr.check td { color: #2e7d32; }
.recon-report tr.check.bad td { color: #c62828; font-weight: 600; }
.recon-report .statement td:first-child { min-width: 28rem; }
.recon-report .source { color: #666; font-size: .8rem; }
.recon-report details { margin: .3rem 0; }
.recon-report summary { cursor: pointer; }
.recon-report .notes li { color: #8a4b00; }
.recon-report .sign { margin-top: 2rem; display: flex; gap: 3rem; flex-wrap: wrap; }
.recon-report .sign div { border-top: 1px solid #333; min-width: 14rem; padding-top: .2rem; font-size: .85rem; }
.recon-report .legend span { display: inline-block; margin-right: 1rem; font-size: .85rem; }
.recon-report .swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
  vertical-align: -.1rem; }
.recon-report svg text { font-family: inherit; font-size: 11px; fill: #333; }
@media print { .recon-report details { display: block; } .recon-report summary { display: none; } }
"""

_TEMPLATE = """\
{%- macro amount(minor, currency) -%}{{ fmt(minor, currency) }}{%- endmacro -%}
<div class="recon-report">
<style>{{ style }}</style>
<h1>Bank reconciliation statement &mdash; {{ r.period }}</h1>
<p class="meta">Period {{ r.start }} to {{ r.end }} &middot; workspace {{ r.workspace }} &middot;
 generated {{ r.generated_at.strftime("%Y-%m-%d %H:%M") }} UTC &middot; rule set {{ r.rules_version }}
 &middot; cash-book types: {{ r.cash_book_types | join(", ") }}</p>
{% if not r.statements %}<p>The workspace holds no bank line and no cash-book entry dated up to {{ r.end }}:
 nothing to reconcile.</p>{% endif %}
{% for s in r.statements %}
<h2>{{ s.currency }} &mdash; {{ s.accounts | join(", ") if s.accounts else "bank account" }}</h2>
<table class="statement">
<tr><th>At {{ r.end }} (each reconciling item as it moves the statement balance to the books)</th>
 <th class="num">{{ s.currency }}</th></tr>
<tr><td>Balance per bank statement<br><span class="source">{{ s.statement_source }}</span></td>
 <td class="num">{{ amount(s.statement_minor, s.currency) }}</td></tr>
{% for key, title in categories.items() %}{% if s.count(key) or key != "statement_gap" %}
<tr><td>{{ title }} ({{ s.count(key) }})</td>
 <td class="num">{{ amount(-s.total(key), s.currency) }}</td></tr>
{% endif %}{% endfor %}
<tr class="total"><td>Balance per books</td><td class="num">{{ amount(s.book_minor, s.currency) }}</td></tr>
<tr><td class="source">opening balance ({{ s.opening_source }})</td>
 <td class="num source">{{ amount(s.opening_minor, s.currency) }}</td></tr>
<tr><td class="source">+ {{ s.cash_book_entries }} cash-book entries dated up to {{ r.end }}</td>
 <td class="num source">{{ amount(s.cash_book_minor, s.currency) }}</td></tr>
<tr><td class="source">+ open items settled by {{ s.settled_matches }} accepted matches cleared by {{ r.end }}</td>
 <td class="num source">{{ amount(s.settled_minor, s.currency) }}</td></tr>
<tr class="check{{ '' if s.unexplained_minor == 0 else ' bad' }}"><td>Difference statement &minus; books
 {{ amount(s.difference_minor, s.currency) }} = reconciling items
 {{ amount(s.difference_minor - s.unexplained_minor, s.currency) }}:
 {{ "balances to the cent" if s.unexplained_minor == 0 else "DOES NOT BALANCE" }}</td>
 <td class="num">{{ amount(s.unexplained_minor, s.currency) }}</td></tr>
</table>
{% for key, title in categories.items() %}{% set items = s.items | selectattr("category", "equalto", key) | list %}
{% if items %}
<details{{ " open" if key != "adjustment" and items | length <= 50 else "" }}>
<summary><strong>{{ title }}</strong>: {{ items | length }} item(s), {{ amount(-s.total(key), s.currency) }}</summary>
{% if key == "adjustment" %}
<table><tr><th>cause</th><th>account</th><th class="num">items</th><th class="num">amount</th></tr>
{% for row in causes(items) %}<tr><td>{{ row.cause }}</td><td>{{ row.account or "" }}</td>
 <td class="num">{{ row.items }}</td><td class="num">{{ amount(row.minor, s.currency) }}</td></tr>{% endfor %}
</table>
{% endif %}
<table>
<tr><th>date</th><th class="num">age (days)</th><th>{{ "match / bank lines" if key == "adjustment" else "id" }}</th>
 <th>description</th><th>counterparty</th><th>reference</th><th class="num">amount</th><th>note</th></tr>
{% for i in items[:max_rows] %}
<tr><td class="date">{{ i.date or "" }}</td><td class="num">{{ "" if i.age_days is none else i.age_days }}</td>
 <td>{{ (i.match_id ~ ": ") if key == "adjustment" else "" }}{{ i.ids | join(", ") }}</td>
 <td>{{ i.description or (i.cause ~ (" (" ~ i.account ~ ")" if i.account else "") if i.cause else "") }}</td>
 <td>{{ i.counterparty or "" }}</td><td>{{ i.reference or "" }}</td>
 <td class="num">{{ amount(i.amount_minor, s.currency) }}</td><td>{{ i.note or "" }}</td></tr>
{% endfor %}
{% if items | length > max_rows %}<tr><td colspan="8">&hellip; and {{ items | length - max_rows }} more
 (every item is in the CSV: recon report --csv)</td></tr>{% endif %}
</table>
</details>
{% endif %}{% endfor %}
{% endfor %}

<h2>Match rates over the month</h2>
{% if r.month_bank_lines %}
<p>{{ r.month_bank_lines }} bank line(s) dated {{ r.start }} to {{ r.end }}: what became of them.</p>
{{ outcome_svg | safe }}
<p class="legend">{% for key, label in outcomes.items() %}<span><span class="swatch" style="background:{{ colors[key] }}"></span>{{ label }}: {{ r.outcomes[key] }}</span>{% endfor %}</p>
{% for group, title in (("status", "By level: auto, review, manual"), ("match_type", "By match type"), ("evidence", "By evidence: a pair's reference level, or the group search that found it")) %}
<h3>{{ title }}</h3>
<table><tr><th>{{ group.replace("_", " ") }}</th><th class="num">matches</th><th class="num">accepted</th>
 <th class="num">rejected</th><th class="num">undone</th><th class="num">pending</th>
 <th class="num">bank lines accepted</th><th class="num">accepted of decided</th></tr>
{% for row in r.rates if row.group == group %}
<tr><td>{{ row.label }}</td><td class="num">{{ row.matches }}</td><td class="num">{{ row.accepted }}</td>
 <td class="num">{{ row.rejected }}</td><td class="num">{{ row.reversed }}</td><td class="num">{{ row.pending }}</td>
 <td class="num">{{ row.bank_lines }}</td>
 <td class="num">{{ "" if row.rate is none else "%.1f%%" % (row.rate * 100) }}</td></tr>
{% endfor %}</table>
{% endfor %}
{% else %}<p>No bank line is dated in the month.</p>{% endif %}

<h2>Unmatched items by age at {{ r.end }}</h2>
{% if age_total %}
{{ age_svg | safe }}
<p class="legend">{% for key, label in short.items() %}<span><span class="swatch" style="background:{{ colors[key] }}"></span>{{ label }}</span>{% endfor %}</p>
{% endif %}
<table><tr><th>currency</th><th>items</th>{% for label, _, _ in buckets %}<th class="num">{{ label }} days</th>{% endfor %}</tr>
{% for (currency, category), row in ageing %}
<tr><td>{{ currency }}</td><td>{{ short[category] }}</td>{% for a in row %}
 <td class="num">{{ a.items }}{% if a.items %}<br><span class="source">{{ amount(a.amount_minor, currency) }}</span>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>

{% if r.notes %}<h2>Notes</h2><ul class="notes">{% for n in r.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}

<h2>Definitions</h2>
<p class="source">Cash-book entries are the ledger items of the types {{ r.cash_book_types | join(", ") }} (already
 booked on the bank account); other ledger items (invoices, bills, orders, payroll, ...) reach the books when an
 accepted match settles them. A match is cleared by {{ r.end }} when it is accepted (or written back) and its bank
 lines and cash-book entries are dated up to then; decisions are as they stand now. Balance per books = opening
 balance + cash-book entries + open items settled by cleared matches. Each reconciling item is shown as it moves
 the statement balance to the book balance; together they equal the difference exactly (in minor units).</p>
<div class="sign"><div>Prepared by / date</div><div>Reviewed by / date</div></div>
</div>
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bank reconciliation {{ period }}</title></head>
<body>
{{ body | safe }}
</body></html>
"""

_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class _Cause:
    cause: str
    account: str | None
    items: int
    minor: int


def _causes(items) -> list[_Cause]:
    totals: dict[tuple[str, str | None], list[int]] = {}
    for item in items:
        slot = totals.setdefault((item.cause or "", item.account), [0, 0])
        slot[0] += 1
        slot[1] -= item.effect_minor  # as it moves the statement balance to the books
    return [_Cause(cause, account, n, minor) for (cause, account), (n, minor) in sorted(totals.items(),
                                                                                       key=lambda kv: kv[0][0])]


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _outcome_svg(report: Report) -> str:
    """One horizontal bar: the month's bank lines split by what became of them."""
    width, height = 720, 34
    total = report.month_bank_lines or 1
    x = 0.0
    parts = []
    for key, label in OUTCOMES.items():
        n = report.outcomes.get(key, 0)
        if not n:
            continue
        w = width * n / total
        parts.append(f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{_COLORS[key]}">'
                     f'<title>{_escape(label)}: {n} of {report.month_bank_lines} ({100 * n / total:.1f}%)</title></rect>')
        if w > 36:
            parts.append(f'<text x="{x + w / 2:.2f}" y="{height / 2 + 4}" text-anchor="middle" '
                         f'style="fill:#fff">{100 * n / total:.0f}%</text>')
        x += w
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" aria-label="the month\'s bank lines by outcome">{"".join(parts)}</svg>')


def _age_svg(report: Report) -> str:
    """Grouped bars: open reconciling items per age bucket (counts, every currency)."""
    categories = list(_SHORT)
    counts = {(c, b): 0 for c in categories for b, _, _ in AGE_BUCKETS}
    for row in report.ageing:
        counts[(row.category, row.bucket)] += row.items
    top = max(counts.values()) or 1
    width, height, left, bottom, top_pad = 720, 220, 40, 28, 12
    plot_h = height - bottom - top_pad
    group_w = (width - left) / len(AGE_BUCKETS)
    bar_w = group_w / (len(categories) + 1)
    parts = [f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#888"/>',
             f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{top}</text>',
             f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>']
    for g, (bucket, _, _) in enumerate(AGE_BUCKETS):
        gx = left + g * group_w
        parts.append(f'<text x="{gx + group_w / 2:.2f}" y="{height - 8}" text-anchor="middle">{_escape(bucket)} days</text>')
        for k, category in enumerate(categories):
            n = counts[(category, bucket)]
            h = plot_h * n / top
            bx = gx + bar_w / 2 + k * bar_w
            parts.append(f'<rect x="{bx:.2f}" y="{height - bottom - h:.2f}" width="{bar_w * 0.9:.2f}" height="{h:.2f}" '
                         f'fill="{_COLORS[category]}"><title>{_escape(_SHORT[category])}, {_escape(bucket)} days: '
                         f'{n}</title></rect>')
            if n:
                parts.append(f'<text x="{bx + bar_w * 0.45:.2f}" y="{height - bottom - h - 3:.2f}" '
                             f'text-anchor="middle">{n}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" aria-label="unmatched items by age">{"".join(parts)}</svg>')


def render_html(report: Report, *, fragment: bool = False, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    """The report as HTML.

    Parameters
    ----------
    report
        What :func:`~engine.report.statement.build_report` returned.
    fragment
        False: a whole page (``<!DOCTYPE html>``, UTF-8); True: the report's ``<div
        class="recon-report">`` only, with its own scoped ``<style>``, to place inside another
        page.
    max_rows
        Detail rows shown per category of reconciling items (the totals always cover every
        item; the CSV lists them all).

    Returns
    -------
    str
        Self-contained HTML: inline SVG charts, no script, nothing loaded from elsewhere.

    Examples
    --------
    >>> html = render_html(build_report("books.duckdb", "2026-10"))   # doctest: +SKIP
    >>> Path("october.html").write_text(html, encoding="utf-8")       # doctest: +SKIP
    """
    ageing_rows: dict[tuple[str, str], list] = {}
    for row in report.ageing:
        ageing_rows.setdefault((row.currency, row.category), []).append(row)
    body = _env.from_string(_TEMPLATE).render(
        r=report, style=_STYLE, categories=CATEGORIES, outcomes=OUTCOMES, colors=_COLORS, short=_SHORT,
        buckets=AGE_BUCKETS, fmt=format_amount, causes=_causes, max_rows=max_rows,
        outcome_svg=_outcome_svg(report), age_svg=_age_svg(report),
        age_total=sum(a.items for a in report.ageing), ageing=list(ageing_rows.items()),
    )
    if fragment:
        return body
    return _env.from_string(_PAGE).render(period=report.period, body=body)
