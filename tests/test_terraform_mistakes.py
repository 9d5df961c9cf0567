"""The offline schema check catches what the old string-comparing tests let through.

Issue 12 listed five mistakes that passed all 37 previous Terraform tests; each is injected here
into a copy of terraform/ and `terraform validate` against the real google 6.50.0 schema must
refuse it -- or, where the argument sits in a `dynamic` block whose for_each is only known
with the variables, `terraform plan` -- naming the file and the offending argument. Two more kinds (a missing required
argument, an unknown resource type) round it off. The unchanged copy validates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.terraform_plans import workspace

# (name, file, text to replace, replacement, what the error must mention)
MISTAKES = [
    (
        "replication automatic = true",
        "secrets.tf",
        "  replication {\n    auto {}\n  }",
        "  replication {\n    automatic = true\n  }",
        "automatic",
    ),
    (
        "location instead of region on the Scheduler job",
        "modules/warmup/main.tf",
        "  region      = var.region",
        "  location    = var.region",
        "location",
    ),
    (
        "bucket_name instead of bucket in storage_source",
        "modules/function/main.tf",
        "        bucket = var.source_bucket",
        "        bucket_name = var.source_bucket",
        "bucket_name",
    ),
    (
        'max_age_seconds = "one hour"',
        "modules/storage/main.tf",
        "      max_age_seconds = 3600",
        '      max_age_seconds = "one hour"',
        "max_age_seconds",
    ),
    (
        "a required argument left out (topic of a subscription)",
        "modules/messaging/main.tf",
        "  topic = google_pubsub_topic.dead_letter.id\n\n  ack_deadline_seconds       = local.failure_handler_ack_deadline",
        "  ack_deadline_seconds       = local.failure_handler_ack_deadline",
        "topic",
    ),
    (
        "an unknown resource type",
        "build.tf",
        'resource "google_artifact_registry_repository" "functions"',
        'resource "google_artifact_registry_repo" "functions"',
        "google_artifact_registry_repo",
    ),
]

# The fifth mistake of the issue was in the CDN module, deleted since: the same forwarding rule,
# added as a file, with target_proxy where the schema says target.
FORWARDING_RULE = """
resource "google_compute_global_forwarding_rule" "results" {
  name                  = "closet-results-cdn"
  target_proxy          = "projects/p/global/targetHttpsProxies/closet"
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
"""


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory):
    return workspace(tmp_path_factory.getbasetemp(), name="mistakes")


def errors_of(copy, plan: bool = False) -> list[dict]:
    """validate's errors; with plan=True and none, the plan's (as text: its file and message)."""
    from closet_pipeline.terraform_check.check import TerraformFailed

    validation = copy.validate()
    errors = [d for d in validation["diagnostics"] if d["severity"] == "error"]
    if errors or not plan:
        return errors
    try:
        # With app origins, so that the CORS blocks exist.
        copy.plan("-var=project_id=closet-check", '-var=app_origins=["https://closet.example.com"]', name="mistake")
    except TerraformFailed as failed:
        text = " ".join(failed.stderr.split())
        return [{"summary": text, "range": {"filename": f}} for f in re.findall(r"on (\S+) line \d+", text)]
    return []


def test_the_unchanged_copy_validates(copy):
    assert errors_of(copy) == []


@pytest.mark.parametrize(("name", "file", "old", "new", "mentions"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_an_injected_mistake_is_caught(copy, name, file, old, new, mentions):
    path: Path = copy.tf_dir / file
    original = path.read_text(encoding="utf-8")
    assert original.count(old) == 1, f"{file}: the text to break is not there once (did the file change?)"
    path.write_text(original.replace(old, new), encoding="utf-8")
    try:
        errors = errors_of(copy, plan=True)
    finally:
        path.write_text(original, encoding="utf-8")
    assert errors, f"{name}: validate and plan passed"
    assert any(
        mentions in f"{e['summary']} {e.get('detail', '')} {e.get('snippet', {}).get('code', '')}"
        and e.get("range", {}).get("filename", "").endswith(file)
        for e in errors
    ), f"{name}: no error about {mentions} in {file}: {errors}"


def test_target_proxy_on_a_forwarding_rule_is_caught(copy):
    path = copy.tf_dir / "cdn.tf"
    path.write_text(FORWARDING_RULE, encoding="utf-8")
    try:
        errors = errors_of(copy)
    finally:
        path.unlink()
    assert any(
        "target_proxy" in e["summary"] + e.get("detail", "") + e.get("snippet", {}).get("code", "") for e in errors
    ), errors
