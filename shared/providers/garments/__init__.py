"""The in-process garment models: a parser for worn outfits and a classifier for single items.

Both are small ONNX networks trained here (`make models`, MODELS.md) and committed with their
sha256; each is loaded once per process and run with onnxruntime.
"""
