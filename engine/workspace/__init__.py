"""The workspace and decision store: one DuckDB file a set of books keeps between runs.

- :mod:`engine.workspace.store`: the file, its tables (lines, runs, proposals, rejects) and the
  recording of a run in one transaction;
- :mod:`engine.workspace.lock`: one process at a time;
- :mod:`engine.workspace.ingest`: lines added once each, conflicts reported;
- :mod:`engine.workspace.incremental`: what an incremental match run is given (the open lines);
- :mod:`engine.workspace.decisions`: the append-only decisions and each match's current state;
- :mod:`engine.workspace.review`: listing, accepting, rejecting, manual matches and undo;
- :mod:`engine.workspace.writeback`: accepted matches written to the books through adapters;
- :mod:`engine.workspace.whatif`: a rule set replayed against the decided history (nothing written);
- :mod:`engine.workspace.training`: the learned scorer trained from decisions (opt-in), saved as
  the workspace's scorer.

The matching stages never import this package; :mod:`engine.api` joins the two.
"""
