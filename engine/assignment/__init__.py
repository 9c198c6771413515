"""Assignment (engine stage 4): which of the scored candidates become proposals.

- :mod:`~engine.assignment.pairs` -- one-to-one: a globally consistent matching of bank lines and
  ledger items maximising the total evidence, exact per connected component where it can be,
  with each choice's margin over its best alternative;
- :mod:`~engine.assignment.groups` -- pairs and candidate groups together: a weighted set
  packing per component (enumeration, integer program, or greedy for the largest), a line or
  item used at most once.
"""
