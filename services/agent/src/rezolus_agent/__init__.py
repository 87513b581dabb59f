"""Rezolus agent."""
