"""Rule sets: the analyst-editable parameters of matching (windows, tolerances, weights,
thresholds), validated on load. Building blocks live in the engine; the numbers live here."""

from rules.model import RuleSet, default_rules, load_rules

__all__ = ["RuleSet", "load_rules", "default_rules"]
