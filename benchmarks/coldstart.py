"""Cold start: import time of function_app vs. two baselines, in fresh processes.

    python -m benchmarks.coldstart --json [--runs 9]

Baselines: ``azure.functions`` alone (any Python function app pays it), and ``azure.functions`` plus
the HTTP streaming extension (any app that streams HTTP pays that: the worker imports FastAPI,
Starlette, Pydantic and Uvicorn with it). Prints {"import_ms", "baseline_import_ms",
"streaming_baseline_import_ms", "overhead_ms", "own_overhead_ms", "ratio", "runs",
"heavy_modules_loaded"}; ``own_overhead_ms`` is what Folio's own code adds over the streaming baseline.
Medians over fresh interpreters, interleaved so machine noise hits all three alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Modules that must never load at import: parsers, models, SDKs only some requests need.
HEAVY = (
    "pypdf",
    "docx",
    "pptx",
    "openpyxl",
    "PIL",
    "azure.ai.documentintelligence",
    "onnxruntime",
    "tokenizers",
    "torch",
    "sentence_transformers",
    "jwt",
    "azure.identity",
    "azure.storage.blob",
    "azure.cosmos",
    "stripe",
    "azure.monitor",
    "openai",
    "anthropic",
    "azure.servicebus",
    "azure.appconfiguration",
    "azure.keyvault",
)

_PROBE = """
import sys, time, json
t = time.perf_counter()
import {module}
elapsed = (time.perf_counter() - t) * 1000
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"ms": elapsed, "heavy": heavy}}))
"""


def _measure(module: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module, heavy=HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


STREAMING_BASELINE = "azure.functions, azurefunctions.extensions.http.fastapi"


def run(runs: int) -> dict:
    app, base, streaming, heavy = [], [], [], set()
    _measure("function_app")  # warm the OS file cache for all, so none pays disk reads alone
    for _ in range(runs):
        base.append(_measure("azure.functions")["ms"])
        streaming.append(_measure(STREAMING_BASELINE)["ms"])
        result = _measure("function_app")
        app.append(result["ms"])
        heavy.update(result["heavy"])
    import_ms, baseline_ms, streaming_ms = statistics.median(app), statistics.median(base), statistics.median(streaming)
    return {
        "import_ms": round(import_ms, 1),
        "baseline_import_ms": round(baseline_ms, 1),
        "streaming_baseline_import_ms": round(streaming_ms, 1),
        "overhead_ms": round(import_ms - baseline_ms, 1),
        "own_overhead_ms": round(import_ms - streaming_ms, 1),
        "ratio": round(import_ms / baseline_ms, 2),
        "runs": runs,
        "heavy_modules_loaded": sorted(heavy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output anyway)")
    args = parser.parse_args()
    print(json.dumps(run(args.runs)))


if __name__ == "__main__":
    main()
