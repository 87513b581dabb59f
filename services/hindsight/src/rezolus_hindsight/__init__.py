"""Rezolus hindsight."""
