"""Alert fan-out: 1,000 failed checks alerted and delivered to a local signed webhook, each exactly once.

    .venv/bin/python bench/bench_fanout.py [--alerts 1000] [--senders 2] [--database-url URL]

A fresh Watchtower home (SQLite unless --database-url), one check whose audience is one ML engineer and
whose channel is a signed webhook pointing at an HTTP receiver on 127.0.0.1. 1,000 failing evaluation
windows give 1,000 failed check results; in the same run:
- fan-out: alerts.fan_out_many, 100 results at a time (alert rows + pending deliveries);
- delivery: `--senders` concurrent senders (as several workers would) call alerts.deliver_due until
  nothing is due; the receiver verifies every HMAC signature and counts each alert id;
- baseline: the same 1,000 signed bodies POSTed to the same receiver in a plain loop over one connection.
Target: every alert delivered exactly once, none lost, none doubled. Exits 1 when missed.
BENCH_QUICK=1: 200 alerts.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import finish, report, sized  # noqa: E402

KEY = "bench-hmac-key"


class Receiver:
    """Counts deliveries by alert id; rejects (and counts) a wrong signature."""

    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(expected, self.headers.get("X-Watchtower-Signature", ""))
                if ok:
                    receiver.seen[json.loads(body)["details"]["alert_id"]] += 1
                else:
                    receiver.bad_signatures += 1
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def seed(n: int, url: str) -> list[int]:
    """A project, model, engineer, webhook channel and check; n failing windows checked; returns result ids."""
    import pandas as pd

    from core.access import SYSTEM
    from core.alerting import channels
    from core.db import session_scope
    from core.entities import Evaluation
    from core.identity import users
    from core.models import registry
    from core.monitoring import checks
    from core.projects import projects

    os.environ["WT_BENCH_HOOK"], os.environ["WT_BENCH_KEY"] = url, KEY
    csv = Path(os.environ["WATCHTOWER_HOME"]) / "reference.csv"
    pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "is_fraud": [0, 1, 0, 1]}).to_csv(csv, index=False)
    with session_scope() as s:
        users.create_user(session=s, actor=SYSTEM, username="maya", name="Maya", email="maya@bank.example", roles=["ml_engineer"])
        projects.create_project(session=s, actor=SYSTEM, key="FRAUD", name="Credit card fraud")
        registry.register_model(session=s, actor=SYSTEM, project_key="FRAUD", name="fraud-detector", task="binary",
                                target="is_fraud", reference_csv=csv)
        channels.define_channel(session=s, actor=SYSTEM, name="hook", kind="webhook",
                                config={"url_secret": "WT_BENCH_HOOK", "hmac_secret": "WT_BENCH_KEY"})
        checks.define_check(session=s, actor=SYSTEM, project_key="FRAUD", model="fraud-detector", name="auc",
                            kind="metric", metric="roc_auc", threshold=0.85, audience_roles=["ml_engineer"],
                            channels=["hook"])
        version_id = registry.get_version(session=s, model="fraud-detector").id
        start = datetime(2020, 1, 1)
        evs = [Evaluation(model_version_id=version_id, window_start=start + timedelta(days=i),
                          window_end=start + timedelta(days=i + 1), rows=100, labelled_rows=100,
                          metrics={"roc_auc": 0.80}) for i in range(n)]
        s.add_all(evs)
        s.flush()
        ids = [e.id for e in evs]
    results = []
    with session_scope() as s:
        for ev in ids:
            results += [r.id for r in checks.run_checks(session=s, actor=SYSTEM, evaluation_id=ev)]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=sized(1000, 200))
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wt-bench-fanout-"))
    os.environ["WATCHTOWER_HOME"] = str(home)
    os.environ["WATCHTOWER_DATABASE_URL"] = args.database_url or f"sqlite:///{home / 'watchtower.db'}"
    import httpx

    from core.alerting import alerts
    from core.db import session_scope

    receiver = Receiver()
    result_ids = seed(args.alerts, receiver.url)

    t0 = time.perf_counter()
    for start in range(0, len(result_ids), 100):  # as the checks step does: a window's failures at once
        with session_scope() as s:
            alerts.fan_out_many(session=s, check_result_ids=result_ids[start:start + 100])
    fan_out_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    rounds = 0

    def sender() -> None:
        nonlocal rounds
        while alerts.deliver_due().sent:
            rounds += 1

    threads = [threading.Thread(target=sender) for _ in range(args.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deliver_s = time.perf_counter() - t0
    delivered = dict(receiver.seen)

    # Baseline: the same bodies, signed the same way, POSTed in a plain loop.
    from core.alerting import channels

    bodies = [channels.webhook_body(channels.Message(title="auc failed", text="AUC 0.800 below 0.85", severity="error",
                                                     link="", dashboard_url="", history="❌", project="FRAUD",
                                                     audience="engineering", details={"alert_id": -i - 1}))
              for i in range(len(result_ids))]
    t0 = time.perf_counter()
    with httpx.Client() as client:
        for body in bodies:
            client.post(receiver.url, content=body, headers={"Content-Type": "application/json",
                                                             "X-Watchtower-Signature": channels.signature(body, KEY)})
    baseline_s = time.perf_counter() - t0

    with session_scope() as s:
        statuses = Counter(d.status for d in alerts.deliveries(session=s, actor=alerts.Actor("admin", ("admin",)),
                                                               limit=10 * len(result_ids)))
    once = sum(1 for c in delivered.values() if c == 1)
    twice = sum(1 for c in delivered.values() if c > 1)
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"alert fan-out on {backend}: {len(result_ids):,} failed check results → {len(delivered):,} alerts "
          f"delivered to a signed webhook on 127.0.0.1")
    print(f"  fan-out (alerts + deliveries written): {fan_out_s:6.2f} s  ({len(result_ids) / fan_out_s:,.0f}/s)")
    print(f"  delivery by {args.senders} concurrent senders: {deliver_s:6.2f} s  "
          f"({len(delivered) / deliver_s:,.0f}/s)")
    print(f"  baseline, plain POST loop of the same signed bodies: {baseline_s:6.2f} s  "
          f"({len(bodies) / baseline_s:,.0f}/s); delivery / baseline = {deliver_s / baseline_s:.2f}×")
    print(f"  delivered exactly once: {once:,} / {len(result_ids):,}; more than once: {twice}; "
          f"bad signatures: {receiver.bad_signatures}; delivery records: {dict(statuses)}")
    ok = once == len(result_ids) and twice == 0 and receiver.bad_signatures == 0 and statuses.get("sent") == once
    report(f"alert fan-out, {len(result_ids):,} alerts delivered exactly once ({backend})",
           f"{once:,} once, {twice} more than once, {receiver.bad_signatures} bad signatures; delivery "
           f"{deliver_s / baseline_s:.2f}x a plain POST loop", "all exactly once", ok)
    finish()


if __name__ == "__main__":
    main()
