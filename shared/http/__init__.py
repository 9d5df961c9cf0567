"""The HTTP functions' logic: signed upload URLs and the job-status endpoint."""
