"""Feeds stage: turn input files into recon's canonical tables, and nothing else.

Each format module reads one kind of file (canonical CSV, OFX, MT940, camt, bank CSV exports
declared as profiles, Parquet, database tables, Stripe / Shopify Payments / PayPal exports) into
the frames of :mod:`models.schema`; :mod:`feeds.registry` recognises a file's format by its
content and loads several files for one side with each line kept once. A file that cannot be
read raises :class:`models.errors.FeedFormatError`; a bad row goes to a rejects table and the
rest loads.
"""

from feeds.canonical_csv import read_bank_csv, read_ledger_csv
from feeds.fx import read_fx_csv
from feeds.processor import read_processor_file
from feeds.registry import detect, load, load_bank, load_ledger, load_processor, read_any

__all__ = [
    "detect",
    "load",
    "load_bank",
    "load_ledger",
    "load_processor",
    "read_any",
    "read_bank_csv",
    "read_fx_csv",
    "read_ledger_csv",
    "read_processor_file",
]


def __getattr__(name: str):
    # inspection and profile drafting load on first use (they pull in every reader)
    if name in ("inspect_file", "format_inspection"):
        from feeds import inspect as _inspect

        return getattr(_inspect, name)
    if name == "draft_profile":
        from feeds.bank_csv import draft_profile

        return draft_profile
    raise AttributeError(f"module 'feeds' has no attribute {name!r}")
