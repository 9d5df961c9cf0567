"""The served functions' push subscriptions, as topology.json declares them: one per pushed function
(a subscriber's on a shared topic its own), with its ack deadline, retry policy and dead-letter topic.

Strict, they push through the push front (closet_pipeline/dev/strict_push.py, run in the strict
front's process), which applies the declared retry policy, delivery attempts and dead-lettering and
adds `deliveryAttempt`: the emulator's own backoff is not Pub/Sub's (asked for 10-60 s it redelivers
after about 1, 17, 17 and 24 s), so the emulator is told to redeliver every second and the front
holds each delivery back until its backoff has passed. Not strict, the emulator pushes to the
functions directly and its own policies stand in."""

from __future__ import annotations

from closet_pipeline.dev.emulator import PubSubEmulator
from closet_pipeline.dev.processes import free_port
from shared.topology import SUBSCRIBER


class PushSubscriptions:
    def __init__(self, emulator: PubSubEmulator, declaration, specs: list, prefix: str, strict: bool) -> None:
        self.emulator = emulator
        self.declaration = declaration
        self.specs = specs
        self.prefix = prefix  # CLOSET_TOPIC_PREFIX, as the topics are named
        self.strict = strict
        self.port = 0  # the push front's, taken when the strict front's config is made

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}/" if self.strict else None

    def pushed(self) -> list:
        """The served functions Pub/Sub pushes to, with their subscription's id and topic id."""
        found = []
        for spec in self.specs:
            if spec.source_topic is None:
                continue
            topic = self.prefix + spec.source_topic
            name = f"{topic}-push" if spec.kind != SUBSCRIBER else f"{topic}-{spec.name}-push"
            found.append((spec, name, topic))
        return found

    def _dead_letter_path(self, spec) -> str | None:
        return self.emulator.topic_path(self.prefix + spec.dead_letter_topic) if spec.dead_letter_topic else None

    def config(self, functions: dict[str, str]) -> dict:
        """The push front's section of the strict front's config: per push subscription, what it
        enforces as Pub/Sub does (the declared retry policy, the delivery attempts before
        dead-lettering, the dead-letter topic), where each function listens, and its timeout."""
        self.port = free_port()
        policies = {self.emulator.subscription_path(name): {
            "function": spec.name, "minimumBackoffSeconds": spec.retry.minimum_backoff_s,
            "maximumBackoffSeconds": spec.retry.maximum_backoff_s,
            "maxDeliveryAttempts": spec.retry.max_delivery_attempts,
            "deadLetterTopic": self._dead_letter_path(spec),
        } for spec, name, _ in self.pushed()}
        return {"port": self.port, "project": self.emulator.project, "pubsub": self.emulator.host,
                "subscriptions": policies, "functions": functions,
                "timeouts": {spec.name: spec.timeout_s for spec in self.specs}}

    def endpoint(self, function: str, function_url: str, topic: str) -> str:
        # functions-framework reads the topic into the CloudEvent's source from this path.
        path = f"projects/{self.emulator.project}/topics/{topic}"
        if self.strict:  # through the push front, which adds deliveryAttempt
            return f"http://127.0.0.1:{self.port}/{function}/{path}"
        return f"{function_url}/{path}"

    def create_subscriptions(self, functions: dict[str, str]) -> None:
        """One push subscription per pushed function (`functions`: name -> URL), with its declared
        ack deadline and, strict, a redelivery every second for the front to hold back."""
        from google.cloud.pubsub_v1 import types
        from google.protobuf import duration_pb2

        def seconds(value: float):
            return duration_pb2.Duration(seconds=int(value))

        for spec, name, topic in self.pushed():
            request = {"name": self.emulator.subscription_path(name), "topic": self.emulator.topic_path(topic),
                       "push_config": {"push_endpoint": self.endpoint(spec.name, functions[spec.name], topic)},
                       "ack_deadline_seconds": self.declaration.ack_deadline_s(spec)}
            if self.strict:
                request["retry_policy"] = types.RetryPolicy(minimum_backoff=seconds(1), maximum_backoff=seconds(1))
            else:
                request["retry_policy"] = types.RetryPolicy(minimum_backoff=seconds(spec.retry.minimum_backoff_s),
                                                            maximum_backoff=seconds(spec.retry.maximum_backoff_s))
                if spec.dead_letter_topic:
                    request["dead_letter_policy"] = types.DeadLetterPolicy(
                        dead_letter_topic=self._dead_letter_path(spec),
                        max_delivery_attempts=spec.retry.max_delivery_attempts)
            self.emulator.create_subscription(request)
