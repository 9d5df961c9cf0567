"""Adapters: the small pieces that touch the outside world, each behind an interface."""
