"""Runs a stage on one message and publishes what it produced: the piece every transport shares.

A Cloud Function decodes its event and calls `Dispatcher.handle`; the local in-process bus calls the
same. A dispatcher knows only the stages it is given (a function is given its own), so a function
imports just its stage. Permanent errors end the job as failed (and the message is acked); transient
ones propagate so the transport retries; an unexpected exception (a bug) is retried a few times and
then ends the job as INTERNAL_ERROR, without re-running the stages that had finished.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType

from shared.adapters.bus import Bus
from shared.errors import InvalidMessage, PermanentError, PipelineError, RetriesExhausted, TransientError
from shared.messages import Job, StageMessage, decode
from shared.runtime import job_end, trace
from shared.runtime.outcomes import OutcomeRecords, StageOutcome
from shared.stages.context import StageContext, delivery_scope
from shared.topology import Topology
from shared.topology import load as load_topology

log = logging.getLogger("closet.dispatch")
BUG_ATTEMPTS = 3  # deliveries of a message whose stage raised something unexpected, before INTERNAL_ERROR


class Dispatcher:
    """`stages` maps a stage's name to its module (`accepts`, `emits`, `run`, `warm_up`)."""

    def __init__(self, ctx: StageContext, bus: Bus, stages: dict[str, ModuleType], *,
                 topology: Topology | None = None) -> None:
        self.ctx = ctx
        self.bus = bus
        self.stages = stages
        self.topology = topology or load_topology()
        self.records = OutcomeRecords(ctx.store)

    # -- entry points ------------------------------------------------------------------------
    def handle(self, stage_name: str, data: bytes, attempt: int = 1, deadline: float | None = None) -> None:
        stage = self.stages[stage_name]
        try:
            message = decode(stage.accepts, data)
        except InvalidMessage as error:
            self._refuse(stage_name, data, error)
            return
        trace.mark("decoded")
        self.run(stage_name, message.model_copy(update={"attempt": max(attempt, 1)}), deadline)

    def run(self, stage_name: str, message: StageMessage, deadline: float | None = None) -> StageOutcome:
        """`deadline` (time.monotonic()) is when the function's request times out; by default the
        stage's timeout from topology.json, counted from now."""
        stage = self.stages[stage_name]
        started = time.perf_counter()
        if deadline is None:
            deadline = time.monotonic() + self.topology.stage(stage_name).timeout_s
        claimer = _claimer(stage_name, message)
        trace.note(jobId=message.job.job_id, stage=stage_name)
        outcome = self.records.get(stage_name, message, stage.emits)
        if outcome is not None and self.records.forwarded(stage_name, message):
            # A duplicate of a message whose outcome already went out: publishing it again would make
            # every later stage see doubles too, and theirs doubles again.
            log.info("duplicate of a delivered message: nothing to do", extra=_fields(message.job, stage_name))
            return outcome
        # Concurrent duplicates wait (InProgress) while this delivery runs the stage and publishes its
        # outcome; the lease is taken over only once its holder's time is up.
        self.records.begin(stage_name, message, lease_s=max(1.0, deadline - time.monotonic()))
        if outcome is None:
            outcome = self.records.get(stage_name, message, stage.emits)  # one finished meanwhile?
        if outcome is None:
            try:
                with trace.phase("stage"):
                    outcome = self._run_stage(stage, stage_name, message, deadline, claimer)
                self.records.put(stage_name, message, outcome)
            except BaseException:
                self.records.release(stage_name, message)  # the retry must not wait out this lease
                raise
        else:
            log.info("redelivered message: forwarding the recorded outcome", extra=_fields(message.job, stage_name))
        try:
            self.publish(stage_name, message, outcome)
        except BaseException:
            self.records.release(stage_name, message)  # its retry forwards the recorded outcome at once
            raise
        self.records.mark_forwarded(stage_name, message)
        log.info("stage done", extra={**_fields(message.job, stage_name), "ms": round((time.perf_counter() - started) * 1000)})
        return outcome

    def _run_stage(self, stage: ModuleType, stage_name: str, message: StageMessage, deadline: float,
                   claimer: str) -> StageOutcome:
        try:
            with delivery_scope(deadline):
                # The stage claims nothing: an ending it returns is run here only if this delivery wins the job's end.
                return job_end.finish(stage.run(message, self.ctx), message.job, self.ctx.store, claimer)
        except PermanentError as error:
            return self.failure(message.job, error, claimer, message.timings)
        except TransientError:
            raise
        except Exception as bug:
            if message.attempt < BUG_ATTEMPTS:
                raise  # it may be the instance (memory, a dying process): another delivery may do
            log.exception("stage %s kept failing unexpectedly", stage_name, extra=_fields(message.job, stage_name))
            error = PipelineError(f"Processing failed unexpectedly in {stage_name} ({type(bug).__name__}).")
            return self.failure(message.job, error, claimer, message.timings)

    def handle_dead_letter(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        """A message that failed every delivery: end its job as failed, unless it already ended."""
        job = job_end.salvage_job(data)
        if job is None:
            log.error("dead-lettered message without a readable job; dropped", extra={"stage": "dead_letter"})
            return
        source = (attributes or {}).get("CloudPubSubDeadLetterSourceSubscription") or (attributes or {}).get(
            "CloudPubSubDeadLetterSourceTopic", "a stage")
        error = RetriesExhausted(f"Processing failed repeatedly in {source} and was stopped.")
        # A claim left unpublished longer than any stage may run belongs to a holder that kept dying.
        longest = max(spec.timeout_s for spec in self.topology.stages)
        outcome = self.failure(job, error, "dead_letter", take_over_after_s=2 * longest)
        if self._publish_result(outcome, "dead_letter"):
            self._publish_progress(outcome, job)

    def warm_up(self, stage_name: str) -> None:
        self.stages[stage_name].warm_up(self.ctx)

    # -- endings -----------------------------------------------------------------------------
    def failure(self, job: Job, error: PipelineError, claimer: str, timings: dict[str, int] | None = None,
                *, take_over_after_s: float | None = None) -> StageOutcome:
        log.warning("job failing: %s %s", error.code, error.message, extra=_fields(job, "failure"))
        return job_end.failed(job, error, self.ctx.store, claimer, timings, take_over_after_s=take_over_after_s)

    def publish(self, stage_name: str, message: StageMessage, outcome: StageOutcome) -> None:
        job = message.job
        next_topic = self.topology.next_topic(stage_name)
        for follow_up in outcome.next:
            self.bus.publish(next_topic, follow_up.to_json(), {"jobId": job.job_id})
        ending = self._publish_result(outcome, _claimer(stage_name, message))
        if ending or not job_end.ended(self.ctx.store, job.job_id):
            self._publish_progress(outcome, job)  # a stale delivery of an ended job reports nothing

    def _publish_progress(self, outcome: StageOutcome, job: Job) -> None:
        for event in outcome.progress:
            self.bus.publish(self.topology.progress_topic, event.to_json(), {"jobId": job.job_id})

    def _publish_result(self, outcome: StageOutcome, claimer: str) -> bool:
        """Whether this delivery published the job's result just now."""
        if outcome.result is None:
            return False
        return job_end.publish(outcome.result, self.ctx.store, self.bus, self.topology, claimer) is not None

    def _refuse(self, stage_name: str, data: bytes, error: InvalidMessage) -> None:
        job = job_end.salvage_job(data)
        if job is None:
            log.error("unreadable message refused: %s", error.message, extra={"stage": stage_name})
            return
        outcome = self.failure(job, error, f"{stage_name}:refused")
        if self._publish_result(outcome, f"{stage_name}:refused"):
            self._publish_progress(outcome, job)


def _claimer(stage_name: str, message: StageMessage) -> str:
    """Who may end the job from this message: the stage and, for per-garment messages, the garment."""
    item = getattr(message, "item_index", None)
    return f"{stage_name}:{'' if item is None else item}"


def _fields(job: Job, stage: str) -> dict[str, str]:
    return {"jobId": job.job_id, "clothId": job.cloth_id, "stage": stage}
