"""ClosetConnect cloth pipeline: stage logic, providers and adapters shared by every function."""

PIPELINE_VERSION = "1.0.0"
