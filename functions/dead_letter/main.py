"""Cloud Function: dead_letter. A message that failed every delivery ends its job as failed
(shared/runtime/job_end.py)."""

from shared.runtime.entry.failure_handler import dead_letter_function

handle = dead_letter_function()
