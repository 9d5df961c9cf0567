"""Cloud Function: ingest. Triggered by the uploads bucket's notification on `uploads/`; the work is
shared/stages/ingest.py."""

from shared.runtime.entry.upload import upload_function
from shared.stages import ingest

handle = upload_function(ingest)
