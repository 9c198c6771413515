"""Candidate generation (engine stage 2): which lines and items are worth scoring together.

One module a generator, all vectorized and bounded per partition (:mod:`engine.candidates.caps`):

- :mod:`~engine.candidates.pairs` -- one bank line x one ledger item (exact amount, tolerance
  band, same payer, quoted reference);
- :mod:`~engine.candidates.compound` -- one line settling several items, instalments, batches,
  payer subsets;
- :mod:`~engine.candidates.fx` -- a receipt of an item in another currency;
- :mod:`~engine.candidates.payouts` -- processor payouts against the orders they settle;
- :mod:`~engine.candidates.generate` -- runs the group generators and checks every group balances.

:mod:`~engine.candidates.groups` is the shape every group generator returns and
:mod:`~engine.candidates.tolerance` the amount band they share.
"""
