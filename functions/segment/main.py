"""Cloud Function: segment. Pushed by its Pub/Sub subscription; the work is shared/stages/segment.py."""

from shared.runtime.entry.stage import stage_function
from shared.stages import segment

handle = stage_function(segment)
