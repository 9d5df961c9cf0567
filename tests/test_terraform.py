"""The Terraform in terraform/ deploys exactly the topology of shared/topology.json, and safely.

Every .tf file is parsed once (python-hcl2) and the tests assert on the parsed structure. Where
Terraform computes something from the topology (which functions exist, what each may read, write,
publish, which secrets it gets, ack deadlines, lifecycle ages), the real expressions are evaluated
with `terraform console` -- offline, no provider needed: terraform/topology.tf holds only locals --
and compared with what the JSON says. Those tests, and `terraform fmt -check`, skip only when the
`terraform` binary is not on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.config import Settings

REPO = Path(__file__).resolve().parent.parent
TF_DIR = REPO / "terraform"
TOPOLOGY_PATH = REPO / "shared" / "topology.json"
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")

HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
META_ARGUMENTS = {"source", "for_each", "count", "depends_on", "providers", "version"}

# Every role granted anywhere, and the subset a function's own service account may hold.
ALLOWED_ROLES = {
    "roles/storage.objectViewer",
    "roles/storage.objectUser",
    "roles/storage.objectCreator",
    "roles/pubsub.publisher",
    "roles/pubsub.subscriber",
    "roles/secretmanager.secretAccessor",
    "roles/iam.serviceAccountTokenCreator",
    "roles/run.invoker",
}
FUNCTION_ROLES = {
    "roles/storage.objectViewer",
    "roles/storage.objectUser",
    "roles/storage.objectCreator",
    "roles/pubsub.publisher",
    "roles/secretmanager.secretAccessor",
    "roles/iam.serviceAccountTokenCreator",
}
FORBIDDEN_ROLES = {
    "roles/owner",
    "roles/editor",
    "roles/viewer",
    "roles/storage.admin",
    "roles/storage.objectAdmin",
    "roles/pubsub.admin",
    "roles/iam.serviceAccountUser",
    "roles/secretmanager.admin",
}
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


# -- the parsed configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    module: str  # "." for the root module, "modules/<name>" otherwise
    file: str
    type: str
    name: str
    body: dict[str, Any]


class Config:
    """All parsed .tf files under terraform/, grouped by module directory."""

    def __init__(self, files: dict[str, dict[str, Any]]):
        self.files = files

    def module_of(self, relative: str) -> str:
        parent = Path(relative).parent.as_posix()
        return "." if parent == "." else parent

    @property
    def modules(self) -> set[str]:
        return {self.module_of(relative) for relative in self.files}

    def _typed(self, kind: str, module: str | None) -> list[Block]:
        found = []
        for relative, parsed in self.files.items():
            if module is not None and self.module_of(relative) != module:
                continue
            for entry in parsed.get(kind, []):
                for type_, named in entry.items():
                    for name, body in named.items():
                        found.append(Block(self.module_of(relative), relative, type_, name, body))
        return found

    def _named(self, kind: str, module: str | None) -> list[Block]:
        found = []
        for relative, parsed in self.files.items():
            if module is not None and self.module_of(relative) != module:
                continue
            for entry in parsed.get(kind, []):
                for name, body in entry.items():
                    found.append(Block(self.module_of(relative), relative, kind, name, body))
        return found

    def resources(self, module: str | None = None) -> list[Block]:
        return self._typed("resource", module)

    def data(self, module: str | None = None) -> list[Block]:
        return self._typed("data", module)

    def resource(self, module: str, type_: str, name: str) -> dict[str, Any]:
        matches = [b.body for b in self.resources(module) if b.type == type_ and b.name == name]
        assert len(matches) == 1, f"expected one {type_}.{name} in {module}, found {len(matches)}"
        return matches[0]

    def variables(self, module: str) -> dict[str, dict[str, Any]]:
        return {b.name: b.body for b in self._named("variable", module)}

    def outputs(self, module: str) -> dict[str, dict[str, Any]]:
        return {b.name: b.body for b in self._named("output", module)}

    def module_calls(self, module: str = ".") -> dict[str, dict[str, Any]]:
        return {b.name: b.body for b in self._named("module", module)}

    def locals(self, module: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for relative, parsed in self.files.items():
            if self.module_of(relative) != module:
                continue
            for entry in parsed.get("locals", []):
                for name, value in entry.items():
                    if not name.startswith("__"):  # __comments__, __inline_comments__
                        assert name not in merged, f"local.{name} defined twice in {module}"
                        merged[name] = value
        return merged


def strings(value: Any) -> list[str]:
    """Every string in a parsed value (expressions included), comments left out."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() if not key.startswith("__") for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def expr(value: Any) -> str:
    """The HCL expression of a parsed attribute (what `terraform console` can evaluate)."""
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}") and _single_interpolation(value):
            return value[2:-1]
        return json.dumps(value) if "${" not in value else f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(expr(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {expr(item)}" for key, item in value.items() if not key.startswith("__")) + "}"
    raise TypeError(f"cannot express {value!r}")


def _single_interpolation(value: str) -> bool:
    depth, in_string = 0, False
    for index, char in enumerate(value):
        if char == '"' and (index == 0 or value[index - 1] != "\\"):
            in_string = not in_string
        if in_string:
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0 and index != len(value) - 1:
                return False
    return True


def nested(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The blocks `name` inside a parsed body (a list of bodies; empty if absent)."""
    value = body.get(name, [])
    return value if isinstance(value, list) else [value]


def single(body: dict[str, Any], name: str) -> dict[str, Any]:
    blocks = nested(body, name)
    assert len(blocks) == 1, f"expected one {name} block, found {len(blocks)}"
    return blocks[0]


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def topology() -> dict[str, Any]:
    return json.loads(TOPOLOGY_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tf() -> Config:
    files = {}
    for path in sorted(TF_DIR.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open(encoding="utf-8") as handle:
            files[path.relative_to(TF_DIR).as_posix()] = hcl2.load(handle, serialization_options=HCL_OPTIONS)
    assert files, "no .tf files under terraform/"
    return Config(files)


class ConsoleError(Exception):
    pass


class Console:
    """`terraform console` over terraform/topology.tf + variables.tf and the real topology.json."""

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def eval(self, expression: str, **variables: Any) -> Any:
        args = [TERRAFORM, "console", "-no-color", "-var=project_id=test-project"]
        for name, value in variables.items():
            rendered = value if isinstance(value, str) else json.dumps(value)
            args.append(f"-var={name}={rendered}")
        env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull}
        done = subprocess.run(
            args,
            input=f"jsonencode({expression})\n",
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if "Error" in done.stderr or not done.stdout.strip():
            raise ConsoleError(done.stderr.strip() or f"no output for {expression}")
        text = json.loads(done.stdout.strip().splitlines()[-1])
        return json.loads(text.replace("$${", "${").replace("%%{", "%{"))


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Console:
    if TERRAFORM is None:
        pytest.skip("terraform is not on PATH")
    scratch = tmp_path_factory.mktemp("tfconsole")
    (scratch / "terraform").mkdir()
    (scratch / "shared").mkdir()
    shutil.copy(TF_DIR / "topology.tf", scratch / "terraform" / "topology.tf")
    shutil.copy(TF_DIR / "variables.tf", scratch / "terraform" / "variables.tf")
    shutil.copy(TOPOLOGY_PATH, scratch / "shared" / "topology.json")
    return Console(scratch / "terraform")


# -- expectations computed from topology.json ---------------------------------------------------


def all_functions(topology: dict[str, Any]) -> dict[str, dict[str, Any]]:
    functions = {stage["name"]: {**stage, "trigger": "pubsub"} for stage in topology["stages"]}
    handler = topology["failureHandler"]
    functions[handler["name"]] = {**handler, "trigger": "pubsub"}
    for function in topology["httpFunctions"]:
        functions[function["name"]] = {**function, "trigger": "http"}
    return functions


def topic_of(topology: dict[str, Any], target: str) -> str:
    stages = {stage["name"]: stage for stage in topology["stages"]}
    return stages[target]["topic"] if target in stages else topology["topics"][target]


def for_each_function(expression: str) -> str:
    """A module argument evaluated for every function: each.key/each.value -> the loop's."""
    body = re.sub(r"\beach\.value\b", "fv", re.sub(r"\beach\.key\b", "fk", expression))
    return f"{{ for fk, fv in local.functions : fk => ({body}) }}"


# == the topology itself ========================================================================


def test_topology_has_the_pipeline(topology):
    names = [stage["name"] for stage in topology["stages"]]
    assert names == ["ingest", "remove_background", "segment", "expand", "deliver"]
    assert topology["failureHandler"]["name"] == "dead_letter"
    assert "upload_url" in [f["name"] for f in topology["httpFunctions"]]
    assert set(topology["topics"]) == {"progress", "results", "deadLetter"}
    for function in all_functions(topology).values():
        assert set(function["reads"]) <= set(topology["areas"])
        assert set(function["writes"]) <= set(topology["areas"])
        for target in function["publishes"]:
            topic_of(topology, target)  # a stage or a topics key, or KeyError


# == Terraform reads the topology, never restates it ============================================


def test_terraform_reads_shared_topology(tf):
    topology_locals = tf.locals(".")
    assert topology_locals["topology"] == '${jsondecode(file("${path.module}/../shared/topology.json"))}'
    assert (TF_DIR / "../shared/topology.json").resolve() == TOPOLOGY_PATH.resolve()
    # topology.tf is pure derivation (locals only), which is what lets the console tests evaluate it.
    assert {key for key in tf.files["topology.tf"] if not key.startswith("__")} == {"locals"}
    assert "topology" in tf.files["topology.tf"]["locals"][0]


def test_no_topic_id_or_area_bucket_is_hardcoded(tf, topology):
    topic_ids = {stage["topic"] for stage in topology["stages"]} | set(topology["topics"].values())
    for relative, parsed in tf.files.items():
        for text in strings(parsed):
            for topic in topic_ids:
                assert topic not in text, f"{relative} hard-codes topic id {topic}: read it from the topology"


def test_function_names_written_in_terraform_exist_in_topology(tf, topology):
    names = set(all_functions(topology))
    for relative, parsed in tf.files.items():
        for text in strings(parsed):
            for key in re.findall(r'module\.functions\["([^"]+)"\]', text):
                assert key in names, f"{relative}: module.functions[{key!r}] is not a topology function"


@needs_terraform
def test_secret_consumers_are_topology_functions(console, topology):
    secrets = console.eval("local.secrets")
    assert set(secrets) == {"removebg-api-key", "gemini-api-key", "webhook-secret", "upload-url-secret"}
    for spec in secrets.values():
        assert spec["consumers"] and set(spec["consumers"]) <= set(all_functions(topology))
    # Only our own shared secret is generated; third parties' keys come from the operator.
    assert console.eval("keys(local.generated_secrets)") == ["upload-url-secret"]


# == one function per stage, failure handler and HTTP function ==================================


def test_every_function_is_a_cloud_function_from_the_topology(tf):
    calls = tf.module_calls()
    functions = calls["functions"]
    assert functions["source"] == "./modules/function"
    assert functions["for_each"] == "${local.functions}"
    definition = tf.locals(".")["functions"]
    for source in (
        "for stage in local.topology.stages",
        "local.topology.failureHandler",
        "for function in local.topology.httpFunctions",
    ):
        assert source in definition, f"local.functions is not built from {source}"

    function = tf.resource("modules/function", "google_cloudfunctions2_function", "this")
    build = single(function, "build_config")
    assert build["runtime"] == "${var.runtime}" and functions["runtime"] == "python311"
    assert build["entry_point"] == "${var.entry_point}" and functions["entry_point"] == "handle"
    storage_source = single(single(build, "source"), "storage_source")
    assert storage_source["object"] == "${google_storage_bucket_object.source.name}"

    service = single(function, "service_config")
    assert service["available_memory"] == "${var.memory}" and functions["memory"] == "${each.value.memory}"
    assert service["available_cpu"] == "${var.cpu}" and functions["cpu"] == "${each.value.cpu}"
    assert (
        service["timeout_seconds"] == "${var.timeout_seconds}"
        and functions["timeout_seconds"] == "${each.value.timeout_seconds}"
    )
    assert service["max_instance_request_concurrency"] == "${var.concurrency}"
    assert functions["concurrency"] == "${each.value.concurrency}"
    assert service["min_instance_count"] == "${var.min_instance_count}"
    assert service["max_instance_count"] == "${var.max_instance_count}"
    assert service["ingress_settings"] == "${var.ingress_settings}"
    assert service["service_account_email"] == "${var.service_account_email}"
    assert service["environment_variables"] == "${var.environment}"
    secret_env = [d for d in nested(service, "dynamic") if "secret_environment_variables" in d]
    assert secret_env, "secrets must reach the function through secret_environment_variables"
    content = single(secret_env[0]["secret_environment_variables"], "content")
    assert secret_env[0]["secret_environment_variables"]["for_each"] == "${var.secret_environment}"
    assert content["version"] == "latest"


@needs_terraform
def test_functions_match_the_topology(console, tf, topology):
    expected = all_functions(topology)
    functions = console.eval("local.functions")
    assert set(functions) == set(expected)
    for name, function in functions.items():
        source = expected[name]
        assert function["memory"] == source["memory"]
        assert function["cpu"] == source["cpu"]
        assert function["timeout_seconds"] == source["timeoutSeconds"]
        assert function["concurrency"] == source["concurrency"]
        assert function["trigger"] == source["trigger"]

    # What the root really passes to each function module, evaluated per function.
    call = tf.module_calls()["functions"]
    passed = {
        argument: console.eval(for_each_function(expr(call[argument])))
        for argument in (
            "memory",
            "cpu",
            "timeout_seconds",
            "concurrency",
            "ingress_settings",
            "min_instance_count",
            "max_instance_count",
        )
    }
    for name, source in expected.items():
        assert passed["memory"][name] == source["memory"]
        assert passed["cpu"][name] == source["cpu"]
        assert passed["timeout_seconds"][name] == source["timeoutSeconds"]
        assert passed["concurrency"][name] == source["concurrency"]
        assert passed["min_instance_count"][name] == 0
        assert passed["max_instance_count"][name] == 10
        # Pub/Sub-invoked functions are internal only; the HTTP ones are reachable (IAM restricts who).
        assert passed["ingress_settings"][name] == (
            "ALLOW_ALL" if source["trigger"] == "http" else "ALLOW_INTERNAL_ONLY"
        )
    overridden = console.eval(
        for_each_function(expr(call["min_instance_count"])),
        instance_count_overrides="{ remove_background = { min = 1 } }",
    )
    assert overridden["remove_background"] == 1 and overridden["ingest"] == 0


def test_function_environment_names_are_settings(tf, topology):
    from shared.http.common import SECRET_ENV

    fields = {f"CLOSET_{name.upper()}" for name in Settings.model_fields} | {SECRET_ENV}
    for area in topology["areas"]:
        assert f"CLOSET_{area.upper()}_BUCKET" in fields, f"Settings has no bucket for area {area}"
    environment = tf.locals(".")["common_environment"]
    assert 'for area, bucket in module.storage.bucket_names : "CLOSET_${upper(area)}_BUCKET" => bucket' in environment
    used = set()
    for parsed in tf.files.values():
        for text in strings(parsed):
            used |= set(re.findall(r"\bCLOSET_[A-Z0-9_]*[A-Z0-9]\b", text))
    used.discard("CLOSET_")
    assert {"CLOSET_PROJECT_ID", "CLOSET_MODEL_PATH", "CLOSET_BACKGROUND_PROVIDERS", "CLOSET_REMOVEBG_API_KEY"} <= used
    assert used <= fields, f"not Settings fields: {sorted(used - fields)}"


def test_model_path_matches_the_packaged_model(tf):
    from closet_pipeline import packaging

    root_locals = tf.locals(".")
    assert root_locals["model_path_in_zip"] == packaging.MODEL_ARCNAME
    assert 'CLOSET_MODEL_PATH = "/workspace/${local.model_path_in_zip}"' in root_locals["common_environment"]


def mounts_by_env(mounts: list[dict[str, str]]) -> dict[str, set[str]]:
    by_env: dict[str, set[str]] = {}
    for mount in mounts:
        by_env.setdefault(mount["env"], set()).add(mount["function"])
    return by_env


@needs_terraform
def test_secrets_are_mounted_only_where_used_and_only_when_enabled(console, topology):
    http = {f["name"] for f in topology["httpFunctions"]}
    # A first apply needs no operator-supplied value: only the generated bearer secret is mounted.
    assert mounts_by_env(console.eval("local.secret_mounts")) == {"CLOSET_UPLOAD_URL_SECRET": http}
    mounts = console.eval(
        "local.secret_mounts",
        background_providers=["removebg", "local"],
        gemini_enabled="true",
        webhook_url="https://hooks.example.com/x",
    )
    publishes_results = {n for n, f in all_functions(topology).items() if "results" in f["publishes"]}
    assert mounts_by_env(mounts) == {
        "CLOSET_REMOVEBG_API_KEY": {"remove_background"},
        "CLOSET_GEMINI_API_KEY": {"expand"},
        "CLOSET_WEBHOOK_SECRET": publishes_results,
        "CLOSET_UPLOAD_URL_SECRET": http,
    }


def test_only_generated_secrets_get_a_value_from_terraform(tf):
    versions = [b for b in tf.resources() if b.type == "google_secret_manager_secret_version"]
    assert {(b.module, b.name) for b in versions} == {(".", "generated"), ("modules/results_cdn", "url_signing_key")}
    generated = tf.resource(".", "google_secret_manager_secret_version", "generated")
    assert generated["for_each"] == "${local.generated_secrets}"
    assert generated["secret_data"] == "${random_password.generated[each.key].result}"
    assert tf.resource(".", "random_password", "generated")["for_each"] == "${local.generated_secrets}"
    app_reads = tf.resource(".", "google_secret_manager_secret_iam_member", "app_reads_secrets")
    assert app_reads["for_each"] == "${local.app_secret_reads}"
    assert "keys(local.generated_secrets), var.app_invoker_members" in tf.locals(".")["app_secret_reads"]


def test_function_source_is_the_content_addressed_zip(tf):
    obj = tf.resource("modules/function", "google_storage_bucket_object", "source")
    assert obj["source"] == "${var.zip_path}"
    assert obj["name"] == "${var.object_prefix}-${local.zip_md5}.zip"
    assert "filemd5(var.zip_path)" in tf.locals("modules/function")["zip_md5"]
    call = tf.module_calls()["functions"]
    assert call["zip_path"] == "${local.functions_build_dir}/${each.key}.zip"
    assert call["object_prefix"] == "${each.key}"
    assert tf.variables(".")["functions_build_dir"]["default"] == "../build/functions"
    source_bucket = tf.resource(".", "google_storage_bucket", "function_source")
    assert source_bucket["public_access_prevention"] == "enforced"


# == identities and roles =======================================================================


def test_each_function_has_its_own_service_account(tf):
    account = tf.resource(".", "google_service_account", "function")
    assert account["for_each"] == "${local.functions}"
    assert "each.key" in account["account_id"]
    assert (
        tf.module_calls()["functions"]["service_account_email"] == "${google_service_account.function[each.key].email}"
    )
    # No other identity runs a function.
    for block in tf.resources():
        if block.type == "google_cloudfunctions2_function":
            assert single(block.body, "service_config")["service_account_email"] == "${var.service_account_email}"


@needs_terraform
def test_service_account_ids_are_valid_and_distinct(console, tf, topology):
    account_id = expr(tf.resource(".", "google_service_account", "function")["account_id"])
    for prefix in ("closet", "abcdefghij12"):  # the default and the longest name_prefix allowed
        ids = console.eval(for_each_function(account_id), name_prefix=prefix)
        assert set(ids) == set(all_functions(topology))
        assert len(set(ids.values())) == len(ids)
        for value in ids.values():
            assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", value), f"invalid service account id {value}"


def _iam_blocks(tf: Config) -> list[Block]:
    return [b for b in tf.resources() if b.type.endswith(("_iam_member", "_iam_binding", "_iam_policy"))]


def test_every_grant_is_additive_and_allow_listed(tf):
    blocks = _iam_blocks(tf)
    assert len(blocks) >= 10
    for block in blocks:
        where = f"{block.module}/{block.file}: {block.type}.{block.name}"
        assert block.type.endswith("_iam_member"), f"{where}: authoritative IAM (binding/policy) is not allowed"
        assert not block.type.startswith(("google_project_iam", "google_organization_iam", "google_folder_iam")), (
            f"{where}: no project-, folder- or organization-level grants"
        )
        role = block.body["role"]
        assert not role.startswith("${"), f"{where}: the role must be a literal, not {role}"
        assert role in ALLOWED_ROLES, f"{where}: {role} is not in the allow-list"


def test_function_accounts_hold_only_function_roles(tf):
    function_grants = [b for b in _iam_blocks(tf) if "local.function_members" in b.body.get("member", "")]
    kinds = {b.name: b.body["role"] for b in function_grants}
    assert kinds == {
        "function_reads": "roles/storage.objectViewer",
        "function_writes": "roles/storage.objectUser",
        "function_signs_uploads": "roles/storage.objectCreator",
        "function_publishes": "roles/pubsub.publisher",
        "function_secrets": "roles/secretmanager.secretAccessor",
        "function_signs_as_itself": "roles/iam.serviceAccountTokenCreator",
    }
    assert set(kinds.values()) <= FUNCTION_ROLES
    # Signing as itself: the token creator grant is on the function's own account only.
    signs = tf.resource(".", "google_service_account_iam_member", "function_signs_as_itself")
    assert signs["service_account_id"] == "${google_service_account.function[each.key].name}"
    assert signs["member"] == "${local.function_members[each.key]}"


def test_grants_are_driven_by_the_topology_plans(tf):
    expected = {
        ("google_storage_bucket_iam_member", "function_reads"): "${local.bucket_reads}",
        ("google_storage_bucket_iam_member", "function_writes"): "${local.bucket_writes}",
        ("google_storage_bucket_iam_member", "function_signs_uploads"): "${local.bucket_signed_uploads}",
        ("google_pubsub_topic_iam_member", "function_publishes"): "${local.topic_publishes}",
        ("google_service_account_iam_member", "function_signs_as_itself"): "${local.url_signers}",
        ("google_cloud_run_v2_service_iam_member", "pusher_invokes"): "${local.pushed_functions}",
        ("google_cloud_run_v2_service_iam_member", "app_invokes"): "${local.app_invocations}",
        ("google_secret_manager_secret_iam_member", "app_reads_secrets"): "${local.app_secret_reads}",
    }
    for (type_, name), for_each in expected.items():
        body = tf.resource(".", type_, name)
        assert body["for_each"] == for_each, f"{type_}.{name} must iterate {for_each}"
    for name in ("function_reads", "function_writes", "function_signs_uploads"):
        assert (
            tf.resource(".", "google_storage_bucket_iam_member", name)["bucket"]
            == "${module.storage.bucket_names[each.value.area]}"
        )
    assert (
        tf.resource(".", "google_pubsub_topic_iam_member", "function_publishes")["topic"]
        == "${module.messaging.topic_ids[each.value.topic]}"
    )
    secrets = tf.resource(".", "google_secret_manager_secret_iam_member", "function_secrets")
    assert secrets["secret_id"] == "${google_secret_manager_secret.api[each.value.secret].id}"
    assert "local.secret_mounts" in secrets["for_each"]


@needs_terraform
def test_function_grants_follow_reads_writes_and_publishes(console, topology):
    functions = all_functions(topology)
    pushed = {n: f for n, f in functions.items() if f["trigger"] == "pubsub"}
    http = {n: f for n, f in functions.items() if f["trigger"] == "http"}
    plans = console.eval(
        "{ reads = local.bucket_reads, writes = local.bucket_writes, uploads = local.bucket_signed_uploads,"
        " publishes = local.topic_publishes, signers = keys(local.url_signers) }"
    )
    assert set(plans["reads"]) == {f"{n}/{a}" for n, f in functions.items() for a in f["reads"] if a not in f["writes"]}
    assert set(plans["writes"]) == {f"{n}/{a}" for n, f in pushed.items() for a in f["writes"]}
    assert set(plans["uploads"]) == {f"{n}/{a}" for n, f in http.items() for a in f["writes"]}
    assert set(plans["publishes"]) == {
        f"{n}/{topic_of(topology, t)}" for n, f in functions.items() for t in f["publishes"]
    }
    for grant in [*plans["reads"].values(), *plans["writes"].values(), *plans["uploads"].values()]:
        assert grant["area"] in topology["areas"]
    # An HTTP function holds nothing beyond create on the areas it signs uploads for (all a PUT needs).
    signed_uploads = {f"{n}/{a}" for n, f in http.items() for a in f["writes"]}
    assert "upload_url/uploads" in signed_uploads
    assert not signed_uploads & (set(plans["reads"]) | set(plans["writes"]))
    assert not [key for key in plans["writes"] if key.split("/")[0] in http]
    assert set(plans["signers"]) == set(http) | {n for n, f in functions.items() if "results" in f["publishes"]}


def test_invokers_are_the_pusher_and_the_app_only(tf):
    pusher = tf.resource(".", "google_cloud_run_v2_service_iam_member", "pusher_invokes")
    assert pusher["role"] == "roles/run.invoker"
    assert pusher["name"] == "${module.functions[each.key].service_name}"
    assert pusher["member"] == "serviceAccount:${module.messaging.pusher_email}"
    app = tf.resource(".", "google_cloud_run_v2_service_iam_member", "app_invokes")
    assert app["name"] == "${module.functions[each.value.function].service_name}"
    assert app["member"] == "${each.value.member}"
    assert "var.app_invoker_members" in tf.locals(".")["app_invocations"]
    assert (
        tf.outputs("modules/function")["service_name"]["value"]
        == "${google_cloudfunctions2_function.this.service_config[0].service}"
    )
    invokers = [b for b in _iam_blocks(tf) if b.body["role"] == "roles/run.invoker"]
    assert {(b.module, b.name) for b in invokers} == {(".", "pusher_invokes"), (".", "app_invokes")}


@needs_terraform
def test_only_the_app_invokes_the_http_functions(console):
    for public in PUBLIC_MEMBERS:
        with pytest.raises(ConsoleError, match="app_invoker_members"):
            console.eval("var.app_invoker_members", app_invoker_members=[public])
    member = "serviceAccount:backend@p.iam.gserviceaccount.com"
    assert console.eval("var.app_invoker_members", app_invoker_members=[member]) == [member]


def test_nothing_is_public(tf):
    for block in [*tf.resources(), *tf.data()]:
        for text in strings(block.body):
            for public in PUBLIC_MEMBERS:
                assert public not in text, f"{block.file}: {block.type}.{block.name} mentions {public}"
            assert text not in FORBIDDEN_ROLES, f"{block.file}: {block.type}.{block.name} uses {text}"
    for module in tf.modules:
        for name, value in tf.locals(module).items():
            for text in strings(value):
                assert not any(public in text for public in PUBLIC_MEMBERS), f"{module}: local.{name} is public"
    assert not [b for b in tf.resources() if "_acl" in b.type], "no ACL resources: buckets use uniform access"
    buckets = [b for b in tf.resources() if b.type == "google_storage_bucket"]
    assert len(buckets) == 2  # the area buckets (for_each) and the function source bucket
    for bucket in buckets:
        assert bucket.body["uniform_bucket_level_access"] is True, f"{bucket.name}: uniform access"
        assert bucket.body["public_access_prevention"] == "enforced", f"{bucket.name}: public access prevention"


# == messaging ==================================================================================


def test_every_stage_has_a_topic_and_a_dead_lettered_push_subscription(tf):
    messaging = tf.module_calls()["messaging"]
    assert messaging["source"] == "./modules/messaging"
    assert messaging["stage_topics"] == "${{for name, stage in local.stages : name => stage.topic}}"
    assert messaging["stage_endpoints"] == "${{for name in keys(local.stages) : name => module.functions[name].uri}}"
    assert tf.locals(".")["stages"] == "${{for stage in local.topology.stages : stage.name => stage}}"

    topic = tf.resource("modules/messaging", "google_pubsub_topic", "stage")
    assert topic["for_each"] == "${var.stage_topics}" and topic["name"] == "${each.value}"

    subscription = tf.resource("modules/messaging", "google_pubsub_subscription", "stage")
    assert subscription["for_each"] == "${var.stage_topics}"
    assert subscription["topic"] == "${google_pubsub_topic.stage[each.key].id}"
    push = single(subscription, "push_config")
    assert push["push_endpoint"] == "${var.stage_endpoints[each.key]}"
    token = single(push, "oidc_token")
    assert token["service_account_email"] == "${google_service_account.pusher.email}"
    assert token["audience"] == "${var.stage_endpoints[each.key]}"
    dead_letter = single(subscription, "dead_letter_policy")
    assert dead_letter["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead_letter["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert messaging["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    retry = single(subscription, "retry_policy")
    assert retry["minimum_backoff"] == "${var.minimum_backoff_seconds}s"
    assert retry["maximum_backoff"] == "${var.maximum_backoff_seconds}s"
    assert single(subscription, "expiration_policy")["ttl"] == ""


@needs_terraform
def test_stage_topics_and_ack_deadlines_match_the_topology(console, tf, topology):
    messaging = tf.module_calls()["messaging"]
    stage_topics = console.eval(expr(messaging["stage_topics"]))
    assert stage_topics == {stage["name"]: stage["topic"] for stage in topology["stages"]}
    assert console.eval(expr(messaging["progress_topic"])) == topology["topics"]["progress"]
    assert console.eval(expr(messaging["results_topic"])) == topology["topics"]["results"]
    assert console.eval(expr(messaging["dead_letter_topic"])) == topology["topics"]["deadLetter"]

    module_locals = tf.locals("modules/messaging")
    subscription = tf.resource("modules/messaging", "google_pubsub_subscription", "stage")
    assert subscription["ack_deadline_seconds"] == "${local.stage_ack_deadlines[each.key]}"
    deadlines_expression = re.sub(
        r"\bvar\.stage_timeouts\b", f"({expr(messaging['stage_timeouts'])})", expr(module_locals["stage_ack_deadlines"])
    )
    deadlines_expression = re.sub(
        r"\blocal\.ack_margin_seconds\b", f"({expr(module_locals['ack_margin_seconds'])})", deadlines_expression
    )
    deadlines = console.eval(deadlines_expression)
    for stage in topology["stages"]:
        deadline = deadlines[stage["name"]]
        assert min(stage["timeoutSeconds"], 600) <= deadline <= 600, f"{stage['name']}: ack deadline {deadline}"

    handler = tf.resource("modules/messaging", "google_pubsub_subscription", "dead_letter")
    assert handler["ack_deadline_seconds"] == "${local.failure_handler_ack_deadline}"
    handler_deadline = re.sub(
        r"\bvar\.failure_handler_timeout\b",
        f"({expr(messaging['failure_handler_timeout'])})",
        expr(module_locals["failure_handler_ack_deadline"]),
    )
    handler_deadline = re.sub(
        r"\blocal\.ack_margin_seconds\b", f"({expr(module_locals['ack_margin_seconds'])})", handler_deadline
    )
    assert min(topology["failureHandler"]["timeoutSeconds"], 600) <= console.eval(handler_deadline) <= 600


def test_dead_letter_topic_feeds_the_failure_handler(tf):
    messaging = tf.module_calls()["messaging"]
    assert messaging["failure_handler_endpoint"] == "${module.functions[local.topology.failureHandler.name].uri}"
    subscription = tf.resource("modules/messaging", "google_pubsub_subscription", "dead_letter")
    assert subscription["topic"] == "${google_pubsub_topic.dead_letter.id}"
    push = single(subscription, "push_config")
    assert push["push_endpoint"] == "${var.failure_handler_endpoint}"
    assert single(push, "oidc_token")["service_account_email"] == "${google_service_account.pusher.email}"
    assert "dead_letter_policy" not in subscription, "the failure handler's subscription must not dead-letter"
    single(subscription, "retry_policy")


def test_pubsub_agent_can_dead_letter_on_the_resources_only(tf):
    agent = "${local.pubsub_agent}"
    assert "gcp-sa-pubsub.iam.gserviceaccount.com" in tf.locals("modules/messaging")["pubsub_agent"]
    publishes = tf.resource("modules/messaging", "google_pubsub_topic_iam_member", "agent_publishes_dead_letters")
    assert (publishes["topic"], publishes["role"], publishes["member"]) == (
        "${google_pubsub_topic.dead_letter.id}",
        "roles/pubsub.publisher",
        agent,
    )
    acks = tf.resource("modules/messaging", "google_pubsub_subscription_iam_member", "agent_acks_dead_letters")
    assert acks["for_each"] == "${google_pubsub_subscription.stage}"
    assert (acks["subscription"], acks["role"], acks["member"]) == (
        "${each.value.id}",
        "roles/pubsub.subscriber",
        agent,
    )
    tokens = tf.resource("modules/messaging", "google_service_account_iam_member", "agent_mints_push_tokens")
    assert tokens["service_account_id"] == "${google_service_account.pusher.name}" and tokens["member"] == agent


@needs_terraform
def test_max_delivery_attempts_is_validated(console):
    for accepted in (5, 100):
        assert console.eval("var.max_delivery_attempts", max_delivery_attempts=accepted) == accepted
    for refused in (4, 101):
        with pytest.raises(ConsoleError, match="max_delivery_attempts"):
            console.eval("var.max_delivery_attempts", max_delivery_attempts=refused)


@needs_terraform
def test_uploads_notify_the_entry_stage(console, tf, topology):
    notification = tf.resource(".", "google_storage_notification", "uploads")
    assert notification["payload_format"] == "JSON_API_V1"
    assert notification["event_types"] == ["OBJECT_FINALIZE"]
    assert notification["bucket"] == '${module.storage.bucket_names["uploads"]}'
    assert notification["topic"] == "${module.messaging.stage_topic_ids[local.entry_stage]}"
    assert notification["object_name_prefix"] == "${local.topology.uploadPrefix}"
    assert notification["depends_on"] == ["${google_pubsub_topic_iam_member.gcs_agent_publishes_uploads}"]
    grant = tf.resource(".", "google_pubsub_topic_iam_member", "gcs_agent_publishes_uploads")
    assert grant["topic"] == notification["topic"]
    assert grant["member"] == "serviceAccount:${data.google_storage_project_service_account.gcs_agent.email_address}"
    assert console.eval("local.entry_stage") == topology["stages"][0]["name"] == "ingest"
    assert console.eval("local.topology.uploadPrefix") == "uploads/"


# == warm-up ====================================================================================


def test_scheduler_pings_every_stage(tf):
    call = tf.module_calls()["warmup"]
    assert call["topic_ids"] == "${module.messaging.stage_topic_ids}"
    assert call["interval_minutes"] == "${var.warmup_interval_minutes}"
    output = tf.outputs("modules/messaging")["stage_topic_ids"]["value"]
    assert output == "${{for stage, topic in google_pubsub_topic.stage : stage => topic.id}}"  # every stage topic

    job = tf.resource("modules/warmup", "google_cloud_scheduler_job", "warmup")
    assert job["for_each"] == "${var.interval_minutes > 0 ? var.topic_ids : {}}"  # 0 disables
    assert job["schedule"] == "*/${var.interval_minutes} * * * *"
    target = single(job, "pubsub_target")
    assert target["topic_name"] == "${each.value}"
    assert target["attributes"] == {"warmup": "true"}
    variable = tf.variables(".")["warmup_interval_minutes"]
    assert variable["default"] == 5 and variable.get("validation")


# == storage ====================================================================================


@needs_terraform
def test_buckets_per_area_with_lifecycles(console, tf, topology):
    call = tf.module_calls()["storage"]
    assert call["areas"] == "${local.topology.areas}"
    bucket = tf.resource("modules/storage", "google_storage_bucket", "area")
    assert bucket["for_each"] == "${toset(var.areas)}"
    assert console.eval(expr(call["areas"])) == topology["areas"]

    delete_after = expr(call["delete_after_days"])
    assert console.eval(delete_after) == {"work": 1, "cache": 1}
    assert console.eval(delete_after, cache_ttl_hours=25)["cache"] == 2  # rounded up to whole days
    assert console.eval(delete_after, cache_ttl_hours=1)["cache"] == 1
    assert console.eval(delete_after, cache_ttl_hours=48)["cache"] == 2
    assert set(console.eval(delete_after)) <= set(topology["areas"])

    methods = console.eval(expr(call["cors_methods"]))
    assert methods["uploads"] == ["PUT"] and set(methods) <= set(topology["areas"])
    assert call["cors_origins"] == "${var.app_origins}"
    cors = next(d["cors"] for d in nested(bucket, "dynamic") if "cors" in d)
    assert single(cors, "content")["origin"] == "${var.cors_origins}"
    lifecycle = next(d["lifecycle_rule"] for d in nested(bucket, "dynamic") if "lifecycle_rule" in d)
    rule = single(lifecycle, "content")
    assert single(rule, "action")["type"] == "Delete"
    assert single(rule, "condition")["age"] == "${lifecycle_rule.value}"


def test_results_cdn_is_optional_and_off_by_default(tf):
    call = tf.module_calls()["results_cdn"]
    assert call["count"] == "${var.results_cdn_enabled ? 1 : 0}"
    assert tf.variables(".")["results_cdn_enabled"]["default"] is False
    types = {b.type for b in tf.resources("modules/results_cdn")}
    assert {
        "google_compute_backend_bucket",
        "google_compute_url_map",
        "google_compute_global_forwarding_rule",
        "google_compute_managed_ssl_certificate",
    } <= types
    backend = tf.resource("modules/results_cdn", "google_compute_backend_bucket", "results")
    assert backend["enable_cdn"] is True and backend["bucket_name"] == "${var.bucket_name}"


# == the configuration hangs together (what `terraform validate` would catch, offline) ==========


def test_module_calls_match_module_interfaces(tf):
    for name, call in tf.module_calls().items():
        module = call["source"].removeprefix("./")
        declared = tf.variables(module)
        assert declared, f"module {name}: no variables in {module}"
        passed = {key for key in call if not key.startswith("__")} - META_ARGUMENTS
        assert passed <= set(declared), f"module {name}: unknown arguments {sorted(passed - set(declared))}"
        required = {v for v, body in declared.items() if "default" not in body}
        assert required <= passed, f"module {name}: missing {sorted(required - passed)}"


def test_references_resolve(tf):
    calls = {name: call["source"].removeprefix("./") for name, call in tf.module_calls().items()}
    for module in tf.modules:
        variables = set(tf.variables(module))
        local_names = set(tf.locals(module))
        resources = {(b.type, b.name) for b in tf.resources(module)}
        data = {(b.type, b.name) for b in tf.data(module)}
        for relative, parsed in tf.files.items():
            if tf.module_of(relative) != module:
                continue
            for text in strings({k: v for k, v in parsed.items() if k != "variable"}) + [
                s for body in tf.variables(module).values() for v in nested(body, "validation") for s in strings(v)
            ]:
                for ref in re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", text):
                    assert ref in variables, f"{relative}: var.{ref} is not declared in {module}"
                for ref in re.findall(r"\blocal\.([a-z_][a-z0-9_]*)", text):
                    assert ref in local_names, f"{relative}: local.{ref} is not defined in {module}"
                for kind, ref in re.findall(r"\bdata\.([a-z0-9_]+)\.([a-z_][a-z0-9_]*)", text):
                    assert (kind, ref) in data, f"{relative}: data.{kind}.{ref} is not defined in {module}"
                for kind, ref in re.findall(r"(?<![.\w])((?:google|random)_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)", text):
                    assert (kind, ref) in resources, f"{relative}: {kind}.{ref} is not defined in {module}"
                for call, output in re.findall(
                    r"\bmodule\.([a-z_][a-z0-9_]*)(?:\[[^\]]*\])?\.([a-z_][a-z0-9_]*)", text
                ):
                    assert module == "." and call in calls, f"{relative}: module.{call} is not called here"
                    assert output in tf.outputs(calls[call]), f"{relative}: module.{call} has no output {output}"


def test_variables_and_outputs_are_documented(tf):
    for module in tf.modules:
        for name, body in tf.variables(module).items():
            assert body.get("description", "").strip(), f"{module}: variable {name} has no description"
            assert "type" in body, f"{module}: variable {name} has no type"
        for name, body in tf.outputs(module).items():
            assert body.get("description", "").strip(), f"{module}: output {name} has no description"
    root = tf.variables(".")
    for name in (
        "project_id", "region", "name_prefix", "app_origins", "app_invoker_members", "max_delivery_attempts",
        "min_instance_count", "max_instance_count", "warmup_interval_minutes", "cache_ttl_hours",
        "background_providers", "expand_policy", "webhook_url", "results_cdn_enabled",
    ):  # fmt: skip
        assert name in root, f"variable {name} is missing"
    for name in (
        "max_delivery_attempts",
        "warmup_interval_minutes",
        "cache_ttl_hours",
        "background_providers",
        "expand_policy",
        "app_invoker_members",
    ):
        assert root[name].get("validation"), f"variable {name} is not validated"
    outputs = tf.outputs(".")
    assert {"bucket_names", "topic_names", "upload_url_function_url"} <= set(outputs)
    assert outputs["upload_url_function_url"]["value"] == '${module.functions["upload_url"].uri}'


def test_tfvars_example_sets_declared_variables(tf):
    with (TF_DIR / "terraform.tfvars.example").open(encoding="utf-8") as handle:
        example = hcl2.load(handle, serialization_options=HCL_OPTIONS)
    assigned = {key for key in example if not key.startswith("__")}
    assert "project_id" in assigned
    assert assigned <= set(tf.variables(".")), f"undeclared: {sorted(assigned - set(tf.variables('.')))}"


def test_google_provider_is_pinned_to_6(tf):
    blocks = [entry for parsed in [tf.files["versions.tf"]] for entry in parsed["terraform"]]
    providers = single(blocks[0], "required_providers")
    assert providers["google"]["source"] == "hashicorp/google"
    assert re.fullmatch(r"~> 6\.\d+(\.\d+)?", providers["google"]["version"])


def test_apis_are_enabled(tf):
    api = tf.resource(".", "google_project_service", "api")
    assert api["for_each"] == "${local.apis}"
    apis = tf.locals(".")["apis"]
    for service in (
        "cloudfunctions",
        "run",
        "cloudbuild",
        "pubsub",
        "storage",
        "secretmanager",
        "cloudscheduler",
        "iamcredentials",
    ):
        assert f"{service}.googleapis.com" in apis


@needs_terraform
def test_terraform_fmt_is_clean():
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    done = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, f"terraform fmt would change:\n{done.stdout}{done.stderr}"
