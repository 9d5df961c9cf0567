"""Cloud Function: remove_background. Pushed by its Pub/Sub subscription; the work is shared/stages/remove_background.py."""

from shared.runtime.entry.stage import stage_function
from shared.stages import remove_background

handle = stage_function(remove_background)
