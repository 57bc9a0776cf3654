"""Documentation: a model version's documentation generated from what Watchtower records: the facts are
gathered once, laid out in one outline and rendered to Markdown, HTML or PDF, stored with their sha256.

- `blocks`: The building blocks of a document and how values read in it, the same in every format.
- `charts`: The documentation's charts: Altair specifications with their data inline, rendered to PNG by vl-convert.
- `documents`: Model documentation: everything Watchtower knows about a model version, gathered, rendered and stored.
- `facts`: The facts a model version's documentation is made of, read from the stores as plain read models.
- `outline`: The documentation's structure, decided once for every format: which sections, and in them which
- `pdf`: Rendering the documentation to PDF with fpdf2: no browser, no outside service; charts drawn by vl-convert.
- `render`: Rendering the documentation to Markdown (for diffs in a repository) and to one self-contained HTML file.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "documents": (
        "FORMATS", "MIME_TYPES", "DocumentRead", "GeneratedDocument", "file_name", "gather",
        "store_document", "generate", "list_documents", "read_document",
    ),
    "facts": (
        "version_events",
    ),
})
