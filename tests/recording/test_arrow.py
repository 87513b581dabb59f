"""``without_pandas``: pyarrow works without importing pandas, and pandas stays importable."""

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
