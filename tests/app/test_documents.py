"""The documentation download buttons the Governance and Registry pages show for a version."""

from __future__ import annotations

import hashlib

from streamlit.testing.v1 import AppTest

from core import artifacts, documentation, governance
from core.access import Actor
from core.db import session_scope
from tests.app.conftest import texts
from ui import documents

RHEA = Actor(username="rhea", roles=("risk_manager",))


def _page() -> None:
    from core.access import Actor
    from ui.documents import documentation_downloads

    documentation_downloads(actor=Actor(username="rhea", roles=("risk_manager",)), model="fraud-detector", version=2)


def test_one_button_per_format_and_the_documents_generated_before(demo_home):
    at = AppTest.from_function(_page, default_timeout=60).run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download Markdown", "Download HTML", "Download PDF"]
    assert "No document has been generated for this version yet." in texts(at)
    assert not list((demo_home / "documents").glob("*")), "nothing is generated before a click"

    # What the PDF button runs when clicked (AppTest cannot click a download): the file the user saves.
    content = documents.producer(actor=RHEA, model="fraud-detector", version=2, fmt="pdf")()
    assert content.startswith(b"%PDF")
    with session_scope() as s:
        (stored,) = documentation.list_documents(session=s, actor=RHEA, model="fraud-detector", version=2)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert artifacts.resolve(stored.path).read_bytes() == content

    at.run()
    table = at.dataframe[0].value
    assert list(table["sha256"]) == [stored.sha256] and list(table["Status"]) == ["current"]
    assert list(table["By"]) == ["rhea"]


def test_the_governance_page_offers_the_documentation_of_the_version_under_review(page_as):
    with session_scope() as s:
        review = governance.find_review(session=s, model="fraud-detector", version=3)
    at = page_as("pages/governance.py", username="rhea")
    assert not at.exception
    keys = {b.key for b in at.get("download_button")}
    assert {f"gov-docs-{review.id}-fraud-detector-3-{fmt}" for fmt in ("md", "html", "pdf")} <= keys
    assert "Model documentation: fraud-detector v3" in texts(at)
