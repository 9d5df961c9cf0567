"""The functions' entry points, one module per kind of function (topology.json's `kind`); each
`functions/<name>/main.py` is a few lines over one of them:

- stage.py: a pushed stage (remove_background, segment, expand, deliver);
- upload.py: ingest, pushed by the uploads bucket's notification;
- failure_handler.py: dead_letter, pushed from the dead-letter topic;
- subscriber.py: the webhook, pushed from its own subscription on the results topic;
- push.py: the CloudEvent handler all of those share.

The HTTP functions' entry point is shared/http/function.py: it needs nothing of the runtime.
"""
