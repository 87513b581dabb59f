"""Rezolus recorder."""
