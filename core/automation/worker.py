"""The worker: APScheduler's BlockingScheduler in its own process, driven by Watchtower's own tables.

Jobs are rebuilt from the Scenario table every `sync_seconds` (no pickled job store), each under the
explicit id `scenario:<id>` with `replace_existing=True`. A trigger firing only records a requested run;
the poll job (every ~2 s) claims requested runs — those from triggers, "Run now" and approvals — one at a time
(see core.automation.claims) and goes straight on to the next while any is left, so several workers share one
database and each run goes to exactly one of them. Due alert deliveries are retried here too, and the
validation lab's findings queued for new versions are computed.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import select

from core import audit, leases
from core.alerting import alerts
from core.automation import runner
from core.automation.step_kinds import load_step_kinds
from core.db import session_scope
from core.entities import Scenario

log = logging.getLogger("watchtower.worker")

# A trigger missed by up to 10 minutes (a restart, a long run before it) still runs once; older ones are
# dropped rather than replayed, and several missed firings coalesce into one run.
MISFIRE_GRACE_SECONDS = 600
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class Worker:
    sync_seconds: float = 30.0
    poll_seconds: float = 2.0
    delivery_seconds: float = 10.0
    worker_id: str = field(default_factory=leases.new_holder_id)

    def __post_init__(self) -> None:
        self.scheduler = BlockingScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS})
        self.triggers: dict[int, tuple[str, str]] = {}
        self.stopping = threading.Event()  # set on SIGTERM / SIGINT: the poll loop claims nothing more

    # --- jobs ---------------------------------------------------------------------------------------

    def fire(self, scenario_id: int) -> None:
        """A scenario's trigger fired: record the requested run (the poll job runs it)."""
        run_id = runner.request_scheduled_run(scenario_id=scenario_id, worker_id=self.worker_id)
        if run_id is not None:
            log.info("scenario %s: scheduled run #%s requested", scenario_id, run_id)

    def poll(self) -> None:
        """Claim and execute requested runs one after another, with no pause between them, until none is left."""
        while not self.stopping.is_set() and (done := runner.run_next(worker_id=self.worker_id)) is not None:
            run_id, outcome = done
            log.info("run #%s %s", run_id, outcome.replace("_", " "))

    def compute_lab(self) -> None:
        """Compute the validation lab's queued findings (queued when a version is registered or asked for)."""
        from core.validation import lab_results

        for version_id, outcome in lab_results.compute_queued():
            log.info("version #%s: validation lab findings %s", version_id, outcome)

    def deliver(self) -> None:
        stats = alerts.deliver_due()
        if stats.sent or stats.retrying or stats.failed:
            log.info("deliveries: %s sent, %s to retry, %s failed", stats.sent, stats.retrying, stats.failed)

    def recover(self) -> None:
        for run_id in runner.recover_interrupted(worker_id=self.worker_id):
            log.warning("run #%s was interrupted: its worker stopped mid-run", run_id)

    def sync_jobs(self) -> int:
        """Make the scheduler's jobs match the enabled scenarios; return how many are scheduled."""
        with session_scope() as s:
            wanted = {sc.id: (sc.trigger_kind, sc.trigger_value) for sc in s.exec(
                select(Scenario).where(Scenario.enabled, Scenario.trigger_kind != "manual")).all()}
        for scenario_id in set(self.triggers) - set(wanted):
            self.scheduler.remove_job(f"scenario:{scenario_id}")
            del self.triggers[scenario_id]
        for scenario_id, (kind, value) in wanted.items():
            if self.triggers.get(scenario_id) == (kind, value):
                continue  # re-adding an unchanged interval job would push its next run back
            # Intervals count from a fixed epoch so that every worker's trigger fires at the same instants
            # (the first request wins; the others see it) instead of drifting apart by their start times.
            trigger = CronTrigger.from_crontab(value, timezone=UTC) if kind == "cron" else \
                IntervalTrigger(seconds=int(value), start_date=EPOCH, timezone=UTC)
            self.scheduler.add_job(self.fire, trigger, args=[scenario_id], id=f"scenario:{scenario_id}",
                                   name=f"scenario {scenario_id}", replace_existing=True)
            self.triggers[scenario_id] = (kind, value)
        return len(wanted)

    # --- running ------------------------------------------------------------------------------------

    def run_once(self) -> None:
        """One pass without the scheduler: recover, run what is requested, send what is due."""
        load_step_kinds()
        self.recover()
        self.poll()
        self.compute_lab()
        self.deliver()

    def start(self) -> None:
        """Run until SIGTERM / SIGINT."""
        load_step_kinds()
        self.recover()
        self.sync_jobs()
        internal = {"coalesce": True, "max_instances": 1, "replace_existing": True, "misfire_grace_time": 30}
        self.scheduler.add_job(self.sync_jobs, IntervalTrigger(seconds=self.sync_seconds), id="watchtower:sync",
                               **internal)
        self.scheduler.add_job(self.poll, IntervalTrigger(seconds=self.poll_seconds), id="watchtower:poll",
                               **internal)
        self.scheduler.add_job(self.compute_lab, IntervalTrigger(seconds=self.poll_seconds), id="watchtower:lab",
                               **internal)
        self.scheduler.add_job(self.deliver, IntervalTrigger(seconds=self.delivery_seconds),
                               id="watchtower:deliveries", **internal)
        self.scheduler.add_job(self.recover, IntervalTrigger(seconds=max(self.poll_seconds * 5, 10)),
                               id="watchtower:recover", **internal)
        self.scheduler.add_job(audit.checkpoint_job, IntervalTrigger(seconds=audit.checkpoint_tick_seconds()),
                               id="watchtower:audit-checkpoint", **internal)

        def stop(signum: int, _frame: object) -> None:
            log.info("stopping on signal %s", signum)
            self.stopping.set()
            self.scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("worker %s started with %s scheduled scenario(s)", self.worker_id, len(self.triggers))
        self.scheduler.start()
