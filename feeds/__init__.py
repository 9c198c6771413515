"""Feeds stage: turn input files into recon's canonical tables, and nothing else.

Each feed reads one kind of file (canonical bank/ledger CSV, FX rates, a processor's payout
report) into the frames of :mod:`models.schema`. A file that cannot be read raises
:class:`models.errors.FeedFormatError`; a bad row goes to a rejects table and the rest loads.
"""

from feeds.canonical_csv import load_bank, load_ledger, read_bank_csv, read_ledger_csv
from feeds.fx import read_fx_csv
from feeds.processor import read_processor_file

__all__ = [
    "load_bank",
    "load_ledger",
    "read_bank_csv",
    "read_fx_csv",
    "read_ledger_csv",
    "read_processor_file",
]
