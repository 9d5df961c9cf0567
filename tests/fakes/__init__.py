"""Local fakes of remote APIs (remove.bg, a Gradio Space, the SegFormer API) for tests: 127.0.0.1 only."""
