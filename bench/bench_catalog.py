"""Catalog search over 10,000 components: target ≤ 0.3 s per search, against a plain listing of the same rows.

Runs on SQLite (a temporary home) and, when reachable, on PostgreSQL (a private schema in the benchmarks'
database, see bench/common.py). Exits 1 when a search misses the target.
Usage: .venv/bin/python bench/bench_catalog.py [N]   (BENCH_QUICK=1: 2,000 components, 5 runs per search)
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import finish, postgres_url, private_schema, quick, report, sized  # noqa: E402
from sqlmodel import select  # noqa: E402

from core import db  # noqa: E402
from core.catalog import components as catalog  # noqa: E402
from core.entities import COMPONENT_KINDS, Component, ComponentUse, Project, User  # noqa: E402

TARGET_S = 0.3
REPEAT = 5 if quick() else 15
OWNERS = ["bianca", "dario", "maya", "rhea", "omar", "admin"]
VOCABULARY = ("fraud churn credit card customer review text complaint sentiment tfidf logistic forest boosting "
              "drift recall precision auc weekly daily monthly amount merchant payment retail insurance claim "
              "pricing demand forecast marketing finance risk compliance anomaly transaction session click "
              "campaign uplift survival default loan mortgage income segment cluster embedding vision image "
              "audio speech translation summary quality missing volume threshold baseline champion challenger "
              "calibration leakage imbalance overfit window label ground truth scoring endpoint batch stream").split()
TAGS = [f"tag-{w}" for w in VOCABULARY[:40]]
SEARCHES = {
    "one common word": {"query": "fraud"},
    "two words": {"query": "customer review"},
    "three words + kind": {"query": "credit risk drift", "kind": "recipe"},
    "rare word": {"query": "component-9876"},
    "tag filter": {"tag": "tag-churn"},
    "owner + word": {"owner": "dario", "query": "sentiment"},
    "project filter": {"project": "P07"},
    "everything, first page": {},
}


def populate(n: int) -> None:
    rng = random.Random(7)
    with db.session_scope() as s:
        for u in OWNERS:
            s.add(User(username=u, name=u.title(), email=f"{u}@bank.example", roles=["data_scientist"]))
        project_rows = [Project(key=f"P{i:02d}", name=f"Project {i}", owner=rng.choice(OWNERS)) for i in range(20)]
        s.add_all(project_rows)
        s.flush()
        rows = []
        for i in range(n):
            words = rng.sample(VOCABULARY, 14)
            c = Component(kind=COMPONENT_KINDS[i % len(COMPONENT_KINDS)], name=f"component-{i} {words[0]} {words[1]}",
                          description=" ".join(words[2:]), owner=rng.choice(OWNERS), tags=rng.sample(TAGS, 3),
                          project_id=rng.choice(project_rows).id, spec={"n": i}, created_by="bench")
            catalog._index(c)  # the same indexing the service applies on register and change
            rows.append(c)
        s.add_all(rows)
        s.flush()
        s.add_all([ComponentUse(component_id=c.id, project_id=p.id, how="uses it", created_by="bench")
                   for c in rows if rng.random() < 0.3 for p in rng.sample(project_rows, 2)])


def timed(fn) -> tuple[float, float, object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times), result


def run(label: str, n: int) -> bool:
    db.dispose_engines()
    t0 = time.perf_counter()
    populate(n)
    print(f"\n[{label}] {n:,} components loaded in {time.perf_counter() - t0:.1f}s")

    def listing() -> int:
        with db.session_scope() as s:
            return len(s.exec(select(Component)).all())

    base_med, base_max, listed = timed(listing)
    print(f"  baseline: plain listing of all {listed:,} rows   median {base_med * 1000:7.1f} ms  max {base_max * 1000:7.1f} ms")
    ok, slowest, slowest_ratio = True, 0.0, 0.0
    for name, kwargs in SEARCHES.items():
        def search(kwargs=kwargs) -> catalog.SearchResult:
            with db.session_scope() as s:
                return catalog.search(session=s, **kwargs)

        med, worst, result = timed(search)
        ok &= worst <= TARGET_S
        slowest, slowest_ratio = max(slowest, worst), max(slowest_ratio, med / base_med)
        print(f"  search {name:<24} {result.total:6,} hits  median {med * 1000:7.1f} ms  max {worst * 1000:7.1f} ms"
              f"  = {med / base_med:4.2f}x listing   {'ok' if worst <= TARGET_S else 'OVER TARGET'}")
    report(f"catalog search, {n:,} components ({label})",
           f"slowest {slowest * 1000:.0f} ms (median up to {slowest_ratio:.2f}x a plain listing)",
           f"<= {TARGET_S * 1000:.0f} ms each", ok)
    return ok


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else sized(10_000, 2_000)
    print(f"catalog search, target ≤ {TARGET_S:.1f} s per search (max of {REPEAT} runs), "
          "each shown against a plain listing of the same rows in the same run")
    with tempfile.TemporaryDirectory() as home:
        os.environ["WATCHTOWER_HOME"] = home
        os.environ["WATCHTOWER_DATABASE_URL"] = f"sqlite:///{home}/watchtower.db"
        run("sqlite", n)
        db.dispose_engines()
        base = postgres_url()
        if base is None:
            print("\n[postgres] skipped")
        else:
            with private_schema(base) as url:
                os.environ["WATCHTOWER_DATABASE_URL"] = url
                try:
                    run("postgres", n)
                finally:
                    db.dispose_engines()
    finish()


if __name__ == "__main__":
    main()
