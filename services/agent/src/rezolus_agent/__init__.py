"""Rezolus agent: eBPF and procfs samplers publishing cumulative frames."""

__version__ = "0.1.0"
