"""Download buttons for a model version's documentation, shared by the Governance and Registry pages."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from core import documentation
from core.access import Actor
from core.db import session_scope

LABELS = {"md": "Markdown", "html": "HTML", "pdf": "PDF"}
SHOWN_DOCUMENTS = 10


def producer(*, actor: Actor, model: str, version: int, fmt: str) -> Callable[[], bytes]:
    """What a download button calls when clicked: generate, store and attach the document, return its bytes."""

    def produce() -> bytes:
        return documentation.generate(actor=actor, model=model, version=version, fmt=fmt).content

    return produce


def documentation_downloads(*, actor: Actor, model: str, version: int, key: str = "docs") -> None:
    """Download buttons for md/html/pdf of a version, and the documents generated for it before."""
    st.markdown(f"**Model documentation: {model} v{version}**")
    st.caption("Generated from Watchtower's records when you click; each download is kept with its sha256 and "
               "attached to the version's open review.")
    for column, fmt in zip(st.columns(len(documentation.FORMATS)), documentation.FORMATS, strict=True):
        with column:
            # Deferred: the document is built only on click (a PDF takes a few seconds), never on page load.
            st.download_button(f"Download {LABELS[fmt]}", data=producer(actor=actor, model=model, version=version, fmt=fmt),
                               file_name=documentation.file_name(model=model, version=version, fmt=fmt),
                               mime=documentation.MIME_TYPES[fmt], key=f"{key}-{model}-{version}-{fmt}",
                               on_click="ignore", icon=":material/download:")
    with session_scope() as s:
        stored = documentation.list_documents(session=s, actor=actor, model=model, version=version)
    if not stored:
        st.caption("No document has been generated for this version yet.")
        return
    st.dataframe(pd.DataFrame([
        {"Generated": d.generated_at.strftime("%Y-%m-%d %H:%M:%S"), "By": d.generated_by, "Format": d.format,
         "Review": f"#{d.review_id}" if d.review_id else "—",
         "Status": "out of date (newer evaluation)" if d.out_of_date else "current", "sha256": d.sha256}
        for d in stored[:SHOWN_DOCUMENTS]]), hide_index=True, width="stretch")
