"""Hindsight's process never loads the modules it does not use (each costs resident memory)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import rezolus_hindsight.main, rezolus_hindsight.service, rezolus_hindsight.http
from rezolus_recording.arrow import without_pandas
without_pandas()
print(json.dumps({"pyarrow.parquet": "pyarrow.parquet" in sys.modules}))
from rezolus_hindsight import snapshot
snapshot.warm_up()
print(json.dumps({m: m in sys.modules for m in ("rich", "pandas", "pyarrow.compute", "numpy.ma")}))
"""


def test_start_up_and_warm_up_leave_out_rich_pandas_compute_and_masked_arrays() -> None:
    """A fresh process: the service's imports leave out parquet; they and a snapshot's code load none of the rest."""
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[-2]) == {"pyarrow.parquet": False}
    loaded = json.loads(lines[-1])
    assert loaded == {"rich": False, "pandas": False, "pyarrow.compute": False, "numpy.ma": False}
