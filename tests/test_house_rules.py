"""House rules checked mechanically."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_streamlit():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"core/ imports streamlit in {offenders}"


def test_pages_do_not_query_the_database():
    query = re.compile(r"\b(select\(|session\.exec|\.execute\(|(?<!st\.)text\()")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py") if query.search(p.read_text())]
    assert not offenders, f"pages/ query the database directly: {offenders}"
