"""Shared by the prepare tests: apply an expression builder to one value."""

import polars as pl


def one(function, value):
    """Apply an expression builder to a one-row String column and return the value."""
    frame = pl.DataFrame({"value": [value]}, schema={"value": pl.String})
    return frame.select(function(pl.col("value"))).item()
