"""contract/: generated from the models and committed as generated, valid JSON Schema 2020-12 and
OpenAPI 3.1, its recorded examples valid under it unless the schema version is raised, and the test
suite's hook (tests/contract.py) failing a test that produces a document contract/ does not allow."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from pydantic import create_model

from closet_pipeline import contract
from shared.documents import RESULT_SCHEMA_VERSION, ResultDocument

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT_OF = {"result": "result-document", "progress": "progress-event", "webhook": "webhook-request"}


def test_committed_contract_is_what_the_models_generate():
    assert contract.stale() == [], "run `make contract` and commit contract/"


def test_schemas_are_2020_12_with_versioned_ids():
    for name in contract.DOCUMENTS:
        schema = json.loads((contract.CONTRACT / f"v{RESULT_SCHEMA_VERSION}" / f"{name}.schema.json").read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(f"/v{RESULT_SCHEMA_VERSION}/{name}.schema.json")


def test_openapi_document_is_valid_3_1_with_every_error_code():
    document = json.loads((contract.CONTRACT / "openapi.json").read_text())
    validate_openapi(document)  # raises on an invalid document
    assert document["openapi"].startswith("3.1")
    from shared.http import status, upload_url

    for function, module in (("upload_url", upload_url), ("status", status)):
        operation = next(o for m, o in document["paths"][contract.PATHS[function]].items() if m in ("get", "post"))
        documented = {code for answer in operation["responses"].values()
                      for part in answer["content"]["application/json"]["schema"].get("allOf", [])
                      for code in part.get("properties", {}).get("errorCode", {}).get("enum", [])}
        assert documented == {c.value for c in module.ERROR_CODES}
        recorded = [operation["responses"][s]["content"]["application/json"] for s in ("200", "400", "401")]
        assert all("examples" in media for media in recorded)
    assert document["components"]["securitySchemes"]["bearerSecret"]["scheme"] == "bearer"


def _recorded(version: int) -> dict[str, object]:
    return {p.name: json.loads(p.read_text()) for p in sorted(contract.examples_dir(version).glob("*.json"))}


def _example_errors(name: str, value, validator_of) -> list[str]:
    kind, _, rest = name.removesuffix(".json").partition(".")
    if kind in DOCUMENT_OF:
        validator = validator_of(DOCUMENT_OF[kind])
    elif rest == "request":
        return []  # requests are the caller's: recorded as sent, documented in the OpenAPI document
    else:
        validator = contract.answer_validator(contract.PATHS[kind], "post" if kind == "upload_url" else "get",
                                              int(rest.split(".")[0]))
    return [f"{name}: {e.message}" for e in validator.iter_errors(value)]


def test_recorded_examples_stay_valid_until_the_version_is_raised():
    """The examples recorded at the current schemaVersion (from a real run) validate under today's
    schemas: a change that would break a consumer of them fails here unless the version is raised,
    which gives the version its own examples folder."""
    examples = _recorded(RESULT_SCHEMA_VERSION)
    assert {n.split(".")[0] for n in examples} >= {"result", "progress", "webhook", "upload_url", "status"}
    versions = {v["schemaVersion"] for n, v in examples.items() if n.startswith(("result", "progress"))}
    assert versions == {RESULT_SCHEMA_VERSION}
    errors = [e for name, value in examples.items() for e in _example_errors(name, value, contract.validator)]
    assert errors == []


def test_a_breaking_change_is_caught_by_the_recorded_examples():
    """What the test above guards against: a new required field, or a field's type narrowed, makes the
    previous examples invalid."""
    changed = create_model("ResultDocument", __base__=ResultDocument, garment_count=(int, ...))
    schema = changed.model_json_schema(by_alias=True, mode="serialization")
    errors = list(Draft202012Validator(schema).iter_errors(_recorded(RESULT_SCHEMA_VERSION)["result.completed.json"]))
    assert [e.message for e in errors] == ["'garmentCount' is a required property"]


def test_an_invalid_document_fails_the_test_that_produced_it(pytester, monkeypatch):
    """The hook, run on purpose-made tests: a result document missing `success` published on the
    in-process bus, a progress event at 150 %, and an HTTP answer with an undocumented code each fail
    their test; the same documents done right pass."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_injected=textwrap.dedent("""
        import json
        from types import SimpleNamespace

        import pytest

        from closet_pipeline.adapters.inprocess_bus import InProcessBus
        from shared.documents import ProgressEvent, ProgressStep, ResultDocument
        from shared.http import status
        from shared.topology import load

        TOPICS = load()

        def publish(topic, body):
            bus = InProcessBus()
            bus.publish(topic, json.dumps(body).encode())
            bus.close()

        def result(**changes):
            body = json.loads(ResultDocument(job_id="j", cloth_id="c", user_id="u", success=True).to_json())
            body.update(changes)
            return {k: v for k, v in body.items() if v != "DROP"}

        def test_result_without_success():
            publish(TOPICS.results_topic, result(success="DROP"))

        def test_progress_over_100():
            event = ProgressEvent(job_id="j", cloth_id="c", user_id="u", status="PROCESSING",
                                  current_step=ProgressStep.ANALYZING, progress_percentage=30)
            publish(TOPICS.progress_topic, {**json.loads(event.to_json()), "progressPercentage": 150})

        def test_undocumented_error_code(monkeypatch):
            monkeypatch.setattr(status, "resolve", lambda store, params: (_ for _ in ()).throw(
                status.HttpError(status.HttpErrorCode.UNSUPPORTED_CONTENT_TYPE, "not for status")))
            monkeypatch.setenv("CLOSET_UPLOAD_URL_SECRET", "s")
            from shared.config import get_settings
            get_settings.cache_clear()
            request = SimpleNamespace(method="GET", args={}, headers={"Authorization": "Bearer s"})
            assert status.handle_http(request, store=object())[1] == 400
            get_settings.cache_clear()

        def test_valid_documents_pass():
            publish(TOPICS.results_topic, result())
    """))
    outcome = pytester.runpytest_subprocess("-p", "tests.contract", "-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=4, errors=3)
    text = outcome.stdout.str()
    assert "result-document published on cloth-results: at (root): 'success' is a required property" in text
    assert ("progress-event published on cloth-progress: at progressPercentage: "
            "150 is greater than the maximum of 100") in text
    assert "'UNSUPPORTED_CONTENT_TYPE' is not one of ['INVALID_REQUEST', 'INVALID_OBJECT_PATH']" in text
