"""Progress events at the app's percentages."""

from __future__ import annotations

from shared.documents import STEP_PERCENT, ProgressEvent, ProgressStep
from shared.messages import Job


def progress(job: Job, step: ProgressStep, percent: int | None = None) -> ProgressEvent:
    status = {ProgressStep.COMPLETED: "COMPLETED", ProgressStep.FAILED: "FAILED"}.get(step, "PROCESSING")
    if percent is None:
        percent = STEP_PERCENT.get(step, 100 if step is ProgressStep.FAILED else 0)
    return ProgressEvent(
        job_id=job.job_id, cloth_id=job.cloth_id, user_id=job.user_id,
        status=status, current_step=step, progress_percentage=percent,
        sequence=percent * len(ProgressStep) + list(ProgressStep).index(step),
    )
