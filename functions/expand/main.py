"""Cloud Function: expand. Pushed by its Pub/Sub subscription; the work is shared/stages/expand.py."""

from shared.runtime.entry.stage import stage_function
from shared.stages import expand

handle = stage_function(expand)
