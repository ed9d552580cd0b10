"""The real-document benchmark's metrics, on rows whose answers are known."""

from __future__ import annotations

import json

from benchmarks.documents import clause_numbers, header_leak, heading_recall, main, markdown_headings


def _row(chunks: list[tuple[list[str], str]], **extra: object) -> dict:
    row = {"file": "x", "status": "parsed", "pages": 3, "type": "pdf"}
    row.update(extra)
    row["chunks"] = [{"heading_path": path, "text": text, "pages": [1, 1]} for path, text in chunks]
    return row


def test_markdown_headings_skip_fenced_code_and_read_setext():
    text = "# Terms\n\nIntro\n\nPayment\n-------\n\n```\n# not a heading\n```\n\n## **Fees**\n"
    assert markdown_headings(text) == ["terms", "payment", "fees"]


def test_heading_recall_counts_markdown_headings_found_in_heading_paths():
    row = _row([(["Terms of Service", "1.1 Payment Terms"], "Pay monthly.")])
    assert heading_recall(row, "# Terms of Service\n\n## Payment Terms\n\n## Refunds\n") == (2, 3)


def test_header_leak_counts_chunks_holding_a_running_line():
    row = _row(
        [([], "Federal Register / Vol. 85 Proposed Rules The FAA proposes."), ([], "Clean text.")],
        running_lines=["federal register / vol. proposed rules"],
    )
    assert header_leak(row) == (1, 2)


def test_clause_numbers_found_as_headings_and_openings_but_not_external_ones():
    row = _row(
        [
            (["6. Warranties", "6.3 From Provider"], "Provider warrants the Product."),
            ([], "(a) as Section 6.3 says; see also Section 9.1 and Section 230 of the Communications Act."),
        ]
    )
    found, cited, missing = clause_numbers(row)
    assert (found, cited, missing) == (1, 2, ["9.1"])


def test_header_leak_ignores_the_cell_separators_of_a_table_row():
    row = _row(
        [([], "07/06/2015 | Boeing Company | Long Beach | 56 | Layoff Unknown at this time"), ([], "Clean text.")],
        running_lines=["/ / boeing company long beach layoff unknown at this time"],
    )
    assert header_leak(row) == (1, 2)


def test_a_relative_corpus_path_reaches_the_baseline_workers_too(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "terms.md").write_text("# Terms\n\nSee Section 1.\n\n## 1. Scope\n\nIt applies.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    main(["--corpus", "corpus", "--baseline", "HEAD", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["parsed"] == 1 and result["baseline"]["parsed"] == 1


def test_clause_citations_of_another_text_are_skipped_at_the_head_of_a_list_and_with_sub_labels():
    text = (
        "Reports under Section 12(b) of the Act, and under Section 13 or Section 15(d) of the Exchange Act. "
        "See Section 6.3 or Section 7.1 of this Agreement and Section 4(b)."
    )
    found, cited, missing = clause_numbers(_row([([], text)]))
    assert (found, cited, sorted(missing)) == (0, 3, ["4(b)", "6.3", "7.1"])
