"""The glue that runs stages on messages: dispatch, outcome records, the job's end, the garment join,
the result cache, progress events, the webhook and what a Cloud Function builds once."""
