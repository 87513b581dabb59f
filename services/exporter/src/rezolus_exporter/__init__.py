"""Rezolus exporter."""
