"""Importing function_app stays cheap: no parsers, models, optional SDKs or connections at import."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.coldstart import HEAVY, ROOT

_PROBE = """
import json, socket, sys
opened = []
real_connect = socket.socket.connect
def spy(self, address):
    opened.append(str(address))
    return real_connect(self, address)
socket.socket.connect = spy
import function_app
print(json.dumps({"heavy": [m for m in %r if m in sys.modules], "sockets": opened,
                  "functions": len(function_app.app.get_functions())}))
"""


def test_import_loads_no_heavy_modules_and_opens_no_connections() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://x@127.0.0.1:9/x"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["sockets"] == []
    assert result["functions"] > 0


def test_coldstart_benchmark_prints_every_measurement() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.coldstart", "--json", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["import_ms"] > 0 and result["baseline_import_ms"] > 0 and result["heavy_modules_loaded"] == []
    assert result["streaming_baseline_import_ms"] > 0
    assert abs(result["own_overhead_ms"] - (result["import_ms"] - result["streaming_baseline_import_ms"])) <= 0.2
