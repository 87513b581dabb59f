"""Rezolus shared core: frame codec, bus, histograms, config, logging and lifecycle."""

__version__ = "0.1.0"
