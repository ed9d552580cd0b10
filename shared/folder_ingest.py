"""Ingest a local folder through the same path users take: API upload → SAS PUT → event → queue → indexer."""

from __future__ import annotations

import base64
import http.client
import json
import mimetypes
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from shared.documents import ALLOWED_TYPES

_DONE = {"ready", "failed", "deleted"}


@dataclass
class FolderIngest:
    """A small HTTP client of Folio's own API (no SDK), so the CLI exercises exactly what users do."""

    api_base: str  # e.g. http://127.0.0.1:7071/api
    auth_headers: dict[str, str]
    out: TextIO = sys.stderr
    poll_s: float = 0.5
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _last_step: tuple[str, int] | None = field(default=None, init=False, repr=False)

    @staticmethod
    def dev_principal(email: str) -> dict[str, str]:
        """The SWA header the local host trusts in dev mode: the same user as the web app's dev sign-in."""
        email = email.strip().lower()
        payload = {
            "identityProvider": "aad",
            "userId": f"dev:{email}",
            "userDetails": email,
            "userRoles": ["anonymous", "authenticated"],
        }
        return {"x-ms-client-principal": base64.b64encode(json.dumps(payload).encode()).decode()}

    def _call(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        parts = urlsplit(url)
        conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(parts.hostname or "", parts.port, timeout=60)
        try:
            conn.request(
                method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers or {}
            )
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def _api(self, method: str, path: str, payload: Any = None) -> Any:
        headers = dict(self.auth_headers)
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        status, data = self._call(method, self.api_base.rstrip("/") + path, body, headers)
        if status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else data
            raise RuntimeError(f"{method} {path} -> {status}: {detail}")
        return data

    def collection_id(self, name: str) -> str:
        for collection in self._api("GET", "/collections")["collections"]:
            if collection["name"] == name:
                return str(collection["id"])
        return str(self._api("POST", "/collections", {"name": name})["id"])

    def upload(self, collection: str, path: Path) -> str:
        data = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or ""
        created = self._api(
            "POST",
            f"/collections/{collection}/documents",
            {"filename": path.name, "contentType": content_type, "size": len(data)},
        )
        status, detail = self._call("PUT", created["uploadUrl"], data, created["headers"])
        if status not in (200, 201):
            raise RuntimeError(f"upload of {path.name} to storage failed with {status}: {detail}")
        return str(created["documentId"])

    def run(self, folder: Path, collection_name: str, *, timeout_s: float = 3600) -> dict[str, dict[str, Any]]:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in ALLOWED_TYPES)
        skipped = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in ALLOWED_TYPES)
        collection = self.collection_id(collection_name)
        pending: dict[str, Path] = {}
        for i, path in enumerate(files, 1):
            try:
                pending[self.upload(collection, path)] = path
            except RuntimeError as exc:
                self.results[str(path)] = {"status": "rejected", "error": str(exc)}
            self._bar("uploading", i, len(files))
        self._wait(pending, len(files), timeout_s)
        for path in skipped:
            self.results[str(path)] = {"status": "skipped", "error": "unsupported file type"}
        return self.results

    def _wait(self, pending: dict[str, Path], total: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        done = total - len(pending)
        while pending and time.monotonic() < deadline:
            for document_id, path in list(pending.items()):
                doc = self._api("GET", f"/documents/{document_id}")
                if doc["status"] in _DONE:
                    self.results[str(path)] = {
                        "documentId": document_id,
                        "status": doc["status"],
                        "chunks": doc["chunks"],
                        "error": doc["error"],
                    }
                    del pending[document_id]
                    done += 1
            self._bar("indexing", done, total)
            if pending:
                time.sleep(self.poll_s)
        for document_id, path in pending.items():
            self.results[str(path)] = {"documentId": document_id, "status": "timeout", "error": None}
        if self._interactive():
            self.out.write("\n")

    def _interactive(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def _bar(self, stage: str, done: int, total: int, width: int = 30) -> None:
        filled = int(width * done / total) if total else width
        if self._interactive():  # a terminal: one line redrawn in place
            self.out.write(f"\r{stage:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        else:
            # A file or a pipe keeps every redraw, so write a line per stage and tenth, not per update.
            step = (stage, 10 * done // total if total else 10)
            if step == self._last_step:
                return
            self._last_step = step
            self.out.write(f"{stage:<10} {done}/{total}\n")
        self.out.flush()


def iter_supported(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in ALLOWED_TYPES)


ProgressCallback = Callable[[str, int, int], None]
