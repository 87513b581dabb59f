"""``without_pandas`` (pandas stays importable) and ``release_memory`` (freed memory goes back)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from rezolus_recording.arrow import without_pandas
without_pandas()
import pyarrow as pa, pyarrow.parquet as pq
table = pa.table({"a": pa.array([1, 2]), "b": [3, 4]})
pq.write_table(table, pa.BufferOutputStream())
print("pandas" in sys.modules)
import pandas
print("pandas" in sys.modules)
"""


def test_pyarrow_without_pandas_then_pandas_still_imports() -> None:
    """A fresh process: tables and parquet without pandas loaded; an explicit import still works."""
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "True"]


RELEASE = """
import numpy as np
from rezolus_recording.arrow import release_memory
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
blocks = [np.ones(8192) for _ in range(1600)]  # 64 KiB each: glibc's heap, not mmap
pin = np.ones(8192)  # keeps the freed blocks below the top of the heap, which glibc does not trim
del blocks
before = rss()
release_memory()
print(before, rss())
"""


def test_release_memory_gives_freed_heap_pages_back() -> None:
    """100 MB freed inside glibc's heap stays resident until ``release_memory`` returns it."""
    out = subprocess.run([sys.executable, "-c", RELEASE], capture_output=True, text=True, check=True, timeout=120)
    before, after = map(int, out.stdout.split())
    assert before - after >= 80, (before, after)

