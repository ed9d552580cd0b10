"""Importing shared.ingest must stay cheap: no PDF or DOCX library until one is parsed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pypdf", "docx", "lxml")


def modules_after(code: str) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in HEAVY]


def test_importing_shared_ingest_does_not_import_pypdf_or_docx():
    assert heavy(modules_after("import shared.ingest")) == []


def test_parsing_text_formats_does_not_import_pypdf_or_docx():
    code = (
        "from shared.ingest import parse_document, chunk_document\n"
        "chunk_document(parse_document(b'# Title\\n\\nSome text.\\n'))\n"
        "parse_document(b'<html><p>Hi</p></html>')\n"
        "parse_document(b'plain words.')"
    )
    assert heavy(modules_after(code)) == []


def test_parsers_load_their_library_on_first_use():
    assert "pypdf" in modules_after("from shared.ingest import get_parser; get_parser('pdf')")
    assert "docx" in modules_after("from shared.ingest import get_parser; get_parser('docx')")
