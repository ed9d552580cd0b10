"""The function app's deployment package leaves out local state, npm packages, the web app and tests.

`func azure functionapp publish` (and `azd deploy`) zip the project folder minus what `.funcignore`
matches, read with gitignore rules. The package is built here the same way (pathspec's gitignore
implementation: a matched directory drops everything under it, `/` anchors at the root, the last
matching pattern wins) and checked, on a made-up tree and on this checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pathspec

ROOT = Path(__file__).resolve().parent.parent
FUNCIGNORE = ROOT / ".funcignore"
NEVER_SHIPPED = (".local/", "node_modules/", "frontend/", "tests/", ".venv/", "devhost/", "bicep/")


def package_files(root: Path) -> set[str]:
    """Paths (relative, with /) that a publish of root would upload, given root/.funcignore."""
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text(encoding="utf-8").splitlines())
    files: set[str] = set()
    for directory, subdirectories, names in os.walk(root):
        here = Path(directory).relative_to(root)
        subdirectories[:] = [d for d in subdirectories if not spec.match_file(f"{(here / d).as_posix()}/")]
        files.update(path for name in names if not spec.match_file(path := (here / name).as_posix()))
    return files


def test_package_of_a_project_tree_is_exactly_the_app(tmp_path: Path) -> None:
    shipped = {
        "function_app.py",
        "host.json",
        "requirements.txt",
        "blueprints/api_chat.py",
        "shared/config.py",
        "shared/db/migrations/0001_initial.sql",
        "shared/ingest/parsers.py",
    }
    left_out = {
        ".local/pg/base/1/PG_VERSION",
        ".local/secrets/ann.json",
        ".venv/lib/python3.11/site-packages/x.py",
        "node_modules/azurite/package.json",
        "frontend/dist/index.html",
        "frontend/node_modules/vite/index.js",
        "frontend/src/main.ts",
        "tests/test_search.py",
        "tests/stubs/oidc_server.py",
        "devhost/__main__.py",
        "benchmarks/coldstart.py",
        "bicep/main.bicep",
        "docs/deploy.md",
        "shared/__pycache__/config.cpython-311.pyc",
        "local.settings.json",
        "local.settings.sample.json",
        "azure.yaml",
        "README.md",
        "Makefile",
        "package.json",
        "requirements-dev.txt",
    }
    for path in shipped | left_out:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x", encoding="utf-8")
    (tmp_path / ".funcignore").write_text(FUNCIGNORE.read_text(encoding="utf-8"), encoding="utf-8")
    assert package_files(tmp_path) == shipped


def test_package_of_this_checkout_has_the_app_and_nothing_local() -> None:
    files = package_files(ROOT)
    leaked = sorted(f for f in files if f.startswith(NEVER_SHIPPED) or "/__pycache__/" in f or f.startswith("."))
    assert not leaked, f"would be uploaded to the function app: {leaked[:20]}"
    assert {"function_app.py", "host.json", "requirements.txt"} <= files
    product = {
        p.relative_to(ROOT).as_posix()
        for top in ("shared", "blueprints")
        for p in (ROOT / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert product <= files, f"missing from the package: {sorted(product - files)[:20]}"
    assert files - product == {"function_app.py", "host.json", "requirements.txt"}, sorted(files - product)
