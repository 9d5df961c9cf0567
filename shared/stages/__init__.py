"""The pipeline's stages, in order. Each is a plain function `run(message, ctx) -> Outcome`
with no cloud imports: the same code runs in a Cloud Function, in the local run and in tests."""
