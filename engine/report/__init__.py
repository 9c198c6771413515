"""Month-end report stage: the bank reconciliation statement a controller signs, read from a
workspace after matching and review.

- :mod:`~engine.report.statement` -- :func:`build_report`: statement balance, book balance and
  the reconciling items summing exactly to their difference; match rates; unmatched items by age.
- :mod:`~engine.report.html` -- :func:`render_html`: a self-contained page (or a fragment to embed
  in another page) with inline SVG charts; nothing fetched from a network. Needs Jinja2 (the
  ``report`` extra).
- :mod:`~engine.report.csv_export` -- :func:`write_csv`: the statement as one CSV table.
"""

from __future__ import annotations

from engine.report.csv_export import write_csv
from engine.report.statement import Report, build_report, format_amount, parse_period
from models.errors import InputError

__all__ = ["Report", "build_report", "format_amount", "parse_period", "render_html", "write_csv"]


def render_html(report: Report, *, fragment: bool = False, max_rows: int | None = None) -> str:
    """:func:`engine.report.html.render_html` (imported on first use: it needs Jinja2).

    Raises
    ------
    InputError
        Jinja2 is not installed (``pip install 'recon[report]'``).
    """
    try:
        from engine.report import html
    except ModuleNotFoundError as exc:
        if exc.name != "jinja2":
            raise
        raise InputError("the HTML report needs Jinja2: pip install 'recon[report]' (or jinja2)") from None
    return html.render_html(report, fragment=fragment,
                            max_rows=html.DEFAULT_MAX_ROWS if max_rows is None else max_rows)
