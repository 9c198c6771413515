"""Domain schemas shared by every stage: money, canonical tables, errors, learned scorers."""
