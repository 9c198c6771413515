"""The matching pipeline: workspace store, candidate generation, scoring, assignment, adapters.

The engine consumes canonical tables (``models.schema``) and never imports a particular feed.
"""
