"""A pytest plugin (tests/conftest.py loads it): every document the pipeline produces in the test suite
is validated against contract/, where it leaves the pipeline, with no assert in the tests themselves.

Where it looks, installed once before any test module is imported:
- the in-process bus (closet_pipeline/adapters/inprocess_bus.py): every result document and progress
  event published on the results and progress topics (in-process runs, failures, cache hits, faults);
- the local stores: every results/.../result.json written;
- the emulator topology's watches on the results and progress topics (topology, soak, strict stand-ins);
- the webhook receiver's side: every request `shared.runtime.webhook.verify` accepts (a forgery the
  receiver refuses is no document of ours);
- the HTTP functions: every answer of `handle_http` in shared/http/, against the OpenAPI document.

A document that does not validate fails the test during which it was produced (in its teardown);
one that arrives after its test ended fails the run at the end.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest

from closet_pipeline import contract

RESULT, PROGRESS, WEBHOOK = "result-document", "progress-event", "webhook-request"


class Checker:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self.checked: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _record(self, kind: str, where: str, errors: list) -> None:
        with self.lock:
            self.checked[kind] += 1
            for error in errors[:3]:
                path = "/".join(str(p) for p in error.absolute_path) or "(root)"
                self.violations.append(f"{kind} {where}: at {path}: {error.message}")

    def document(self, kind: str, data: bytes | str | dict, where: str) -> None:
        try:
            instance = json.loads(data) if isinstance(data, (bytes, str)) else data
        except ValueError as exc:
            return self._record(kind, where, [_Plain(f"not JSON: {exc}")])
        self._record(kind, where, list(contract.validator(kind).iter_errors(instance)))

    def answer(self, function: str, method: str, status: int, body, where: str) -> None:
        path = contract.PATHS[function]
        operations = contract.openapi_document()["paths"][path]
        # A method the function does not serve is answered 405, documented on the one it serves.
        method = {"head": "get"}.get(method.lower(), method.lower())
        method = method if method in operations else next(m for m in operations if m in ("get", "post"))
        if str(status) not in operations[method]["responses"]:
            return self._record("HTTP answer", where, [_Plain(f"{status} is not documented for {method} {path}")])
        validator = contract.answer_validator(path, method, status)
        errors = [] if validator is None else list(validator.iter_errors(body))
        self._record("HTTP answer", f"{method.upper()} {path} {status} {where}", errors)


class _Plain:
    def __init__(self, message: str) -> None:
        self.message, self.absolute_path = message, ()


CHECK = Checker()


def _kind_of_topic(topic: str) -> str | None:
    from shared.topology import load

    topology = load()
    return {topology.results_topic: RESULT, topology.progress_topic: PROGRESS}.get(topic)


def install() -> None:
    from closet_pipeline.adapters.inprocess_bus import InProcessBus
    from closet_pipeline.adapters.local_folder import LocalFolderBlobStore
    from closet_pipeline.adapters.memory import MemoryBlobStore
    from closet_pipeline.dev import topology
    from shared.http import status, upload_url
    from shared.runtime import webhook

    publish = InProcessBus.publish

    def checked_publish(self, topic, data, attributes=None):
        kind = _kind_of_topic(topic)
        if kind:
            CHECK.document(kind, data, f"published on {topic}")
        return publish(self, topic, data, attributes)

    InProcessBus.publish = checked_publish

    for store in (MemoryBlobStore, LocalFolderBlobStore):
        def checked_write(self, key, data, *args, _write=store.write, **kwargs):
            if key.startswith("results/") and key.endswith("/result.json"):
                CHECK.document(RESULT, data, f"written to {key}")
            return _write(self, key, data, *args, **kwargs)

        store.write = checked_write

    # The watches parse every message the topology's functions publish on the two topics.
    for name, kind in (("_result_doc", RESULT), ("_progress_doc", PROGRESS)):
        def checked_parse(data, _parse=getattr(topology, name), _kind=kind):
            CHECK.document(_kind, data, "published by the emulator topology")
            return _parse(data)

        setattr(topology, name, checked_parse)

    verify = webhook.verify

    def checked_verify(secret, body, header, **kwargs):
        accepted = verify(secret, body, header, **kwargs)
        if accepted:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace") if isinstance(body, bytes) else body
            CHECK.document(WEBHOOK, {"method": "POST", "headers": {webhook.HEADER: header}, "body": parsed},
                           "accepted by a webhook receiver")
        return accepted

    webhook.verify = checked_verify

    for module, function in ((upload_url, "upload_url"), (status, "status")):
        def checked_handle(request, *args, _handle=module.handle_http, _function=function, **kwargs):
            body, code, headers = _handle(request, *args, **kwargs)
            CHECK.answer(_function, request.method, code, body if code != 204 else None, "(handle_http)")
            return body, code, headers

        module.handle_http = checked_handle


def pytest_configure(config) -> None:
    install()


@pytest.fixture(autouse=True)
def contract_checked():
    """Fails the test during which a document that does not match contract/ was produced."""
    with CHECK.lock:
        before = len(CHECK.violations)
    yield
    with CHECK.lock:
        new = CHECK.violations[before:]
    if new:
        pytest.fail("not as contract/ says:\n" + "\n".join(new), pytrace=False)


def pytest_sessionfinish(session, exitstatus) -> None:
    # Late arrivals (a watch thread after its test ended) still fail the run.
    if CHECK.violations and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(CHECK.checked.items()))
    terminalreporter.write_line(f"contract: validated against contract/: {counts or 'nothing'}")
    for violation in CHECK.violations:
        terminalreporter.write_line(f"contract: {violation}")
