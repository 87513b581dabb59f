"""Rezolus viewer: serve one page of charts for a parquet recording."""
