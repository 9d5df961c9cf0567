"""Runs a stage on one message and publishes what it produced: the piece every transport shares.

A Cloud Function decodes its event and calls `Dispatcher.handle`; the in-process bus calls the
same. Permanent errors end the job as failed (and the message is acked); anything else propagates
so the transport retries; a warm-up message only loads the stage's providers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable

from shared.adapters.bus import Bus
from shared.documents import ProgressStep, ResultDocument
from shared.errors import InvalidMessage, PermanentError, PipelineError, RetriesExhausted, StorageUnavailable
from shared.idempotency import OutcomeRecords
from shared.job_state import claim_final_result, mark_published
from shared.messages import CutoutDone, GarmentDone, GarmentFound, IngestDone, Job, JobRequest, StageMessage, decode
from shared.progress import progress
from shared.stages import deliver, expand, ingest, remove_background, segment
from shared.stages.context import StageContext, StageOutcome
from shared.topology import Topology
from shared.topology import load as load_topology

log = logging.getLogger("closet.dispatch")
WARMUP_ATTRIBUTE = "warmup"


@dataclass(frozen=True)
class Stage:
    name: str
    accepts: type[StageMessage]
    run: Callable[[StageMessage, StageContext], StageOutcome]
    warm_up: Callable[[StageContext], None]


STAGES = {
    stage.name: stage
    for stage in (
        Stage("ingest", JobRequest, ingest.run, ingest.warm_up),
        Stage("remove_background", IngestDone, remove_background.run, remove_background.warm_up),
        Stage("segment", CutoutDone, segment.run, segment.warm_up),
        Stage("expand", GarmentFound, expand.run, expand.warm_up),
        Stage("deliver", GarmentDone, deliver.run, deliver.warm_up),
    )
}


class Dispatcher:
    def __init__(self, ctx: StageContext, bus: Bus, *, topology: Topology | None = None,
                 on_result: Callable[[ResultDocument], None] | None = None) -> None:
        self.ctx = ctx
        self.bus = bus
        self.topology = topology or load_topology()
        self.records = OutcomeRecords(ctx.store)
        self.on_result = on_result  # e.g. the webhook; after the result is on its topic

    # -- entry points ------------------------------------------------------------------------
    def handle(self, stage_name: str, data: bytes, attributes: dict[str, str] | None = None, attempt: int = 1) -> None:
        stage = STAGES[stage_name]
        if (attributes or {}).get(WARMUP_ATTRIBUTE):
            self.warm_up(stage_name)
            return
        try:
            message = decode(stage.accepts, data)
        except InvalidMessage as error:
            self._refuse(stage_name, data, error)
            return
        self.run(stage_name, message.model_copy(update={"attempt": max(attempt, 1)}))

    def run(self, stage_name: str, message: StageMessage) -> StageOutcome:
        stage = STAGES[stage_name]
        following = self.topology.stage(stage_name).next
        next_type = STAGES[following].accepts if following else None
        started = time.perf_counter()
        outcome = self.records.get(stage_name, message, next_type)
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
        job = _salvage_job(data)
        if job is None:
            log.error("dead-lettered message without a readable job; dropped", extra={"stage": "dead_letter"})
            return
        source = (attributes or {}).get("CloudPubSubDeadLetterSourceSubscription") or (attributes or {}).get(
            "CloudPubSubDeadLetterSourceTopic", "a stage")
        error = RetriesExhausted(f"Processing failed repeatedly in {source} and was stopped.")
        outcome = self.failure(job, error)
        self._publish_result(outcome, job, claimer="dead_letter")
        for event in outcome.progress:
            self.bus.publish(self.topology.progress_topic, event.to_json(), {"jobId": job.job_id})

    def warm_up(self, stage_name: str) -> None:
        STAGES[stage_name].warm_up(self.ctx)

    # -- endings -----------------------------------------------------------------------------
    def failure(self, job: Job, error: PipelineError, timings: dict[str, int] | None = None) -> StageOutcome:
        log.warning("job failed: %s %s", error.code, error.message, extra=_fields(job, "failure"))
        document = deliver.failed_document(job, error, self.ctx, timings)
        return StageOutcome(progress=(progress(job, ProgressStep.FAILED),), result=document)

    def publish(self, stage_name: str, message: StageMessage, outcome: StageOutcome) -> None:
        job = message.job
        next_topic = self.topology.next_topic(stage_name)
        for follow_up in outcome.next:
            self.bus.publish(next_topic, follow_up.to_json(), {"jobId": job.job_id})
        for event in outcome.progress:
            self.bus.publish(self.topology.progress_topic, event.to_json(), {"jobId": job.job_id})
        item = getattr(message, "item_index", None)
        self._publish_result(outcome, job, claimer=f"{stage_name}:{'' if item is None else item}")

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
        job = _salvage_job(data)
        if job is None:
            log.error("unreadable message refused: %s", error.message, extra={"stage": stage_name})
            return
        outcome = self.failure(job, error)
        for event in outcome.progress:
            self.bus.publish(self.topology.progress_topic, event.to_json(), {"jobId": job.job_id})
        self._publish_result(outcome, job, claimer=f"{stage_name}:refused")


def _salvage_job(data: bytes) -> Job | None:
    """The job of a message that is otherwise unusable, so its user can still be told."""
    try:
        return Job.model_validate(json.loads(data)["job"])
    except Exception:
        return None


def _fields(job: Job, stage: str) -> dict[str, str]:
    return {"jobId": job.job_id, "clothId": job.cloth_id, "stage": stage}
