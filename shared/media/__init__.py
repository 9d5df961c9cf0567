"""Pixels and weights: image decoding and encoding, mask post-processing, model files."""
