"""The failure handler's entry point (functions/dead_letter): a message that failed every delivery
ends its job as failed. It handles no image, so it never loads Pillow or numpy."""

from __future__ import annotations

from shared.runtime.entry.push import pushed_handler
from shared.runtime.instance import dispatcher


def dead_letter_function():
    return pushed_handler("dead_letter",
                          lambda pushed: dispatcher({}).handle_dead_letter(pushed.data, pushed.attributes),
                          lambda: None)
