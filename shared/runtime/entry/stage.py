"""The entry point of a pushed stage's function (remove_background, segment, expand, deliver): decode
the push, run the stage (or warm it up), publish what it produced."""

from __future__ import annotations

import time
from types import ModuleType

from shared.runtime.entry.push import pushed_handler
from shared.runtime.events import PushedMessage
from shared.runtime.instance import dispatcher
from shared.stages.images import StoredWorkImages
from shared.topology import function_timeout_s


def stage_function(stage: ModuleType):
    """The entry point of a stage's function: decode, run (or warm up), publish."""
    name = stage.__name__.rsplit(".", 1)[-1]
    stages = {name: stage}

    def on_message(pushed: PushedMessage) -> None:
        # The request's deadline, from the timeout Terraform deploys (topology.json): leases and
        # retry loops inside the stage stay within it.
        deadline = time.monotonic() + function_timeout_s(name)
        dispatcher(stages, StoredWorkImages).handle(name, pushed.data, pushed.delivery_attempt, deadline)

    return pushed_handler(name, on_message, lambda: dispatcher(stages, StoredWorkImages).warm_up(name))
