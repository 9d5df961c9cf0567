"""The backend's contract, generated: JSON Schemas of what the app receives and the OpenAPI document
of the HTTP functions, from the pydantic models the pipeline writes them with (one source).

    contract/v<N>/result-document.schema.json   the result document (results topic, webhook, result.json)
    contract/v<N>/progress-event.schema.json    a progress event (progress topic)
    contract/v<N>/webhook-request.schema.json   the signed POST to CLOSET_WEBHOOK_URL
    contract/openapi.json                       upload_url and status, with the webhook
    contract/examples/v<N>/                     documents and answers recorded from a real run

`make contract` (`closet-pipeline contract`) rewrites the generated files; `--check` names the stale
ones; `--record-examples` runs the emulator topology on examples/ and records contract/examples/
(Java, the Pub/Sub emulator and the IS-Net model needed). N is the documents' schemaVersion: a
raised version gets a folder of its own and the old one stays as it was published.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from closet_pipeline import REPO_ROOT
from shared import PIPELINE_VERSION
from shared.documents import RESULT_SCHEMA_VERSION, ProgressEvent, ResultDocument
from shared.errors import HttpErrorCode
from shared.http import status, upload_url
from shared.http.common import STATUS, ErrorAnswer
from shared.runtime.webhook import HEADER, WebhookRequest

CONTRACT = REPO_ROOT / "contract"
VERSION = RESULT_SCHEMA_VERSION
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Identifiers, not addresses to fetch: the files are in contract/.
BASE_ID = "https://schemas.closetconnect.app/cloth-pipeline"
DOCUMENTS: dict[str, type[BaseModel]] = {
    "result-document": ResultDocument, "progress-event": ProgressEvent, "webhook-request": WebhookRequest}
# Where each HTTP function is in the OpenAPI document (Cloud Functions names it <name_prefix>-<name>).
PATHS = {"upload_url": "/closet-upload-url", "status": "/closet-status"}
# Example files: <function>.<status>[.<case>].json (an answer) or <function>.request.json.
EXAMPLE = re.compile(r"(?P<function>upload_url|status)\.(?P<status>[0-9]{3}|request)(?:\.(?P<case>[a-z-]+))?\.json")


class _Schema(GenerateJsonSchema):
    def field_title_should_be_set(self, schema) -> bool:
        return False  # "Jobid" says nothing the property's name does not


def schema_id(name: str, version: int = VERSION) -> str:
    return f"{BASE_ID}/v{version}/{name}.schema.json"


def examples_dir(version: int = VERSION) -> Path:
    return CONTRACT / "examples" / f"v{version}"


def schemas() -> dict[str, dict]:
    """The JSON Schema of each document, by name."""
    out = {}
    for name, model in DOCUMENTS.items():
        body = model.model_json_schema(by_alias=True, mode="serialization", schema_generator=_Schema)
        out[name] = {"$schema": DIALECT, "$id": schema_id(name), **body}
    # The webhook's body is the result document: referenced by its $id, not copied.
    hook = out["webhook-request"]
    body = hook["properties"]["body"]
    hook["properties"]["body"] = {"$ref": "result-document.schema.json",
                                  **({"description": body["description"]} if "description" in body else {})}
    hook["$defs"] = {k: v for k, v in hook["$defs"].items() if f'"#/$defs/{k}"' in json.dumps(hook["properties"])}
    return out


def openapi(examples: Path | None = None) -> dict:
    """The OpenAPI 3.1 document of the HTTP functions, with the examples recorded under `examples`."""
    models = [(upload_url.UploadRequest, "validation"), (upload_url.UploadAnswer, "serialization"),
              (status.JobStatus, "serialization"), (ErrorAnswer, "serialization")]
    _, top = models_json_schema(models, by_alias=True, ref_template="#/components/schemas/{model}",
                                schema_generator=_Schema)
    recorded = _examples(examples or examples_dir())
    ref = (lambda model: {"$ref": f"#/components/schemas/{model.__name__}"})

    def answers(function: str, ok: dict, codes: tuple[HttpErrorCode, ...], ok_description: str) -> dict:
        out = {"200": {"description": ok_description, "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
                       "content": _json(ok, recorded, function, "200")}}
        for code_status in sorted({STATUS[c] for c in codes}):
            mine = [c.value for c in codes if STATUS[c] == code_status]
            schema = {"allOf": [ref(ErrorAnswer), {"properties": {"errorCode": {"enum": mine}}}]}
            other = " (405: any other method)" if code_status == 405 else ""
            out[str(code_status)] = {"description": ", ".join(mine) + other,
                                     "content": _json(schema, recorded, function, str(code_status))}
        return out

    def preflight(methods: str) -> dict:
        return {"summary": "CORS preflight", "security": [], "responses": {"204": {
            "description": f"Access-Control-Allow-Methods: {methods}; no body",
            "headers": {"Access-Control-Allow-Origin": {"schema": {"type": "string"}}}}}}

    query = [
        ("userId", True, "The caller's user id."),
        ("clothId", False, "With jobId; optional with objectKey."),
        ("jobId", False, "The job (from a result, or derived from objectKey and generation)."),
        ("objectKey", False, "uploads/{userId}/{clothId}/{file}: the upload's job, instead of clothId + jobId."),
        ("generation", False, "With objectKey: that version of the upload (default: the current one)."),
    ]
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": DIALECT,
        "info": {
            "title": "ClosetConnect cloth pipeline: HTTP functions",
            "version": PIPELINE_VERSION,
            "description": ("Generated by `make contract` from shared/http/ (closet_pipeline/contract.py). Every "
                            "answer other than 200 carries a stable `errorCode`, the developer's `error` and a "
                            "`message` sentence a person can read. In the cloud each function is also behind "
                            "Cloud Run IAM: a Google ID token of one of Terraform's "
                            "`app_invoker_members` in X-Serverless-Authorization; without it Cloud Run answers 403 "
                            "before the function runs. Terraform's `function_urls` output gives each function's "
                            "own URL, where it answers on any path."),
        },
        "servers": [{"url": "https://{region}-{project}.cloudfunctions.net", "variables": {
            "region": {"default": "europe-west1"}, "project": {"default": "my-closet-project"}}}],
        "security": [{"bearerSecret": [], "googleIdToken": []}],
        "paths": {
            PATHS["upload_url"]: {
                "description": "The upload_url function (named <name_prefix>-upload-url; name_prefix closet here).",
                "post": {
                    "operationId": "uploadUrl",
                    "summary": "A signed PUT URL for one photo",
                    "requestBody": {"required": True, "content": _json(ref(upload_url.UploadRequest), recorded,
                                                                         "upload_url", "request")},
                    "responses": answers("upload_url", ref(upload_url.UploadAnswer), upload_url.ERROR_CODES,
                                         "PUT the photo to `url` with exactly `headers`, before `expiresAt`."),
                },
                "options": preflight("POST, OPTIONS"),
            },
            PATHS["status"]: {
                "description": "The status function (named <name_prefix>-status).",
                "get": {
                    "operationId": "jobStatus",
                    "summary": "A job's state, progress and result document",
                    "parameters": [{"name": n, "in": "query", "required": r, "description": d,
                                    "schema": {"type": "string"}} for n, r, d in query],
                    "responses": answers("status", ref(status.JobStatus), status.ERROR_CODES,
                                         "The job's state; `result` once it ended."),
                },
                "options": preflight("GET, OPTIONS"),
            },
        },
        "webhooks": {
            "result": {"post": {
                "summary": "The result document, POSTed to CLOSET_WEBHOOK_URL once per delivery",
                "security": [],
                "parameters": [{"name": HEADER, "in": "header", "required": True,
                                "schema": _signature_schema()}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ResultDocument"}}}},
                "responses": {
                    "2XX": {"description": "Taken."},
                    "4XX": {"description": "Refused for good (not retried), except 408 and 429."},
                    "5XX": {"description": "Retried by Pub/Sub with backoff, then dead-lettered."}},
            }},
        },
        "components": {
            "schemas": top["$defs"],
            "securitySchemes": {
                "bearerSecret": {"type": "http", "scheme": "bearer",
                                 "description": "Authorization: Bearer <CLOSET_UPLOAD_URL_SECRET>; without the "
                                                "setting the function answers 503 NOT_CONFIGURED to everyone."},
                "googleIdToken": {"type": "apiKey", "in": "header", "name": "X-Serverless-Authorization",
                                  "description": "Bearer <Google ID token> (Cloud Run IAM; not checked locally)."},
            },
        },
    }


def _signature_schema() -> dict:
    headers = WebhookRequest.model_json_schema(by_alias=True, schema_generator=_Schema)["$defs"]["WebhookHeaders"]
    return headers["properties"][HEADER]


def _examples(folder: Path) -> dict[tuple[str, str], dict[str, object]]:
    """(function, status or "request") -> {case: value} from the recorded files."""
    out: dict[tuple[str, str], dict[str, object]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        match = EXAMPLE.fullmatch(path.name)
        if match:
            out.setdefault((match["function"], match["status"]), {})[match["case"] or "recorded"] = \
                json.loads(path.read_text())
    return out


def _json(schema: dict, recorded: dict, function: str, key: str) -> dict:
    media = {"schema": schema}
    found = recorded.get((function, key))
    if found:
        media["examples"] = {case: {"value": value} for case, value in found.items()}
    return {"application/json": media}


def generated() -> dict[Path, str]:
    """Every generated file and its text."""
    files = {CONTRACT / f"v{VERSION}" / f"{name}.schema.json": schema for name, schema in schemas().items()}
    files[CONTRACT / "openapi.json"] = openapi()
    return {path: json.dumps(body, indent=2, ensure_ascii=False) + "\n" for path, body in files.items()}


def stale() -> list[str]:
    """The generated files whose committed text differs from what the models give now."""
    return [str(path.relative_to(REPO_ROOT)) for path, text in generated().items()
            if not path.is_file() or path.read_text() != text]


def write() -> list[str]:
    changed = stale()
    for path, text in generated().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return changed


# -- validating against the committed contract (the tests' hook; a backend's own checks) --------
OPENAPI_ID = f"{BASE_ID}/openapi.json"


@functools.cache
def _registry():
    """contract/'s files as committed (this version's schemas and the OpenAPI document), by $id."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources = [(schema_id(name), Resource.from_contents(json.loads((CONTRACT / f"v{VERSION}" / f"{name}.schema.json")
                                                                     .read_text()))) for name in DOCUMENTS]
    document = json.loads((CONTRACT / "openapi.json").read_text())
    resources.append((OPENAPI_ID, Resource(contents=document, specification=DRAFT202012)))
    return Registry().with_resources(resources)


def openapi_document() -> dict:
    return _registry().contents(OPENAPI_ID)


def validator(name: str):
    """A jsonschema validator of one document (formats such as date-time checked too)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator({"$ref": schema_id(name)}, registry=_registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def answer_validator(path: str, method: str, status_code: int):
    """A validator of one HTTP answer's JSON body, from the OpenAPI document; None: it has no body."""
    from jsonschema import Draft202012Validator

    response = openapi_document()["paths"][path][method]["responses"][str(status_code)]
    if "content" not in response:
        return None
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in
                       ("paths", path, method, "responses", str(status_code), "content", "application/json", "schema"))
    return Draft202012Validator({"$ref": f"{OPENAPI_ID}#/{pointer}"}, registry=_registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="closet-pipeline contract", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say which generated files are stale (exit 1)")
    parser.add_argument("--record-examples", action="store_true",
                        help="run the emulator topology on examples/ and record contract/examples/")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for path in found:
            print(f"stale: {path} (run `make contract`)")
        return 1 if found else 0
    if args.record_examples:
        from closet_pipeline.contract_examples import record

        record(examples_dir())
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
