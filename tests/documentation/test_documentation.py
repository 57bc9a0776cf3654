"""A risk manager gets a model version's documentation, generated from Watchtower's records, in three formats.

Each generated file is stored with its sha256 and attached to the version's open review; text users typed is
shown, never interpreted; the HTML fetches nothing; the PDF opens.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt
from pypdf import PdfReader
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sqlmodel import select

from core import artifacts, documentation, governance, validation
from core.access import SYSTEM, Actor
from core.cli import main
from core.db import session_scope
from core.entities import Deployment, Document, Environment, Evaluation, Model, ModelVersion, Review, SignOff
from core.errors import IntegrityFailure, InvalidInput, NotFound
from core.identity import users
from core.models import registry
from core.monitoring import evaluation_store
from core.projects import projects
from core.validation import comparison, diagnostics, lab, lab_results
from tests.support.people import cli_token
from tests.support.skops_files import save_skops

PLANTED = "<script>alert('owned')</script>"
EVIL_COLUMN = "<script>steal()</script>"
EVIL_CATEGORY = "<img src=x onerror=alert(1)>"
RHEA = Actor(username="rhea", roles=("risk_manager",))


def _tiny_model(tmp_path: Path, *, with_artifact: bool = True, name: str = "card-scorer") -> registry.VersionInfo:
    """A small binary model with a hostile column name and category value, registered as version 1."""
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame({
        "amount": rng.lognormal(3, 1, n).round(2),
        EVIL_COLUMN: rng.normal(0, 1, n),
        "channel": rng.choice(["pos", "online", EVIL_CATEGORY], n),
    })
    frame["is_fraud"] = ((frame["amount"] > 60) ^ (rng.random(n) < 0.05)).astype(int)
    csv = tmp_path / "reference.csv"
    frame.to_csv(csv, index=False)
    artifact = None
    if with_artifact:
        artifact = tmp_path / "model.skops"
        model = make_pipeline(ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["channel"])],
                                                remainder="passthrough"), LogisticRegression(max_iter=500))
        save_skops(model.fit(frame.drop(columns="is_fraud"), frame["is_fraud"]), artifact)
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Card payments", risk_level="high",
                                sponsor="Sofia Sponsor", initiative="Payments integrity",
                                description="Stop card fraud before settlement.", scope="EU card traffic",
                                contacts=[{"name": "Maya", "email": "maya@example.com", "role": "ML engineer"}])
        version = registry.register_model(
            session=s, actor=SYSTEM, project_key="CARDS", name=name, task="binary", target="is_fraud",
            reference_csv=csv, artifact=artifact, description=f"Scores card payments {PLANTED}",
            business_metrics=[{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1,
                               "prediction": 0, "label_text": "Fraud missed (amount)", "better": "lower"}])
        row = s.get(ModelVersion, version.id)
        row.training_metrics = {"roc_auc": 0.9312, "recall": 0.7101, "fraud_missed_amount": 1520.5}
        row.recipe = {"algorithm": "logistic_regression", "features": ["amount", EVIL_COLUMN, "channel"]}
        row.params = {"C": 1.0, "max_iter": 200}
        row.training_start, row.training_end = datetime(2026, 5, 1), datetime(2026, 6, 30)
        s.add(row)
    return version


def _evaluate(version_id: int, *, start: datetime, auc: float, created_at: datetime | None = None) -> None:
    with session_scope() as s:
        s.add(Evaluation(
            model_version_id=version_id, window_start=start, window_end=start + timedelta(days=7), granularity="7D",
            rows=7000, labelled_rows=6100, created_at=created_at or datetime.now().replace(microsecond=0),
            metrics={"roc_auc": auc, "recall": 0.5123, "precision": 0.4411},
            estimated_metrics={"roc_auc": auc + 0.01}, business_metrics={"fraud_missed_amount": 4321.25},
            drift_share=0.3333, drifted_fields=1,
            field_drift=[{"field": "amount", "type": "numeric", "method": "ks", "threshold": 0.05,
                          "score": 0.2, "drifted": False},
                         {"field": EVIL_COLUMN, "type": "numeric", "method": "wasserstein", "threshold": 0.1,
                          "score": 0.4567, "drifted": True}]))


def _deploy_and_review(version_id: int, *, state: str = "WAITING_FOR_FEEDBACK") -> int:
    with session_scope() as s:
        staging = Environment(name="staging", tier="lower", policy="allow")
        s.add(staging)
        s.flush()
        model_id = s.get(ModelVersion, version_id).model_id
        s.add(Deployment(environment_id=staging.id, model_version_id=version_id, model_id=model_id,
                         deployed_by="maya", note="smoke test"))
        review = Review(model_version_id=version_id, stage="Review", state=state, requested_by="maya",
                        required_roles=["it_ops", "risk_manager", "business"])
        s.add(review)
        s.flush()
        s.add(SignOff(review_id=review.id, role="it_ops", reviewer="omar", verdict="MINOR_ISSUE",
                      comment=f"Latency fine {PLANTED}"))
        return review.id


@pytest.fixture
def reviewed(backend, tmp_path):
    """Version 1 of card-scorer with two weekly evaluations, a staging deployment and an open review."""
    v = _tiny_model(tmp_path)
    _evaluate(v.id, start=datetime(2026, 7, 1), auc=0.9011, created_at=datetime(2026, 7, 9))
    _evaluate(v.id, start=datetime(2026, 7, 8), auc=0.8765, created_at=datetime(2026, 7, 16))
    review_id = _deploy_and_review(v.id)
    return v, review_id


def test_every_section_is_there_with_the_numbers_of_the_stores(reviewed):
    v, _ = reviewed
    md = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    for title in ("Purpose and business context", "Data", "Training recipe and parameters", "Performance",
                  "Business metrics", "Drift per field", "Diagnostics", "Global importance", "Deployments",
                  "Review and sign-off", "Audit trail", "About this document"):
        assert f"## {title}\n" in md, title
    # Context, recipe, metrics at training and in the latest window, business metric, drift, review, trail.
    for expected in ("Sofia Sponsor", "Payments integrity", "EU card traffic", "high", "logistic_regression",
                     "max_iter", "0.9312", "0.8765", "-0.0547", "4,321.25", "1,520.50", "0.4567", "wasserstein",
                     "staging", "smoke test", "omar", "MINOR_ISSUE", "WAITING_FOR_FEEDBACK", "version.register",
                     "Awaiting feedback from:** Risk & compliance, Business", v.artifact_sha256, v.reference_sha256):
        assert expected in md, expected
    # Reference statistics of the sample: the mean amount as the reference holds it.
    reference = artifacts.load_reference(path=v.reference_path, sha256=v.reference_sha256)
    assert f"{reference['amount'].mean():.4f}" in md


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_markdown_shows_user_text_without_letting_it_become_markup(reviewed):
    md = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    # Rendered as a repository host renders Markdown (CommonMark, raw HTML allowed, pipe tables).
    parsed = _Tags()
    parsed.feed(MarkdownIt("commonmark").enable("table").render(md))
    assert {"script", "img"}.isdisjoint(t for t, _ in parsed.tags)
    text = "".join(parsed.text)
    assert f"Latency fine {PLANTED}" in text and EVIL_COLUMN in text and EVIL_CATEGORY in text
    assert [t for t, _ in parsed.tags if t == "h2"] == ["h2"] * 12, "user text adds no heading"


def test_html_is_one_file_that_fetches_nothing_and_shows_user_text_as_text(reviewed):
    page = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="html").content.decode()
    parsed = _Tags()
    parsed.feed(page)
    names = [t for t, _ in parsed.tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    images = [a for t, a in parsed.tags if t == "img"]
    assert len(images) >= 3, "performance, business and drift charts are drawn inline"
    for tag, attrs in parsed.tags:
        for attr in ("src", "href"):
            value = attrs.get(attr)
            if value is not None:
                assert value.startswith(("data:image/png;base64,", "#")), (tag, value[:40])
                assert "//" not in value.split(",", 1)[0] and "http" not in value[:12]
    assert "http://" not in page.replace('"', "") or "http://" not in "".join(
        v for _t, a in parsed.tags for v in a.values() if v)
    text = "".join(parsed.text)
    # The planted strings reach the reader as text, exactly as typed.
    assert f"Latency fine {PLANTED}" in text
    assert EVIL_COLUMN in text and EVIL_CATEGORY in text
    assert f"Latency fine {PLANTED}".replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;") in page


def test_pdf_opens_has_pages_and_carries_the_numbers(reviewed):
    v, _ = reviewed
    pdf = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="pdf").content
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2
    text = " ".join(page.extract_text() for page in reader.pages)
    for expected in ("Purpose and business context", "Drift per field", "Review and sign-off", "Audit trail",
                     "0.8765", "Sofia Sponsor", PLANTED, v.artifact_sha256[:16]):
        assert expected in text, expected
    assert [o.title for o in reader.outline][:3] == ["Purpose and business context", "Data",
                                                      "Training recipe and parameters"]


def test_the_stored_document_is_attached_to_the_open_review_and_its_sha256_matches(reviewed):
    _, review_id = reviewed
    generated = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="pdf")
    d = generated.document
    assert d.review_id == review_id and d.generated_by == "rhea" and not d.out_of_date
    stored = artifacts.resolve(d.path)
    assert stored.is_file() and stored.parent.name == "documents"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == d.sha256 == hashlib.sha256(generated.content).hexdigest()
    with session_scope() as s:
        row = s.get(Document, d.id)
        assert (row.review_id, row.sha256, row.format) == (review_id, d.sha256, "pdf")
        listed = documentation.list_documents(session=s, actor=RHEA, model="card-scorer", review_id=review_id)
        assert [x.id for x in listed] == [d.id]
        assert documentation.read_document(session=s, actor=RHEA, document_id=d.id).content == generated.content


def test_a_document_older_than_the_latest_evaluation_is_out_of_date(reviewed):
    v, _ = reviewed
    d = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").document
    _evaluate(v.id, start=datetime(2026, 7, 15), auc=0.85, created_at=d.generated_at + timedelta(milliseconds=1))
    with session_scope() as s:
        (listed,) = documentation.list_documents(session=s, actor=RHEA, model="card-scorer", version=1)
    assert listed.id == d.id and listed.out_of_date
    fresh = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md")
    assert "0.8500" in fresh.content.decode() and not fresh.document.out_of_date


def test_a_tampered_document_is_refused(reviewed):
    d = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").document
    path = artifacts.resolve(d.path)
    path.write_bytes(path.read_bytes().replace(b"0.8765", b"0.9999"))
    with session_scope() as s, pytest.raises(IntegrityFailure, match=f"document {d.id} was altered"):
        documentation.read_document(session=s, actor=RHEA, document_id=d.id)


def test_without_an_open_review_the_document_stands_alone(backend, tmp_path):
    v = _tiny_model(tmp_path)
    _deploy_and_review(v.id, state="APPROVED")
    d = documentation.generate(actor=RHEA, model="card-scorer", fmt="md")
    assert d.document.review_id is None
    text = d.content.decode()
    assert "No evaluation window has been stored for this version yet." in text
    assert "No drift has been measured for this version yet." in text


def test_an_external_model_says_it_has_no_artifact(backend, tmp_path):
    _tiny_model(tmp_path, with_artifact=False, name="vendor-model")
    md = documentation.generate(actor=RHEA, model="vendor-model", fmt="md").content.decode()
    assert "Version 1 has no artifact (an external model)" in md
    assert "none (external model, no artifact)" in md


def test_bad_requests_are_refused_and_write_nothing(backend, tmp_path):
    _tiny_model(tmp_path)
    with pytest.raises(InvalidInput, match="document format 'docx' is not one of md, html, pdf"):
        documentation.generate(actor=RHEA, model="card-scorer", fmt="docx")
    with pytest.raises(NotFound, match="no model named 'nope'"):
        documentation.generate(actor=RHEA, model="nope", fmt="md")
    with pytest.raises(NotFound, match="card-scorer has no version 9"):
        documentation.generate(actor=RHEA, model="card-scorer", version=9, fmt="pdf")
    with session_scope() as s:
        assert s.exec(select(Document)).all() == []
    assert not (tmp_path / "home" / "documents").exists()


def test_the_command_line_writes_the_document_and_fails_cleanly(reviewed, tmp_path):
    out = tmp_path / "card-scorer-v1.html"
    as_rhea = cli_token("rhea", ("risk_manager",))
    result = CliRunner().invoke(main, ["docs", "card-scorer", "--version", "1", "--format", "html", "--out", str(out)],
                                env=as_rhea)
    assert result.exit_code == 0, result.output
    assert "attached to review" in result.output
    with session_scope() as s:
        (row,) = s.exec(select(Document)).all()
    assert row.sha256 == hashlib.sha256(out.read_bytes()).hexdigest() and row.sha256 in result.output
    for args, reason in ((["docs", "nope", "--format", "md", "--out", str(tmp_path / "x.md")], "no model named 'nope'"),
                         (["docs", "card-scorer", "--format", "md", "--out", str(tmp_path / "no" / "x.md")],
                          "folder")):
        failed = CliRunner().invoke(main, args, env=as_rhea)
        assert failed.exit_code == 1 and reason in failed.output
    with session_scope() as s:
        assert len(s.exec(select(Document)).all()) == 1


def test_diagnostics_and_importance_are_the_validation_labs(reviewed):
    md = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    with session_scope() as s:
        lab = validation.open_lab(session=s, actor=SYSTEM, model="card-scorer", version=1)
    importances = validation.importance(lab)
    report = diagnostics.diagnose(lab, importances=importances)
    assert len(report.items) >= 5
    for item in report.items:
        assert f"| {item.name} | {item.status} |" in md, item.name
    top = importances[0]
    assert f"| {top.feature} | {top.mean:.4f} |" in md


def _store_the_labs_findings() -> None:
    with session_scope() as s:
        lab_results.queue(session=s, actor=SYSTEM, model="card-scorer", version=1)
    assert lab_results.compute_queued() == [(1, "done")]


def _assessment(md: str) -> str:
    return md[md.index("## Diagnostics"):md.index("## Deployments")]


def test_the_document_shows_the_labs_stored_findings_without_running_the_model_again(reviewed, monkeypatch):
    computed_here = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    _store_the_labs_findings()

    def computed(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the document ran the lab although its findings were stored")

    for module, name in ((comparison, "permutation_importances"), (lab, "permutation_importances"),
                         (lab, "open_lab"), (diagnostics, "diagnose")):
        monkeypatch.setattr(module, name, computed)
    for fmt in ("md", "html", "pdf"):
        documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt=fmt)
    stored = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    assert _assessment(stored) == _assessment(computed_here)


@pytest.mark.parametrize("findings", ["none stored", "stored"])
def test_a_tampered_artifact_is_reported_in_the_document(reviewed, findings):
    v, _ = reviewed
    if findings == "stored":  # the findings were computed before the file was changed: the model is not trusted
        _store_the_labs_findings()
    path = artifacts.resolve(v.artifact_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    md = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    assert "The artifact failed verification, so the model was not run" in md
    assert "was tampered with" in md


def test_a_candidate_without_windows_shows_the_active_versions_clearly_labelled(reviewed):
    v, _ = reviewed
    with session_scope() as s:
        reference = artifacts.load_reference(path=v.reference_path, sha256=v.reference_sha256)
        candidate = registry.add_version(session=s, actor=SYSTEM, model="card-scorer", reference=reference,
                                         artifact_path=v.artifact_path, artifact_sha256=v.artifact_sha256,
                                         origin="scheduled_retrain", training_metrics={"roc_auc": 0.95})
    md = documentation.generate(actor=RHEA, model="card-scorer", version=candidate.number, fmt="md").content.decode()
    assert "Version 2 has no evaluation window of its own yet" in md and "they measure v1, not v2" in md
    assert "_Active v1: the latest 2 evaluation windows (7D)_" in md and "0.8765" in md
    assert "_Active v1: business metrics per evaluation window_" in md and "4,321.25" in md
    assert "No drift has been measured for this version yet." in md, "drift is never borrowed from another version"


def test_the_lab_runs_again_when_what_it_depends_on_changes(reviewed):
    first = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    again = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    section = first[first.index("## Diagnostics"):first.index("## Deployments")]
    assert section == again[again.index("## Diagnostics"):again.index("## Deployments")]
    assert "| Business metric vs active | pass | v1 is the active version. |" in section
    with session_scope() as s:
        model = s.exec(select(Model).where(Model.name == "card-scorer")).one()
        model.business_metrics = []
        s.add(model)
    changed = documentation.generate(actor=RHEA, model="card-scorer", version=1, fmt="md").content.decode()
    assert "| Business metric vs active | warn | card-scorer declares no business metric to compare on. |" in changed


# --- the demo story ----------------------------------------------------------------------------------

SECTIONS = ("Purpose and business context", "Data", "Training recipe and parameters", "Performance",
            "Business metrics", "Drift per field", "Diagnostics", "Global importance", "Deployments",
            "Review and sign-off", "Audit trail", "About this document")


def _person(username: str) -> Actor:
    with session_scope() as s:
        return users.get_user(session=s, username=username).actor


def test_the_demo_v3_document_tells_the_story_with_the_stores_numbers(demo_home):
    rhea = _person("rhea")
    with session_scope() as s:
        review = governance.find_review(session=s, model="fraud-detector", version=3)
        v3 = registry.get_version(session=s, model="fraud-detector", version=3)
        v2_weeks = evaluation_store.list_evaluations(session=s, actor=rhea, model="fraud-detector", version=2,
                                                     granularity="7D")
    assert review is not None and review.state == "WAITING_FOR_FEEDBACK"
    generated = documentation.generate(actor=rhea, model="fraud-detector", version=3, fmt="md")
    md = generated.content.decode()
    for title in SECTIONS:
        assert f"\n## {title}\n" in md, title
    # Context and data as the project and the version's reference sample hold them.
    for expected in ("Credit card fraud (FRAUD)", "Payments integrity", "**Risk level:** high", "card_age_days",
                     f"{v3.reference_rows:,} rows", "hist_gradient_boosting", "scheduled_retrain",
                     "Triggered by:** check 'auc'"):
        assert expected in md, expected
    # Held-out and training-split metrics as recorded at training; v2's weeks as the evaluation store holds them.
    held, train = v3.training_metrics["roc_auc"], v3.training_metrics["train_roc_auc"]
    assert f"| roc_auc | {held:.4f} | {train:.4f} |" in md
    last = v2_weeks[-1]
    assert f"| {last.rows:,} | {last.labelled_rows:,} | {last.metrics['roc_auc']:.4f} |" in md
    assert f"{last.business_metrics['fraud_missed_amount']:,.2f}" in md
    # The lab's verdicts, the staging deployment, the review with IT & operations' feedback, the trail.
    assert "Champion / challenger: challenger wins." in md and "| Leakage | pass |" in md
    assert "| staging |" in md and "| maya |" in md
    assert f"#{review.id} at stage Review" in md and "WAITING_FOR_FEEDBACK" in md
    omar = next(s for s in review.signoffs if s.role == "it_ops")
    assert f"| IT & operations | omar | APPROVED | {omar.comment} |" in md
    assert "Awaiting feedback from:** Risk & compliance, Business" in md
    for action in ("version.register", "deploy", "review.request", "review.feedback"):
        assert f"| {action} |" in md, action
    assert v3.artifact_sha256 in md and generated.document.review_id == review.id


def test_the_demo_v2_document_puts_card_age_days_at_the_top_of_its_drift(demo_home):
    md = documentation.generate(actor=_person("maya"), model="fraud-detector", version=2, fmt="md").content.decode()
    drift = md[md.index("## Drift per field"):md.index("## Diagnostics")]
    rows = [line for line in drift.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows[0].startswith("| card_age_days | numeric |") and rows[0].endswith("| yes |")
    assert "1 of 10 fields drifted" in drift


def test_the_demo_v3_html_and_pdf_attached_to_its_review(demo_home):
    rhea, bianca = _person("rhea"), _person("bianca")
    with session_scope() as s:
        review = governance.find_review(session=s, model="fraud-detector", version=3)
        governance.give_feedback(session=s, actor=bianca, review_id=review.id, role="business", verdict="MINOR_ISSUE",
                                 comment=f"Fewer missed frauds {PLANTED}")
    html_doc = documentation.generate(actor=rhea, model="fraud-detector", version=3, fmt="html")
    page = html_doc.content.decode()
    parsed = _Tags()
    parsed.feed(page)
    assert {"script", "link", "iframe", "object", "embed"}.isdisjoint(t for t, _ in parsed.tags)
    urls = [a[k] for t, a in parsed.tags for k in ("src", "href") if a.get(k)]
    assert urls and all(u.startswith(("data:image/png;base64,", "#")) for u in urls)
    assert not [u for u in urls if "//" in u.split(",", 1)[0]]
    assert f"Fewer missed frauds {PLANTED}" in "".join(parsed.text)

    pdf_doc = documentation.generate(actor=rhea, model="fraud-detector", version=3, fmt="pdf")
    reader = PdfReader(io.BytesIO(pdf_doc.content))
    assert len(reader.pages) >= 4
    text = " ".join(p.extract_text() for p in reader.pages)
    for title in SECTIONS:
        assert title in text, title
    assert "card_age_days" in text and f"Fewer missed frauds {PLANTED}" in text

    for generated in (html_doc, pdf_doc):
        d = generated.document
        assert d.review_id == review.id and not d.out_of_date
        assert hashlib.sha256(artifacts.resolve(d.path).read_bytes()).hexdigest() == d.sha256
    with session_scope() as s:
        attached = documentation.list_documents(session=s, actor=rhea, model="fraud-detector", version=3,
                                                review_id=review.id)
    assert [d.format for d in attached] == ["pdf", "html"]
