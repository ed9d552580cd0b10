"""Rough edges a new user hit (#17 item 13): the CLI's progress bar in a file or a pipe."""

from __future__ import annotations

import io

from shared.folder_ingest import FolderIngest


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_written_to_a_file_is_a_line_per_stage_and_tenth_not_per_update() -> None:
    log = io.StringIO()
    ingest = FolderIngest("http://127.0.0.1:1/api", {}, out=log)
    for done in range(1, 501):
        ingest._bar("uploading", done, 500)
    for done in range(0, 501):
        ingest._bar("indexing", done, 500)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 22  # each stage: its first update, then 50/500, 100/500 ... 500/500
    assert lines[:2] == ["uploading  1/500", "uploading  50/500"] and lines[-1] == "indexing   500/500"


def test_progress_on_a_terminal_is_redrawn_in_place() -> None:
    screen = _Terminal()
    ingest = FolderIngest("http://127.0.0.1:1/api", {}, out=screen)
    for done in range(1, 4):
        ingest._bar("indexing", done, 3)
    assert screen.getvalue().count("\r") == 3 and "\n" not in screen.getvalue()
