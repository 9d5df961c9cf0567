"""Cloud Function: deliver. Pushed by its Pub/Sub subscription; the work is shared/stages/deliver.py."""

from shared.runtime.entry.stage import stage_function
from shared.stages import deliver

handle = stage_function(deliver)
