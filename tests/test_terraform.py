"""terraform/ deploys the topology of shared/topology.json, from an empty project, safely.

The configuration is validated and planned offline against the real google / google-beta 6.50.0
provider schemas (schema-only stand-in providers, closet_pipeline/terraform_check), for the
default variables and for every feature switched on (terraform/examples/all-features.tfvars).
The tests read what Terraform itself computed: the saved plans as `terraform show -json` gives
them, the dependency graph (`terraform graph`) and, for variable validation, `terraform console`.
Without `terraform` they fail with a one-line reason; they never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.config import Settings
from shared.topology import declaration
from tests.terraform_plans import (
    ALL_FEATURES,
    REPO,
    TF_DIR,
    TOPOLOGY_PATH,
    Plan,
    default_plan,
    full_plan,
    plugin_dir,
    require_terraform,
    shared_workspace,
)

HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# Every role granted anywhere, and where: a function's own account holds only the first six.
FUNCTION_ROLES = {
    "roles/storage.objectViewer",
    "roles/storage.objectUser",
    "roles/storage.objectCreator",
    "roles/pubsub.publisher",
    "roles/secretmanager.secretAccessor",
    "roles/iam.serviceAccountTokenCreator",
}
ALLOWED_ROLES = FUNCTION_ROLES | {
    "roles/pubsub.subscriber",
    "roles/run.invoker",
    "roles/artifactregistry.writer",
    "roles/logging.logWriter",
}
BURST = 200  # uploads at once (issue 12): they must all finish without a dead letter


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp()


DEFAULT_TOPIC_PREFIX = "closet-"  # name_prefix's default plus "-": what CLOSET_TOPIC_PREFIX tells the code


@pytest.fixture(scope="session")
def topology() -> dict[str, Any]:
    """topology.json as the default plan names it: topic ids carry the name prefix."""
    raw = json.loads(TOPOLOGY_PATH.read_text(encoding="utf-8"))
    raw["topics"] = {key: DEFAULT_TOPIC_PREFIX + topic for key, topic in raw["topics"].items()}
    raw["stages"] = [{**stage, "topic": DEFAULT_TOPIC_PREFIX + stage["topic"]} for stage in raw["stages"]]
    return raw


@pytest.fixture(scope="session")
def plan(base) -> Plan:
    return default_plan(base)


@pytest.fixture(scope="session")
def full(base) -> Plan:
    return full_plan(base)


@pytest.fixture(scope="session")
def full_vars() -> dict[str, Any]:
    with ALL_FEATURES.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def all_functions(topology: dict[str, Any], webhook_url: str = "") -> dict[str, dict[str, Any]]:
    """Every function the plan deploys with these settings, from the one reader of topology.json (a
    function with `enabledBy` only when that setting is set), in topology.json's words."""
    from shared.topology import HTTP

    return {spec.name: {"name": spec.name, "entryPoint": spec.entry_point, "memory": spec.memory, "cpu": spec.cpu,
                        "timeoutSeconds": spec.timeout_s, "concurrency": spec.concurrency,
                        "maxInstances": spec.max_instances, "reads": list(spec.reads), "writes": list(spec.writes),
                        "publishes": list(spec.publishes), "signsUrls": spec.signs_urls,
                        "trigger": "http" if spec.kind == HTTP else "pubsub"}
            for spec in declaration().functions if spec.enabled({"webhook_url": webhook_url})}


def topic_of(topology: dict[str, Any], target: str) -> str:
    stages = {stage["name"]: stage for stage in topology["stages"]}
    return stages[target]["topic"] if target in stages else topology["topics"][target]


def known_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in known_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in known_strings(item)]
    return []


# == the schema check itself ====================================================================


def test_configuration_is_valid_against_the_pinned_provider_schemas(base):
    _, versions = plugin_dir(base)
    assert versions == {"google": "6.50.0", "google-beta": "6.50.0", "random": "3.7.2", "time": "0.13.1"}
    validation = shared_workspace(base).validate()
    errors = [d for d in validation["diagnostics"] if d["severity"] == "error"]
    assert validation["valid"] and not errors, errors


def test_providers_are_pinned_to_the_schemas_checked(base, plan):
    _, served = plugin_dir(base)
    providers = plan.configuration["provider_config"]
    for name, version in served.items():
        assert providers[name]["version_constraint"] == version, f"{name} is not pinned to {version}"


def test_both_variable_sets_plan_creations_only(plan, full):
    for planned in (plan, full):
        assert planned.raw["errored"] is False and planned.raw["complete"] is True
        managed = [c for c in planned.changes if c.mode == "managed"]
        assert managed and all(c.actions == ["create"] for c in managed)
    assert len([c for c in full.changes if c.mode == "managed"]) > len([c for c in plan.changes if c.mode == "managed"])


# == functions: one per stage, failure handler and HTTP function ================================


def test_functions_match_the_topology(plan, full, full_vars, topology):
    """One function per declared function (the webhook only with webhook_url), each from the zip
    `make package` built (its md5 names the uploaded object): no placeholder."""
    from closet_pipeline.packaging import md5_of
    from closet_pipeline.terraform_check.check import ZIPS

    expected = all_functions(topology)
    functions = plan.functions()
    assert set(functions) == set(expected) and "webhook" not in functions
    assert set(full.functions()) == set(all_functions(topology, full_vars["webhook_url"])) == set(declaration().names)
    for name, change in functions.items():
        source = expected[name]
        service = change.after["service_config"][0]
        assert change.after["name"] == f"closet-{name.replace('_', '-')}"
        assert service["available_memory"] == source["memory"]
        assert service["available_cpu"] == source["cpu"]
        assert service["timeout_seconds"] == source["timeoutSeconds"]
        assert service["max_instance_request_concurrency"] == source["concurrency"]
        assert service["max_instance_count"] == source["maxInstances"]
        assert service["min_instance_count"] == 0
        # Pub/Sub-pushed functions take internal traffic only; the HTTP ones are reachable (IAM restricts who).
        assert service["ingress_settings"] == ("ALLOW_ALL" if source["trigger"] == "http" else "ALLOW_INTERNAL_ONLY")
        build = change.after["build_config"][0]
        assert (build["runtime"], build["entry_point"]) == (declaration().runtime, source["entryPoint"])
        source_object = build["source"][0]["storage_source"][0]
        assert source_object["bucket"] == "closet-check-closet-function-source"
        assert source_object["object"] == f"{name}-{md5_of(ZIPS / f'{name}.zip')}.zip"


def test_a_declared_function_without_a_zip_fails_the_check(tmp_path):
    """The check plans against build/functions as `make package` left it: a function declared in
    topology.json whose zip is missing stops it (there are no placeholders)."""
    from closet_pipeline.terraform_check.check import ZIPS, ZipsMissing, copy_config

    partial = tmp_path / "zips"
    partial.mkdir()
    for name in declaration().names[:-1]:
        (partial / f"{name}.zip").symlink_to(ZIPS / f"{name}.zip")
    with pytest.raises(ZipsMissing, match=f"no zip in {partial} for {declaration().names[-1]}: run `make package`"):
        copy_config(tmp_path / "copy", zips=partial)


def test_instance_overrides_apply_to_one_function(full, full_vars, topology):
    overrides = full_vars["instance_count_overrides"]
    for name, change in full.functions().items():
        service = change.after["service_config"][0]
        wanted = overrides.get(name, {})
        assert service["min_instance_count"] == wanted.get("min", 0)
        assert service["max_instance_count"] == wanted.get(
            "max", all_functions(topology, full_vars["webhook_url"])[name]["maxInstances"])


def test_function_environment_is_settings_and_buckets(plan, topology):
    from shared.http.common import SECRET_ENV

    fields = {f"CLOSET_{name.upper()}" for name in Settings.model_fields} | {SECRET_ENV}
    buckets = {c.index: c.after["name"] for c in plan.of_type("google_storage_bucket") if c.name == "area"}
    for name, change in plan.functions().items():
        environment = change.after["service_config"][0]["environment_variables"]
        assert set(environment) - {"LOG_EXECUTION_ID"} <= fields, f"{name}: not Settings fields"
        for area in topology["areas"]:
            assert environment[f"CLOSET_{area.upper()}_BUCKET"] == buckets[area]
        assert environment["CLOSET_SIGNED_URL_TTL_S"] == str(declaration().links.result_s)


def test_model_path_matches_the_packaged_model(plan):
    from closet_pipeline import packaging

    environment = plan.functions()["remove_background"].after["service_config"][0]["environment_variables"]
    assert environment["CLOSET_MODEL_PATH"] == f"/workspace/{packaging.MODEL_ARCNAME}"


# == a from-zero apply ==========================================================================


def test_builds_run_as_their_own_account_into_a_cleaned_repository(plan, topology):
    account = plan.one("google_service_account.build")
    assert account.after["account_id"] == "closet-build"
    calls = plan.configuration["root_module"]["module_calls"]["functions"]["expressions"]
    assert "google_service_account.build.id" in calls["build_service_account"]["references"]
    assert "google_artifact_registry_repository.functions.id" in calls["docker_repository"]["references"]
    for change in plan.functions().values():  # set, from the resources above (unknown until they exist)
        assert change.after_unknown["build_config"][0]["service_account"] is True
        assert change.after_unknown["build_config"][0]["docker_repository"] is True

    repository = plan.one("google_artifact_registry_repository.functions")
    assert repository.after["format"] == "DOCKER" and repository.after["repository_id"] == "closet-functions"
    assert repository.after["cleanup_policy_dry_run"] is False
    policies = {p["id"]: p for p in repository.after["cleanup_policies"]}
    delete = policies["delete-older-than-30-days"]
    assert delete["action"] == "DELETE" and delete["condition"][0]["older_than"] == "2592000s"
    keep = policies["keep-newest"]
    assert keep["action"] == "KEEP" and keep["most_recent_versions"][0]["keep_count"] == 5

    # Only what a build needs: push to that repository, read the sources, write logs.
    assert plan.one("google_artifact_registry_repository_iam_member.build_pushes_images").after["role"] == (
        "roles/artifactregistry.writer"
    )
    reads = plan.one("google_storage_bucket_iam_member.build_reads_sources").after
    assert (reads["bucket"], reads["role"]) == ("closet-check-closet-function-source", "roles/storage.objectViewer")
    assert plan.one("google_project_iam_member.build_writes_logs").after["role"] == "roles/logging.logWriter"
    # The sources Cloud Functions stages for the build (gcf-v2-sources-<number>-<region>): read, on
    # that bucket only, through an IAM condition (the bucket does not exist before the first deploy).
    staged = plan.one("google_project_iam_member.build_reads_staged_sources")
    assert staged.after["role"] == "roles/storage.objectViewer"
    (condition,) = staged.after["condition"]
    assert condition["title"] == "staged-function-sources"
    assert staged.after_unknown["condition"][0]["expression"] is True  # the project number, read at apply time
    config = next(r for r in plan.configuration["root_module"]["resources"]
                  if r["address"] == "google_project_iam_member.build_reads_staged_sources")
    expression = config["expressions"]["condition"][0]["expression"]
    assert "data.google_project.deploying.number" in expression["references"]


def test_apis_include_monitoring_and_not_compute(plan, full):
    apis = {c.after["service"] for c in plan.of_type("google_project_service")}
    assert {
        "cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com", "artifactregistry.googleapis.com",
        "pubsub.googleapis.com", "storage.googleapis.com", "secretmanager.googleapis.com", "cloudscheduler.googleapis.com",
        "iamcredentials.googleapis.com", "monitoring.googleapis.com",
    } <= apis  # fmt: skip
    assert "compute.googleapis.com" not in apis  # nothing uses the Compute Engine default account
    assert "billingbudgets.googleapis.com" in {c.after["service"] for c in full.of_type("google_project_service")}
    assert all(c.after["disable_on_destroy"] is False for c in plan.of_type("google_project_service"))


def test_everything_waits_for_the_apis(base, plan):
    wait = plan.one("time_sleep.apis_ready")
    assert wait.after["create_duration"] == "90s"
    assert wait.after["triggers"]["apis"] == ",".join(
        sorted(c.after["service"] for c in plan.of_type("google_project_service"))
    )

    graph = shared_workspace(base).run("graph").stdout
    edges: dict[str, set[str]] = {}
    for source, target in re.findall(r'"([^"]+)" -> "([^"]+)"', graph):
        edges.setdefault(source, set()).add(target)
    nodes = set(re.findall(r'^\s*"([^"]+)" \[label', graph, re.MULTILINE))

    def reaches(node: str, goal: str, seen: set[str] | None = None) -> bool:
        seen = seen if seen is not None else set()
        if node == goal:
            return True
        seen.add(node)
        return any(reaches(n, goal, seen) for n in edges.get(node, ()) if n not in seen)

    google = [n for n in nodes if re.search(r"(^|\.)google_", n) and "google_project_service.api" not in n]
    assert len(google) > 30
    for node in google:
        if node == "data.google_secret_manager_secret_version.required":
            continue  # read at plan time on purpose (secrets.tf)
        assert reaches(node, "time_sleep.apis_ready"), f"{node} does not wait for the APIs"
    assert reaches("time_sleep.apis_ready", "google_project_service.api")
    # The secret-version check depends on nothing, so Terraform cannot defer it to apply time.
    assert not edges.get("data.google_secret_manager_secret_version.required")


def test_service_agents_are_created_before_they_are_granted(plan):
    identity = plan.one("google_project_service_identity.pubsub")
    assert identity.after["service"] == "pubsub.googleapis.com"
    assert identity.provider == "registry.terraform.io/hashicorp/google-beta"
    # A new agent is not visible to IAM at once: every grant to it comes through a wait after it.
    messaging = plan.configuration["root_module"]["module_calls"]["messaging"]["expressions"]
    assert "time_sleep.pubsub_agent_ready" in messaging["pubsub_agent_member"]["references"]
    for wait in ("time_sleep.pubsub_agent_ready", "time_sleep.gcs_agent_ready"):
        assert plan.one(wait).after["create_duration"] == "60s"
        assert plan.one(wait).after_unknown["triggers"]["member"] is True
    waits = {r["address"]: r for r in plan.configuration["root_module"]["resources"] if r["type"] == "time_sleep"}
    assert "google_project_service_identity.pubsub.member" in (
        waits["time_sleep.pubsub_agent_ready"]["expressions"]["triggers"]["references"])
    agent_grants = [
        c
        for c in plan.changes
        if c.module == "module.messaging" and c.type.endswith("_iam_member") and c.name.startswith("agent_")
    ]
    # dead-letter topic, pusher token creator, each stage subscription (the webhook's two only with
    # webhook_url set: the full plan)
    assert len(agent_grants) == 1 + 1 + 5
    for grant in agent_grants:
        assert grant.after_unknown.get("member") is True  # the identity resource's member, known once it exists
    for change in plan.changes:  # never a service agent email built from the project number
        assert not any("gcp-sa-pubsub" in s for s in known_strings(change.after)), change.address

    gcs_agent = plan.one("data.google_storage_project_service_account.gcs_agent")
    assert gcs_agent.actions == ["read"]  # read (and so created) after the API wait, at apply time
    grant = plan.one("google_pubsub_topic_iam_member.gcs_agent_publishes_uploads")
    assert grant.after["role"] == "roles/pubsub.publisher" and grant.after_unknown["member"] is True
    config = next(r for r in plan.configuration["root_module"]["resources"]
                  if r["address"] == "google_pubsub_topic_iam_member.gcs_agent_publishes_uploads")
    assert "time_sleep.gcs_agent_ready" in config["expressions"]["member"]["references"]


# == capacity: a burst of 200 uploads ends without dead letters =================================


def benchmark_stage_p95_seconds() -> dict[str, float]:
    """The 12 MP table's "topology warm p95" column of BENCHMARKS.md (`make bench`)."""
    text = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    section = text[text.index("## 12 MP photos") :]
    found = {}
    for name, *cells in re.findall(r"^\| (\w+) \|" + r" ([\d,]+) \|" * 6, section, re.MULTILINE):
        found.setdefault(name, int(cells[5].replace(",", "")) / 1000)
    return found


def retry_window_seconds(attempts: int, minimum: float, maximum: float) -> float:
    """Time from a message's first delivery to its last, if every delivery fails: Pub/Sub's
    exponential backoff doubles from minimum up to maximum between deliveries."""
    return sum(min(minimum * 2**retry, maximum) for retry in range(attempts - 1))


def test_a_burst_of_200_drains_inside_the_retry_window(plan, topology):
    """Each push an instance limit answers with 429 spends a delivery attempt. A message must be
    deliverable for longer than the slowest stage takes to work through the whole burst."""
    p95 = benchmark_stage_p95_seconds()
    cold_start = 5.0  # BENCHMARKS.md: cold minus warm through the topology, 4.8 s
    subscriptions = plan.by_index("google_pubsub_subscription", "stage")
    functions = plan.functions()
    for stage in topology["stages"]:
        name = stage["name"]
        subscription = subscriptions[name].after
        retry = subscription["retry_policy"][0]
        window = retry_window_seconds(
            subscription["dead_letter_policy"][0]["max_delivery_attempts"],
            float(retry["minimum_backoff"].removesuffix("s")),
            float(retry["maximum_backoff"].removesuffix("s")),
        )
        service = functions[name].after["service_config"][0]
        at_once = service["max_instance_count"] * service["max_instance_request_concurrency"]
        rounds = -(-BURST // at_once)
        drain = cold_start + rounds * p95[name]
        assert window >= 2 * drain, f"{name}: {BURST} photos take ~{drain:.0f} s, deliveries stop after {window:.0f} s"
    # The arithmetic README.md writes down, with these numbers.
    assert retry_window_seconds(10, 10, 60) == 430
    assert p95["remove_background"] <= 5.0


# == messaging ==================================================================================


def test_every_stage_has_its_topic_and_a_dead_lettered_push_subscription(plan, topology):
    topics = {c.after["name"] for c in plan.of_type("google_pubsub_topic")}
    webhook_only = {topology["topics"][s["deadLetterTopic"]] for s in topology["subscribers"]}  # no webhook_url here
    assert topics == {s["topic"] for s in topology["stages"]} | set(topology["topics"].values()) - webhook_only
    subscriptions = plan.by_index("google_pubsub_subscription", "stage")
    assert set(subscriptions) == {s["name"] for s in topology["stages"]}
    for stage in topology["stages"]:
        subscription = subscriptions[stage["name"]].after
        assert subscription["name"] == f"closet-{stage['name'].replace('_', '-')}-push"
        assert subscription["ack_deadline_seconds"] == min(600, stage["timeoutSeconds"] + 10)
        assert subscription["dead_letter_policy"][0]["max_delivery_attempts"] == 10
        assert subscription["retry_policy"][0] == {"minimum_backoff": "10s", "maximum_backoff": "60s"}
        assert subscription["expiration_policy"][0]["ttl"] == ""
        assert (
            subscriptions[stage["name"]].after_unknown["push_config"][0]["push_endpoint"] is True
        )  # the function's URL
    handler = plan.one("module.messaging.google_pubsub_subscription.dead_letter").after
    assert handler["dead_letter_policy"] == []  # the end of the line
    assert handler["ack_deadline_seconds"] == topology["failureHandler"]["timeoutSeconds"] + 10


def test_the_webhook_has_its_own_dead_lettered_subscription_on_results(plan, full, topology):
    """The webhook function is pushed from its own subscription on the results topic: Pub/Sub's
    retry policy (topology.json's backoff, up to maxDeliveryAttempts) carries a receiver's outage,
    then its own dead-letter topic, kept 7 days in a pull subscription. Only with webhook_url set
    (the full plan): without it, no function, subscription, topic or grant for the webhook."""
    (spec,) = topology["subscribers"]
    assert spec["topic"] == "results" and spec["enabledBy"] == "webhook_url"
    assert not [c.address for c in plan.changes if "webhook" in c.address and "secret" not in c.address]
    plan = full
    subscription = plan.by_index("google_pubsub_subscription", "subscriber")[spec["name"]].after
    assert subscription["name"].endswith("-webhook-push")
    assert subscription["dead_letter_policy"][0]["max_delivery_attempts"] == spec["maxDeliveryAttempts"]
    retry = subscription["retry_policy"][0]
    assert (retry["minimum_backoff"], retry["maximum_backoff"]) == (
        f"{spec['minimumBackoffSeconds']}s", f"{spec['maximumBackoffSeconds']}s")
    assert subscription["ack_deadline_seconds"] == spec["timeoutSeconds"] + 10
    assert subscription["push_config"][0]["oidc_token"]
    topics = {c.after["name"] for c in plan.of_type("google_pubsub_topic")}
    full_prefix = plan.one("google_service_account.build").after["account_id"].removesuffix("-build") + "-"
    assert topology["topics"][spec["deadLetterTopic"]].replace(DEFAULT_TOPIC_PREFIX, full_prefix, 1) in topics
    parked = plan.by_index("google_pubsub_subscription", "subscriber_dead_letter")[spec["name"]].after
    assert parked["message_retention_duration"] == "604800s" and not parked.get("push_config")


def test_max_delivery_attempts_reaches_every_stage_subscription(full, full_vars):
    attempts = full_vars["max_delivery_attempts"]
    for change in full.by_index("google_pubsub_subscription", "stage").values():
        assert change.after["dead_letter_policy"][0]["max_delivery_attempts"] == attempts


def test_uploads_notify_the_entry_stage(plan, topology):
    notification = plan.one("google_storage_notification.uploads").after
    assert notification["bucket"] == "closet-check-closet-uploads"
    assert notification["payload_format"] == "JSON_API_V1"
    assert notification["event_types"] == ["OBJECT_FINALIZE"]
    assert notification["object_name_prefix"] == topology["uploadPrefix"]
    expressions = next(
        r
        for r in plan.configuration["root_module"]["resources"]
        if r["address"] == "google_storage_notification.uploads"
    )
    assert expressions["depends_on"] == ["google_pubsub_topic_iam_member.gcs_agent_publishes_uploads"]


def test_scheduler_pings_every_stage(plan, full, full_vars, topology):
    jobs = plan.by_index("google_cloud_scheduler_job", "warmup")
    assert set(jobs) == {s["name"] for s in topology["stages"]}
    for job in jobs.values():
        assert job.after["schedule"] == "*/5 * * * *" and job.after["region"] == "us-central1"
        assert job.after["pubsub_target"][0]["attributes"] == {"warmup": "true"}
    interval = full_vars["warmup_interval_minutes"]
    assert {j.after["schedule"] for j in full.of_type("google_cloud_scheduler_job")} == {f"*/{interval} * * * *"}


# == secrets ====================================================================================


def mounted(plan: Plan) -> dict[str, set[str]]:
    by_env: dict[str, set[str]] = {}
    for name, change in plan.functions().items():
        for secret in change.after["service_config"][0]["secret_environment_variables"]:
            by_env.setdefault(secret["key"], set()).add(name)
            assert secret["version"] == "latest"
    return by_env


def test_the_links_lifetime_is_the_declared_one(full):
    """CLOSET_SIGNED_URL_TTL_S is topology.json's links.resultSeconds unless the variable says
    otherwise (shared/topology.py refuses a declared lifetime shorter than one webhook delivery:
    tests/test_units.py)."""
    for change in full.functions().values():
        assert change.after["service_config"][0]["environment_variables"]["CLOSET_SIGNED_URL_TTL_S"] == (
            str(declaration().links.result_s))


def test_secrets_are_mounted_only_where_used_and_only_when_enabled(plan, full, topology):
    http = {n for n, f in all_functions(topology).items() if f["trigger"] == "http"}
    # A first apply needs no operator-supplied value: only the generated bearer secret is mounted.
    assert mounted(plan) == {"CLOSET_UPLOAD_URL_SECRET": http}
    # Only the webhook function signs webhook calls (pushed from its own subscription on results).
    assert mounted(full) == {
        "CLOSET_REMOVEBG_API_KEY": {"remove_background"},
        "CLOSET_GEMINI_API_KEY": {"expand"},
        "CLOSET_WEBHOOK_SECRET": {"webhook"},
        "CLOSET_UPLOAD_URL_SECRET": http,
    }
    secret_ids = {c.after["secret_id"] for c in full.of_type("google_secret_manager_secret")}
    assert secret_ids == {
        f"closet-stg-{s}" for s in ("removebg-api-key", "gemini-api-key", "webhook-secret", "upload-url-secret")
    }


def read_while_planning(planned: Plan, type_: str) -> dict[Any, dict[str, Any]]:
    """Data sources Terraform read during the plan (deferred reads are resource_changes instead)."""
    resources = planned.raw.get("prior_state", {}).get("values", {}).get("root_module", {}).get("resources", [])
    return {r["index"]: r["values"] for r in resources if r["mode"] == "data" and r["type"] == type_}


def test_switched_on_secrets_are_read_at_plan_time_without_their_value(plan, full):
    assert read_while_planning(plan, "google_secret_manager_secret_version") == {}
    reads = read_while_planning(full, "google_secret_manager_secret_version")
    assert set(reads) == {"removebg-api-key", "gemini-api-key", "webhook-secret"}
    for key, read in reads.items():
        assert read["secret"] == f"closet-stg-{key}" and read["version"] == "latest"
        assert read["fetch_secret_data"] is False  # the third party's key never enters the plan or the state
    assert not full.of_type("google_secret_manager_secret_version", mode="data")  # nothing deferred


def test_a_switched_on_secret_without_a_version_fails_the_plan(base):
    from closet_pipeline.terraform_check.check import TerraformFailed

    copy = shared_workspace(base)
    os.environ["CLOSET_STANDIN_READS"] = json.dumps({"google_secret_manager_secret_version": {"enabled": False}})
    try:
        with pytest.raises(TerraformFailed) as failed:
            copy.plan(f"-var-file={ALL_FEATURES}", "-var=gemini_enabled=false", "-var=webhook_url=", name="no-version")
    finally:
        os.environ.pop("CLOSET_STANDIN_READS")
    message = " ".join(failed.value.stderr.split())
    assert "Secret closet-stg-removebg-api-key has no enabled latest version" in message
    assert "gcloud secrets versions add closet-stg-removebg-api-key --project=closet-staging" in message
    assert "gemini" not in message and "webhook-secret" not in message


def test_retries_that_end_before_a_timeout_fail_the_plan(base):
    """A dead delivery's in-progress lease lasts its function's timeout; retries that stop sooner would
    dead-letter the photo in flight (the local topology follows the same rule)."""
    from closet_pipeline.terraform_check.check import TerraformFailed

    copy = shared_workspace(base)
    with pytest.raises(TerraformFailed) as failed:
        copy.plan("-var=project_id=closet-check", "-var=max_delivery_attempts=5", "-var=retry_minimum_backoff_seconds=10",
                  "-var=retry_maximum_backoff_seconds=10", name="short-retries")
    message = " ".join(failed.value.stderr.split())
    assert "The retries of remove_background (5 deliveries, 10-10 s backoff: at least 40 s) end before its 120 s timeout" in message


def test_only_generated_secrets_get_a_value_and_it_is_sensitive(plan):
    versions = plan.of_type("google_secret_manager_secret_version")
    assert [v.index for v in versions] == ["upload-url-secret"]
    password = plan.one('random_password.generated["upload-url-secret"]')
    assert password.after_sensitive["result"] is True  # never printed by plan or `terraform show`
    assert not plan.of_type("random_id")  # the CDN key (random_id.b64_url) went with the CDN


# == identities and roles =======================================================================


def iam_changes(plan: Plan) -> list:
    return [c for c in plan.changes if c.mode == "managed" and "_iam_" in c.type]


def test_every_grant_is_additive_allow_listed_and_never_public(plan, full):
    for planned in (plan, full):
        grants = iam_changes(planned)
        assert len(grants) > 40
        for grant in grants:
            assert grant.type.endswith("_iam_member"), f"{grant.address}: authoritative IAM is not allowed"
            assert grant.after["role"] in ALLOWED_ROLES, f"{grant.address}: {grant.after['role']}"
            assert not any(p in grant.after.get("member", "") for p in PUBLIC_MEMBERS), grant.address
        project_level = [g for g in grants if g.type == "google_project_iam_member"]
        # Two project-level grants: build logs (Cloud Logging has no narrower place to grant it) and
        # the staged sources (held back to their one bucket by an IAM condition).
        assert sorted((g.address, g.after["role"]) for g in project_level) == [
            ("google_project_iam_member.build_reads_staged_sources", "roles/storage.objectViewer"),
            ("google_project_iam_member.build_writes_logs", "roles/logging.logWriter"),
        ]
        staged = next(g for g in project_level if g.address.endswith("build_reads_staged_sources"))
        assert staged.after["condition"], "the project-level read must stay conditioned to the staged sources"


def test_function_grants_follow_reads_writes_and_publishes(plan, topology):
    functions = all_functions(topology)
    buckets = {c.after["name"]: c.index for c in plan.of_type("google_storage_bucket") if c.name == "area"}
    granted = {}
    for grant in iam_changes(plan):
        if grant.name.startswith("function_") and grant.type == "google_storage_bucket_iam_member":
            name, area = grant.index.split("/")
            assert buckets[grant.after["bucket"]] == area
            granted[(name, area)] = grant.after["role"]
    expected = {}
    for name, function in functions.items():
        for area in function["reads"]:
            expected[(name, area)] = "roles/storage.objectViewer"
        for area in function["writes"]:
            expected[(name, area)] = (
                "roles/storage.objectCreator" if function["trigger"] == "http" else "roles/storage.objectUser"
            )
    assert granted == expected

    publishes = {g.index for g in plan.of_type("google_pubsub_topic_iam_member") if g.name == "function_publishes"}
    assert publishes == {f"{n}/{topic_of(topology, t)}" for n, f in functions.items() for t in f["publishes"]}
    signers = {
        g.index for g in plan.of_type("google_service_account_iam_member") if g.name == "function_signs_as_itself"
    }
    assert signers == {n for n, f in functions.items() if f.get("signsUrls")}


def test_invokers_are_the_pusher_and_the_app_only(plan, full, full_vars, topology):
    for planned, app_members, webhook_url in ((plan, [], ""), (full, full_vars["app_invoker_members"],
                                                               full_vars["webhook_url"])):
        pushed = {n for n, f in all_functions(topology, webhook_url).items() if f["trigger"] == "pubsub"}
        http = {n for n, f in all_functions(topology, webhook_url).items() if f["trigger"] == "http"}
        invokers = [g for g in planned.of_type("google_cloud_run_v2_service_iam_member")]
        assert {g.after["role"] for g in invokers} == {"roles/run.invoker"}
        assert {g.index for g in invokers if g.name == "pusher_invokes"} == pushed
        assert {g.index for g in invokers if g.name == "app_invokes"} == {f"{f}/{m}" for f in http for m in app_members}
        assert {g.name for g in invokers} <= {"pusher_invokes", "app_invokes"}


def test_service_account_ids_are_valid_and_distinct(plan, full):
    for planned in (plan, full):
        ids = [c.after["account_id"] for c in planned.of_type("google_service_account")]
        functions = len(all_functions({}, "https://x" if planned is full else ""))
        assert len(ids) == len(set(ids)) == functions + 2  # the functions, the pusher, the build
        for value in ids:
            assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", value), f"invalid service account id {value}"


# == storage ====================================================================================


def test_every_area_has_a_private_bucket_deleted_after_its_retention(plan, full, full_vars, topology):
    for planned, days in (
        (plan, {"uploads": 7, "work": 1, "results": 30, "cache": 1}),
        (
            full,
            {
                "uploads": full_vars["uploads_retention_days"],
                "work": 1,
                "results": full_vars["results_retention_days"],
                "cache": -(-full_vars["cache_ttl_hours"] // 24),
            },
        ),
    ):
        buckets = {c.index: c.after for c in planned.of_type("google_storage_bucket") if c.name == "area"}
        assert set(buckets) == set(topology["areas"])
        for area, bucket in buckets.items():
            assert bucket["uniform_bucket_level_access"] is True
            assert bucket["public_access_prevention"] == "enforced"
            [rule] = bucket["lifecycle_rule"]
            assert rule["action"][0]["type"] == "Delete"
            assert rule["condition"][0]["age"] == days[area], area
            assert bucket["soft_delete_policy"][0]["retention_duration_seconds"] == 0  # deleted means gone
    uploads = next(c.after for c in full.of_type("google_storage_bucket") if c.index == "uploads")
    assert uploads["cors"][0]["origin"] == full_vars["app_origins"] and uploads["cors"][0]["method"] == ["PUT"]


# == operations =================================================================================


def test_alert_policies_watch_backlogs_dead_letters_and_errors(plan, full, full_vars, topology):
    policies = {c.index: c.after for c in plan.of_type("google_monitoring_alert_policy")}
    assert set(policies) == {"stage-backlog", "dead-lettered", "dead-letter-backlog", "function-5xx", "function-429"}
    backlog = policies["stage-backlog"]["conditions"]
    subscriptions = {c.after["name"] for c in plan.by_index("google_pubsub_subscription", "stage").values()}
    assert len(backlog) == len(topology["stages"])
    for condition, in_filter in zip(backlog, sorted(subscriptions)):
        threshold = condition["condition_threshold"][0]
        assert "oldest_unacked_message_age" in threshold["filter"] and threshold["threshold_value"] == 600
    assert {
        re.search(r'subscription_id = "([^"]+)"', c["condition_threshold"][0]["filter"]).group(1) for c in backlog
    } == subscriptions
    dead_lettered = policies["dead-lettered"]["conditions"][0]["condition_threshold"][0]["filter"]
    assert "dead_letter_message_count" in dead_lettered and all(s in dead_lettered for s in subscriptions)
    assert (
        "closet-dead-letter-push"
        in policies["dead-letter-backlog"]["conditions"][0]["condition_threshold"][0]["filter"]
    )
    services = [f"closet-{n.replace('_', '-')}" for n in all_functions(topology)]
    for key, code in (("function-5xx", 'response_code_class = "5xx"'), ("function-429", 'response_code = "429"')):
        condition = policies[key]["conditions"][0]["condition_threshold"][0]
        assert code in condition["filter"] and all(f'"{s}"' in condition["filter"] for s in services)
    assert policies["function-5xx"]["conditions"][0]["condition_threshold"][0]["threshold_value"] == pytest.approx(
        1 / 60
    )
    assert all(p["notification_channels"] == [] for p in policies.values())

    full_policies = {c.index: c.after for c in full.of_type("google_monitoring_alert_policy")}
    assert set(full_policies) == set(policies) | {"webhook-dead-letters"}
    assert (
        "closet-stg-webhook-push"
        in full_policies["webhook-dead-letters"]["conditions"][0]["condition_threshold"][0]["filter"]
    )
    assert all(p["notification_channels"] == full_vars["notification_channels"] for p in full_policies.values())


def test_budget_is_optional(plan, full, full_vars):
    assert not plan.of_type("google_billing_budget")
    [budget] = full.of_type("google_billing_budget")
    assert budget.after["billing_account"] == full_vars["billing_account"]
    assert budget.after["amount"][0]["specified_amount"][0] == {
        "currency_code": "USD",
        "units": str(full_vars["monthly_budget_usd"]),
    }
    rules = {(r["threshold_percent"], r["spend_basis"]) for r in budget.after["threshold_rules"]}
    assert rules == {(0.5, "CURRENT_SPEND"), (0.9, "CURRENT_SPEND"), (1.0, "CURRENT_SPEND"), (1.0, "FORECASTED_SPEND")}
    assert budget.after["all_updates_rule"][0]["monitoring_notification_channels"] == full_vars["notification_channels"]


def test_no_cdn_is_deployed(plan, full):
    for planned in (plan, full):
        assert not [c for c in planned.changes if c.type.startswith("google_compute_")]
    assert not (TF_DIR / "modules" / "results_cdn").exists()


# Names that are not project-wide: APIs, topics (see below) and the source zips (inside a bucket).
SHARED_NAMES = {"google_project_service", "google_storage_bucket_object"}


def test_two_environments_share_a_project_but_not_a_name(plan, full):
    """Every project-scoped name carries name_prefix, topic ids included; the functions are told the
    topics' prefix (CLOSET_TOPIC_PREFIX), so each environment publishes to its own."""

    def names(planned: Plan) -> set[str]:
        found = set()
        for change in planned.changes:
            if change.mode != "managed" or change.type in SHARED_NAMES:
                continue
            for key in ("name", "account_id", "secret_id", "repository_id"):
                if isinstance(change.after.get(key), str):
                    found.add(f"{change.type}:{change.after[key]}")
            if change.type == "google_monitoring_alert_policy":
                found.add(change.after["display_name"])
        return found

    default, staging = names(plan), names(full)
    assert len(default) > 40 and not default & staging
    for planned, prefix in ((plan, "closet-"), (full, "closet-stg-")):
        assert all(c.after["name"].startswith(prefix) for c in planned.of_type("google_pubsub_topic"))
        for function in planned.of_type("google_cloudfunctions2_function"):
            assert function.after["service_config"][0]["environment_variables"]["CLOSET_TOPIC_PREFIX"] == prefix


def test_backend_is_partial_with_an_example():
    with (TF_DIR / "versions.tf").open(encoding="utf-8") as handle:
        versions = hcl2.load(handle, serialization_options=HCL_OPTIONS)
    backends = [b for block in versions["terraform"] for b in block.get("backend", [])]
    assert backends == [{"gcs": {}}] or [list(b) for b in backends] == [["gcs"]]
    with (TF_DIR / "examples" / "backend.gcs.hcl").open(encoding="utf-8") as handle:
        example = hcl2.load(handle, serialization_options=HCL_OPTIONS)
    assert set(example) >= {"bucket", "prefix"}


# == variables: validated, documented, exemplified ==============================================


class ConsoleError(Exception):
    pass


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory):
    """`terraform console` over variables.tf and topology.tf alone: no provider needed."""
    binary = require_terraform()
    scratch = tmp_path_factory.mktemp("tfconsole")
    (scratch / "terraform").mkdir()
    (scratch / "shared").mkdir()
    for name in ("variables.tf", "topology.tf"):
        shutil.copy(TF_DIR / name, scratch / "terraform" / name)
    shutil.copy(TOPOLOGY_PATH, scratch / "shared" / "topology.json")

    def evaluate(expression: str, **variables: Any) -> Any:
        args = [binary, "console", "-no-color", "-var=project_id=test-project"]
        args += [f"-var={k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in variables.items()]
        env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
        done = subprocess.run(
            args,
            input=f"jsonencode({expression})\n",
            cwd=scratch / "terraform",
            env=env,
            check=False,  # the return code is read below
            capture_output=True,
            text=True,
            timeout=60,
        )
        if "Error" in done.stderr or not done.stdout.strip():
            raise ConsoleError(done.stderr.strip() or f"no output for {expression}")
        return json.loads(json.loads(done.stdout.strip().splitlines()[-1]))

    return evaluate


@pytest.mark.parametrize(
    ("variable", "accepted", "refused"),
    [
        ("max_delivery_attempts", [5, 100], [4, 101, 7.5]),
        ("signed_url_ttl_seconds", [60, 604800], [59, 604801]),
        ("uploads_retention_days", [1, 7, 365], [0, 366]),
        ("api_propagation_seconds", [0, 90], [-1, 601]),
        ("build_images_kept", [2, 5], [1]),
        ("billing_account", ["012345-6789AB-CDEF01", ""], ["12345", "billingAccounts/012345-6789AB-CDEF01"]),
        ("notification_channels", [["projects/p/notificationChannels/1"]], [["1234"]]),
        ("app_invoker_members", [["serviceAccount:backend@p.iam.gserviceaccount.com"]], [[m] for m in PUBLIC_MEMBERS]),
    ],
)
def test_variables_refuse_bad_values(console, variable, accepted, refused):
    for value in accepted:
        assert console(f"var.{variable}", **{variable: value}) == value
    for value in refused:
        with pytest.raises(ConsoleError, match=variable):
            console(f"var.{variable}", **{variable: value})


def test_results_outlive_the_cache_they_back(console):
    assert console("var.results_retention_days", results_retention_days=2, cache_ttl_hours=48) == 2
    with pytest.raises(ConsoleError, match="results_retention_days"):
        console("var.results_retention_days", results_retention_days=1, cache_ttl_hours=25)


def test_variables_and_outputs_are_documented():
    for path in sorted(TF_DIR.rglob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            parsed = hcl2.load(handle, serialization_options=HCL_OPTIONS)
        for kind in ("variable", "output"):
            for entry in parsed.get(kind, []):
                for name, body in entry.items():
                    assert body.get("description", "").strip(), f"{path}: {kind} {name} has no description"
                    assert kind == "output" or "type" in body, f"{path}: variable {name} has no type"


def test_tfvars_examples_set_declared_variables():
    with (TF_DIR / "variables.tf").open(encoding="utf-8") as handle:
        declared = {
            name for entry in hcl2.load(handle, serialization_options=HCL_OPTIONS)["variable"] for name in entry
        }
    for example in (TF_DIR / "terraform.tfvars.example", ALL_FEATURES):
        with example.open(encoding="utf-8") as handle:
            assigned = {k for k in hcl2.load(handle, serialization_options=HCL_OPTIONS) if not k.startswith("__")}
        assert "project_id" in assigned and assigned <= declared, f"{example.name}: {sorted(assigned - declared)}"


def test_no_topic_id_is_hardcoded(topology):
    topic_ids = {stage["topic"] for stage in topology["stages"]} | set(topology["topics"].values())
    for path in TF_DIR.rglob("*.tf"):
        text = path.read_text(encoding="utf-8")
        for topic in topic_ids:
            assert topic not in text, f"{path} hard-codes topic id {topic}: read it from shared/topology.json"


def test_readme_resource_counts_are_the_checks_output(plan, full):
    """terraform/README.md quotes what `python -m closet_pipeline.terraform_check` prints for both
    variable sets (the same summary of the same plans), never counts written by hand."""
    from closet_pipeline.terraform_check.check import summary

    readme = (TF_DIR / "README.md").read_text(encoding="utf-8")
    for key, planned in (("default", plan), ("all-features", full)):
        marker = f"<!-- terraform_check {key} -->"
        assert marker in readme, f"terraform/README.md has no {marker} block"
        quoted = readme.split(marker, 1)[1].split("```", 2)[1].strip()
        expected = "\n".join(summary(planned.raw))
        assert quoted == expected, f"terraform/README.md's {key} counts are stale; paste the check's output:\n{expected}"


def test_terraform_fmt_is_clean():
    binary = require_terraform()
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    done = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
        check=False,  # the return code is read below
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, f"terraform fmt would change:\n{done.stdout}{done.stderr}"
