"""Preparation (engine stage 1): canonical frames -> comparison-ready columns.

- :mod:`engine.prepare.text`: text folding and bank channel prefixes;
- :mod:`engine.prepare.names`: payer / payee name keys;
- :mod:`engine.prepare.references`: reference keys and per-line reference profiles;
- :mod:`engine.prepare.orders`: shop order ids as graded keys (``#5022`` = ``5022`` = ``0005022``);
- :mod:`engine.prepare.features`: the prepared bank and ledger frames the later stages read.
"""
