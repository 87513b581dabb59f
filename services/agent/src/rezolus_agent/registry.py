"""Discovery of sampler modules: every ``rezolus_agent.samplers.<name>`` with a ``SAMPLER``.

Discovery happens when asked (never at import time); modules whose names start
with ``_`` are helpers, not samplers.  A sampler is a ``ProcSampler`` or a
``BpfSampler`` whose ``name`` is its module's name.
"""

from __future__ import annotations

import importlib
import pkgutil

from rezolus_agent import samplers
from rezolus_agent.sampler import BpfSampler, ProcSampler, Sampler


def available() -> dict[str, type[Sampler]]:
    """Sampler name → class, sorted by name."""
    found: dict[str, type[Sampler]] = {}
    for module_info in pkgutil.iter_modules(samplers.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{samplers.__name__}.{module_info.name}")
        cls = getattr(module, "SAMPLER", None)
        if isinstance(cls, type) and issubclass(cls, (ProcSampler, BpfSampler)) and cls.name == module_info.name:
            found[cls.name] = cls
    return dict(sorted(found.items()))
