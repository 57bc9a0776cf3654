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


def test_pages_act_through_ui_actions_and_never_catch_watchtower_errors():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py")
                 if re.search(r"except\s*\(?[^:\n]*WatchtowerError", p.read_text())]
    assert not offenders, f"pages/ catch WatchtowerError instead of using ui.actions: {offenders}"


def test_pages_stay_thin():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "pages").glob("*.py")
            if (n := len(p.read_text().splitlines())) > 200}
    assert not long, f"pages over 200 lines (move logic to core services or ui helpers): {long}"


def _imported_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_no_function_shadows_an_imported_module_or_name():
    offenders = []
    for folder in ("core", "ui", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            imported = _imported_names(tree)
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    name = (node.id if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
                            else node.arg if isinstance(node, ast.arg) else None)
                    if name in imported:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {fn.name}() rebinds {name}")
    assert not offenders, f"local names shadow imports: {offenders}"
