"""Ingestion quality on real documents: sniff → parse → chunk, with the real limits, file by file.

    python -m benchmarks.documents --corpus DIR [--pairs FILE] [--details FILE] [--baseline REV] --json

Prints {"files", "parsed", "rejected": {reason: n}, "heading_recall", "header_leak",
"clause_number_recall", "seconds", "peak_mb", ...}. Each file runs in a fresh process, so
``peak_mb`` is the largest resident size one file needed (interpreter and imports included) and
``seconds`` the sum of the parse-and-chunk times. With ``--baseline REV`` the ``shared/`` package
of git revision REV is measured on the same files in the same run, with this file's metrics, and
printed under ``"baseline"``.

The metrics are computed from the files, not from the parser's view of them:

- ``heading_recall`` (needs ``--pairs``, lines of ``other<TAB>markdown``): the share of the
  Markdown side's headings (ATX and setext) found in the other side's heading paths, after
  lower-casing and dropping punctuation; ``heading_recall_by_pair`` has each pair.
- ``header_leak``: the share of chunks of paged documents holding a line found on at least half
  of the document's pages (three pages or more), digits ignored. A line is a row of the page as
  pypdf's layout mode places the text, so a table's row is one line, not one line per cell (a
  "Layoff Permanent" cell on every page is not a running line; the row holding it is not
  repeated). That still counts content that repeats (a test file whose pages print one
  paragraph), so ``header_leak_edges`` counts only lines repeated among the pages' first and
  last three lines, where running heads are; ``header_leak_fragments`` is the first measure,
  with pypdf's default extraction's lines (a table's cells each a line of their own);
  ``header_leak_by_file`` names the files that leak.
- ``clause_number_recall``: the share of the clause numbers a document cites ("Section 6.3",
  "clause 4(b)", not "Section 230 of the Act") that exist in it as a heading-path entry or a chunk
  opening; ``clause_number_recall_by_file`` has each file that cites any.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from benchmarks.common import ROOT

_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT_RULE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})")
_MD_INLINE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|[*_`]+|<[^>]+>|\\")
_NON_WORD = re.compile(r"[^\w]+")
_DIGITS = re.compile(r"\d+")
_LETTERS = re.compile(r"[^\W\d_]")
# "Section 6.3", "Sections 4(b)", "clause 12.1(a)(ii)", "§ 7"; a reference "of" another text is
# skipped, also at the head of a list ("Section 13 or 15(d) of the Exchange Act"). The sub-labels
# are taken whole (possessive), so "Section 12(b) of the Act" is not read as "Section 12".
_CITATION = re.compile(
    r"(?<![A-Z]{2}\s)(?<![A-Z]\.\s)(?<!Subtitle\s[IVX],\s)"
    r"\b(?i:sections?|clauses?|§§?)\s*(\d{1,3}(?:\.\d{1,3})*)((?:\([a-z0-9]{1,4}\))*+)(?![.–-]?\d)"
    r"(?!(?:,?\s+or\s+(?:(?i:sections?|clauses?)\s*)?\d{1,3}(?:\.\d{1,3})*(?:\([a-z0-9]{1,4}\))*)*"
    r"\s+of\s+(?!this\b|these\b|the\s+(?:[Aa]greement|[Tt]erms|[Ss]tandard\s+[Tt]erms|DPA)\b))"
)
_LABEL = re.compile(r"^\W{0,2}(?:(?:section|clause|article|§)\s*)?(\d{1,3}(?:\.\d{1,3})*)(?=\W|$)", re.I)
_SUBLABEL = re.compile(r"(?:^|\n)\s*\(([a-z0-9]{1,4})\)", re.I)


# -- one file, in a worker process -------------------------------------------------------------


def measure_file(path: Path) -> dict[str, Any]:
    """Parse and chunk one file the way the indexer does; the details line for it."""
    from shared.ingest.chunker import chunk_document
    from shared.ingest.errors import DocumentRejected
    from shared.ingest.limits import DEFAULT_LIMITS, check_size
    from shared.ingest.parsers import get_parser
    from shared.ingest.sniff import sniff

    data = path.read_bytes()
    row: dict[str, Any] = {"file": path.name, "status": "parsed", "error": None, "pages": None, "chunks": []}
    started = time.perf_counter()
    try:
        check_size(data, DEFAULT_LIMITS)
        doc_type = sniff(data, DEFAULT_LIMITS)
        doc = get_parser(doc_type)(data, DEFAULT_LIMITS)
        chunks = chunk_document(doc)
    except DocumentRejected as exc:
        row.update(status="rejected", reason=exc.type_slug, error=exc.detail)
        doc_type = None
    else:
        row["pages"] = doc.pages
        row["type"] = doc_type
        row["chunks"] = [
            {"heading_path": c.heading_path, "text": c.text, "pages": [c.page_start, c.page_end]} for c in chunks
        ]
    row["seconds"] = round(time.perf_counter() - started, 3)
    if b"%PDF-" in data[:1024]:
        anywhere, edges = _running_lines(data, "layout")
        row["running_lines"], row["running_edge_lines"] = sorted(anywhere), sorted(edges)
        row["running_fragments"] = sorted(_running_lines(data, "plain")[0])
    row["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return row


def _running_lines(data: bytes, mode: Literal["plain", "layout"]) -> tuple[set[str], set[str]]:
    """Lines (digits ignored) on at least half the pages of a PDF of three pages or more, per
    pypdf's ``mode`` of extraction ("layout": rows of the page; "plain": the default, where a
    table cell may be a line): anywhere on the page, and among each page's first and last
    three lines."""
    import io
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            reader.decrypt("")
        texts = []
        for page in reader.pages:
            try:
                texts.append(page.extract_text(extraction_mode=mode))
            except Exception:  # a page pypdf cannot read has no lines
                texts.append("")
    except Exception:  # a file pypdf cannot open has no running lines
        return set(), set()
    if len(texts) < 3:
        return set(), set()
    seen: Counter[str] = Counter()
    seen_at_edges: Counter[str] = Counter()
    for text in texts:
        lines = [line for line in text.splitlines() if line.strip()]
        seen.update({key for line in lines if _is_key(key := _line_key(line))})
        seen_at_edges.update({key for line in lines[:3] + lines[-3:] if _is_key(key := _line_key(line))})
    return (
        {key for key, n in seen.items() if n * 2 >= len(texts)},
        {key for key, n in seen_at_edges.items() if n * 2 >= len(texts)},
    )


def _line_key(line: str) -> str:
    return " ".join(_DIGITS.sub(" ", line.lower()).split())


def _is_key(key: str) -> bool:
    return len(_LETTERS.findall(key)) >= 6


# -- metrics over the details ------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", _MD_INLINE.sub(r"\1", text).lower()).split())


def markdown_headings(text: str) -> list[str]:
    """ATX and setext headings outside fenced code, normalised."""
    headings: list[str] = []
    in_fence = False
    previous = ""
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            previous = ""
            continue
        if in_fence:
            continue
        atx = _ATX.match(line)
        if atx:
            headings.append(_norm(atx.group(1)))
        elif _SETEXT_RULE.match(line) and previous.strip() and not previous.lstrip().startswith(("-", "*", "|")):
            headings.append(_norm(previous))
        previous = line
    return [h for h in headings if h]


def heading_recall(row: dict[str, Any], md_text: str) -> tuple[int, int]:
    """(found, total) of the Markdown side's headings among ``row``'s heading-path entries."""
    wanted = markdown_headings(md_text)
    entries = {_norm(entry) for chunk in row["chunks"] for entry in chunk["heading_path"]}
    found = sum(1 for h in wanted if any(h == e or f" {h} " in f" {e} " for e in entries))
    return found, len(wanted)


def header_leak(row: dict[str, Any], field: str = "running_lines") -> tuple[int, int]:
    """(leaking, total) chunks of a paged document. The " | " between a table row's cells is
    ignored, so a repeated row counts whether or not the parser marks its cells."""
    keys = row.get(field) or []
    if not row["pages"] or row.get("type") != "pdf":
        return 0, 0
    leaking = 0
    for chunk in row["chunks"]:
        text = f" {_line_key(chunk['text'].replace(' | ', ' '))} "
        if any(f" {key} " in text for key in keys):
            leaking += 1
    return leaking, len(row["chunks"])


def clause_numbers(row: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(found, cited, missing) clause numbers cited in a document's own text."""
    cited: set[tuple[str, tuple[str, ...]]] = set()
    labels: set[str] = set()
    sub_labels: set[tuple[str, str]] = set()
    for chunk in row["chunks"]:
        for match in _CITATION.finditer(chunk["text"]):
            subs = tuple(s.lower() for s in re.findall(r"\(([^)]*)\)", match.group(2)))
            cited.add((match.group(1).rstrip("."), subs[:1]))
        numbers = [m.group(1) for e in chunk["heading_path"] if (m := _LABEL.match(e))]
        opening = _LABEL.match(chunk["text"])
        if opening:
            numbers.append(opening.group(1))
        labels.update(numbers)
        for sub in _SUBLABEL.findall(chunk["text"]):
            sub_labels.update((n, sub.lower()) for n in numbers)
    missing = []
    for number, subs in sorted(cited):
        ok = number in labels and (not subs or (number, subs[0]) in sub_labels)
        if not ok:
            missing.append(number + "".join(f"({s})" for s in subs))
    return len(cited) - len(missing), len(cited), missing


def summarise(rows: list[dict[str, Any]], corpus: Path, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The one JSON object the benchmark prints for one code version."""
    by_name = {row["file"]: row for row in rows}
    rejected = Counter(row["reason"] for row in rows if row["status"] == "rejected")
    recall_found = recall_total = 0
    by_pair: dict[str, float | None] = {}
    for other, md in pairs:
        row = by_name.get(other)
        if row is None:
            continue
        found, total = heading_recall(row, (corpus / md).read_text(encoding="utf-8", errors="replace"))
        recall_found, recall_total = recall_found + found, recall_total + total
        by_pair[other] = round(found / total, 3) if total else None
    leak = [header_leak(row) for row in rows]
    leaking, paged_chunks = sum(a for a, _ in leak), sum(b for _, b in leak)
    edge_leak = [header_leak(row, "running_edge_lines") for row in rows]
    edge_leaking = sum(a for a, _ in edge_leak)
    fragment_leaking = sum(header_leak(row, "running_fragments")[0] for row in rows)
    leak_by_file = {row["file"]: round(a / b, 3) for row, (a, b) in zip(rows, leak, strict=True) if a}
    clause_found = clause_total = 0
    by_file: dict[str, Any] = {}
    for row in rows:
        found, total, missing = clause_numbers(row)
        if total:
            clause_found, clause_total = clause_found + found, clause_total + total
            by_file[row["file"]] = {"recall": round(found / total, 3), "cited": total, "missing": missing[:20]}
    return {
        "files": len(rows),
        "parsed": sum(1 for row in rows if row["status"] == "parsed"),
        "parsed_by_type": dict(sorted(Counter(row["type"] for row in rows if row["status"] == "parsed").items())),
        "rejected": dict(sorted(rejected.items())),
        "heading_recall": round(recall_found / recall_total, 3) if recall_total else None,
        "header_leak": round(leaking / paged_chunks, 4) if paged_chunks else None,
        "clause_number_recall": round(clause_found / clause_total, 3) if clause_total else None,
        "seconds": round(sum(row["seconds"] for row in rows), 2),
        "peak_mb": max((row["peak_mb"] for row in rows), default=0.0),
        "chunks": sum(len(row["chunks"]) for row in rows),
        "slowest_file_seconds": max((row["seconds"] for row in rows), default=0.0),
        "header_leak_edges": round(edge_leaking / paged_chunks, 4) if paged_chunks else None,
        "header_leak_fragments": round(fragment_leaking / paged_chunks, 4) if paged_chunks else None,
        "header_leak_by_file": leak_by_file,
        "heading_recall_by_pair": by_pair,
        "clause_number_recall_by_file": by_file,
        "rejections": {row["file"]: row["error"] for row in rows if row["status"] == "rejected"},
    }


# -- driver ------------------------------------------------------------------------------------


def run_files(files: list[Path], code_root: Path, timeout: float = 600.0) -> list[dict[str, Any]]:
    """One fresh interpreter per file, importing ``shared`` from ``code_root``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code_root), str(ROOT)]))
    rows = []
    for path in files:
        try:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.documents", "--worker", str(path)],
                cwd=code_root,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
        except subprocess.TimeoutExpired:
            out, row = None, None
        if row is None:
            error = out.stderr.strip().splitlines()[-1] if out is not None and out.stderr.strip() else "timed out"
            row = {"file": path.name, "status": "crashed", "error": error, "pages": None, "chunks": []}
            row.update(reason="crashed", seconds=timeout if out is None else 0.0, peak_mb=0.0)
            row["status"] = "rejected"
        rows.append(row)
    return rows


def _baseline_tree(rev: str, into: Path) -> Path:
    """``shared/`` of git revision ``rev``, unpacked under ``into``."""
    archive = subprocess.run(["git", "archive", rev, "shared"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _read_pairs(path: Path | None) -> list[tuple[str, str]]:
    if path is None:
        return []
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 2 and not line.startswith("#"):
            pairs.append((parts[0], parts[1]))
    return pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--pairs", type=Path)
    parser.add_argument("--details", type=Path)
    parser.add_argument("--baseline", help="git revision whose shared/ is measured alongside")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure_file(args.worker)))
        return
    if args.corpus is None:
        parser.error("--corpus is required")
    # Absolute: the workers run in the measured code's directory, the baseline's a temporary one.
    corpus = args.corpus.resolve()
    files = sorted(p for p in corpus.iterdir() if p.is_file() and p.name not in ("SOURCES.md", "pairs.tsv"))
    pairs = _read_pairs(args.pairs)
    rows = run_files(files, ROOT)
    result = summarise(rows, corpus, pairs)
    if args.details:
        with args.details.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            base_rows = run_files(files, _baseline_tree(args.baseline, Path(tmp)))
        result["baseline"] = {"rev": args.baseline, **summarise(base_rows, corpus, pairs)}
    print(json.dumps(result, indent=None if args.json else 2, ensure_ascii=False))


if __name__ == "__main__":
    main()
