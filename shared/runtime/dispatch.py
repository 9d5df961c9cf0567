"""Runs a stage on one message and publishes what it produced: the piece every transport shares.

A Cloud Function decodes its event and calls `Dispatcher.handle`; the local in-process bus calls the
same. A dispatcher knows only the stages it is given (a function is given its own), so a function
imports just its stage. Permanent errors end the job as failed (and the message is acked); anything
else propagates so the transport retries.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType
from typing import Callable

from shared.adapters.bus import Bus
from shared.documents import ResultDocument
from shared.errors import InvalidMessage, PermanentError, PipelineError, RetriesExhausted, StorageUnavailable
from shared.messages import Job, StageMessage, decode
from shared.runtime import job_end
from shared.runtime.job_state import claim_final_result, mark_published
from shared.runtime.outcomes import OutcomeRecords
from shared.stages.context import StageContext, StageOutcome
from shared.topology import Topology
from shared.topology import load as load_topology

log = logging.getLogger("closet.dispatch")


class Dispatcher:
    """`stages` maps a stage's name to its module (`accepts`, `emits`, `run`, `warm_up`)."""

    def __init__(self, ctx: StageContext, bus: Bus, stages: dict[str, ModuleType], *,
                 topology: Topology | None = None, on_result: Callable[[ResultDocument], None] | None = None) -> None:
        self.ctx = ctx
        self.bus = bus
        self.stages = stages
        self.topology = topology or load_topology()
        self.records = OutcomeRecords(ctx.store)
        self.on_result = on_result  # e.g. the webhook; after the result is on its topic

    # -- entry points ------------------------------------------------------------------------
    def handle(self, stage_name: str, data: bytes, attempt: int = 1) -> None:
        stage = self.stages[stage_name]
        try:
            message = decode(stage.accepts, data)
        except InvalidMessage as error:
            self._refuse(stage_name, data, error)
            return
        self.run(stage_name, message.model_copy(update={"attempt": max(attempt, 1)}))

    def run(self, stage_name: str, message: StageMessage) -> StageOutcome:
        stage = self.stages[stage_name]
        started = time.perf_counter()
        outcome = self.records.get(stage_name, message, stage.emits)
        if outcome is None:
            try:
                outcome = stage.run(message, self.ctx)
            except PermanentError as error:
                outcome = self.failure(message.job, error, message.timings)
            self.records.put(stage_name, message, outcome)
        else:
            log.info("redelivered message: forwarding the recorded outcome", extra=_fields(message.job, stage_name))
        self.publish(stage_name, message, outcome)
        log.info("stage done", extra={**_fields(message.job, stage_name), "ms": round((time.perf_counter() - started) * 1000)})
        return outcome

    def handle_dead_letter(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        """A message that failed every delivery: end its job as failed, once, and tell the app."""
        job = job_end.salvage_job(data)
        if job is None:
            log.error("dead-lettered message without a readable job; dropped", extra={"stage": "dead_letter"})
            return
        source = (attributes or {}).get("CloudPubSubDeadLetterSourceSubscription") or (attributes or {}).get(
            "CloudPubSubDeadLetterSourceTopic", "a stage")
        error = RetriesExhausted(f"Processing failed repeatedly in {source} and was stopped.")
        outcome = self.failure(job, error)
        self._publish_result(outcome, job, claimer="dead_letter")
        self._publish_progress(outcome, job)

    def warm_up(self, stage_name: str) -> None:
        self.stages[stage_name].warm_up(self.ctx)

    # -- endings -----------------------------------------------------------------------------
    def failure(self, job: Job, error: PipelineError, timings: dict[str, int] | None = None) -> StageOutcome:
        log.warning("job failed: %s %s", error.code, error.message, extra=_fields(job, "failure"))
        return job_end.failed(job, error, self.ctx.store, timings)

    def publish(self, stage_name: str, message: StageMessage, outcome: StageOutcome) -> None:
        job = message.job
        next_topic = self.topology.next_topic(stage_name)
        for follow_up in outcome.next:
            self.bus.publish(next_topic, follow_up.to_json(), {"jobId": job.job_id})
        self._publish_progress(outcome, job)
        item = getattr(message, "item_index", None)
        self._publish_result(outcome, job, claimer=f"{stage_name}:{'' if item is None else item}")

    def _publish_progress(self, outcome: StageOutcome, job: Job) -> None:
        for event in outcome.progress:
            self.bus.publish(self.topology.progress_topic, event.to_json(), {"jobId": job.job_id})

    def _publish_result(self, outcome: StageOutcome, job: Job, claimer: str) -> None:
        if outcome.result is None or not claim_final_result(self.ctx.store, job.job_id, claimer):
            return
        attributes = {"jobId": job.job_id, "success": str(outcome.result.success).lower()}
        self.bus.publish(self.topology.results_topic, outcome.result.to_json(), attributes)
        try:
            mark_published(self.ctx.store, job.job_id, claimer)
        except StorageUnavailable:  # the result is out: retrying the message would publish it twice
            log.warning("result published but not marked so", extra=_fields(job, "publish"))
        if self.on_result is not None:
            self.on_result(outcome.result)

    def _refuse(self, stage_name: str, data: bytes, error: InvalidMessage) -> None:
        job = job_end.salvage_job(data)
        if job is None:
            log.error("unreadable message refused: %s", error.message, extra={"stage": stage_name})
            return
        outcome = self.failure(job, error)
        self._publish_progress(outcome, job)
        self._publish_result(outcome, job, claimer=f"{stage_name}:refused")


def _fields(job: Job, stage: str) -> dict[str, str]:
    return {"jobId": job.job_id, "clothId": job.cloth_id, "stage": stage}
