# Identities and grants. Every function runs as its own service account, and every role it holds
# is derived from its entry in shared/topology.json (reads / writes / publishes), granted on the
# one bucket, topic, secret or service it concerns. Nothing is granted at project level, nothing
# to allUsers or allAuthenticatedUsers. One for_each per kind of grant:
#
#   function_reads           roles/storage.objectViewer            bucket of each area it only reads
#   function_writes          roles/storage.objectUser              bucket of each area a pipeline function writes
#   function_signs_uploads   roles/storage.objectCreator           uploads bucket, for the HTTP function that signs upload URLs
#   function_publishes       roles/pubsub.publisher                each topic it publishes to
#   function_secrets         roles/secretmanager.secretAccessor    each secret mounted in it
#   function_signs_as_itself roles/iam.serviceAccountTokenCreator  its own account, for V4 signed URLs
#   pusher_invokes           roles/run.invoker                     the Cloud Run service of each pushed function
#   app_invokes              roles/run.invoker                     the Cloud Run service of each HTTP function
#   app_reads_secrets        roles/secretmanager.secretAccessor    the generated secrets the app presents (upload-url-secret)
#
# The Pub/Sub service agent's grants (dead-lettering, OIDC tokens) live in modules/messaging, the
# Cloud Storage service agent's in uploads_notification.tf.

resource "google_service_account" "function" {
  for_each = local.functions

  account_id   = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  display_name = "Closet pipeline: ${each.key}"
  description  = "Runtime identity of the ${each.key} function; its roles follow shared/topology.json."

  depends_on = [time_sleep.apis_ready]
}

locals {
  function_members = { for name, account in google_service_account.function : name => "serviceAccount:${account.email}" }

  # (generated secret, app member) pairs: the app backend reads the bearer secret it must present.
  app_secret_reads = {
    for pair in setproduct(keys(local.generated_secrets), var.app_invoker_members) : "${pair[0]}/${pair[1]}" => {
      secret = pair[0]
      member = pair[1]
    }
  }

  # (HTTP function, app member) pairs allowed to call it.
  app_invocations = {
    for pair in setproduct(keys(local.http_functions), var.app_invoker_members) : "${pair[0]}/${pair[1]}" => {
      function = pair[0]
      member   = pair[1]
    }
  }
}

# Read-only access to the bucket of each area the function reads (and does not write).
resource "google_storage_bucket_iam_member" "function_reads" {
  for_each = local.bucket_reads

  bucket = module.storage.bucket_names[each.value.area]
  role   = "roles/storage.objectViewer"
  member = local.function_members[each.value.function]
}

# Object read/create/overwrite/delete on the bucket of each area a pipeline function writes.
resource "google_storage_bucket_iam_member" "function_writes" {
  for_each = local.bucket_writes

  bucket = module.storage.bucket_names[each.value.area]
  role   = "roles/storage.objectUser"
  member = local.function_members[each.value.function]
}

# Create-only on the uploads bucket for the function that signs upload URLs: no read, no overwrite.
resource "google_storage_bucket_iam_member" "function_signs_uploads" {
  for_each = local.bucket_signed_uploads

  bucket = module.storage.bucket_names[each.value.area]
  role   = "roles/storage.objectCreator"
  member = local.function_members[each.value.function]
}

# Publish to each topic the function sends messages to (the next stage, progress, results).
resource "google_pubsub_topic_iam_member" "function_publishes" {
  for_each = local.topic_publishes

  topic  = module.messaging.topic_ids[each.value.topic]
  role   = "roles/pubsub.publisher"
  member = local.function_members[each.value.function]
}

# Read the secrets mounted in the function, each on its own secret (secrets.tf).
resource "google_secret_manager_secret_iam_member" "function_secrets" {
  for_each = { for mount in local.secret_mounts : mount.key => mount }

  secret_id = google_secret_manager_secret.api[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.function_members[each.value.function]
}

# signBlob as itself (not as any other account) to make V4 signed URLs on Cloud Functions, which
# has no private key file.
resource "google_service_account_iam_member" "function_signs_as_itself" {
  for_each = local.url_signers

  service_account_id = google_service_account.function[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.function_members[each.key]
}

# Pub/Sub pushes (with an OIDC token of the pusher account) to the stages and the failure handler:
# invoker on those Cloud Run services only.
resource "google_cloud_run_v2_service_iam_member" "pusher_invokes" {
  for_each = local.pushed_functions

  project  = var.project_id
  location = var.region
  name     = module.functions[each.key].service_name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${module.messaging.pusher_email}"
}

# The app backend's identities call the HTTP functions (upload_url); never allUsers.
resource "google_cloud_run_v2_service_iam_member" "app_invokes" {
  for_each = local.app_invocations

  project  = var.project_id
  location = var.region
  name     = module.functions[each.value.function].service_name
  role     = "roles/run.invoker"
  member   = each.value.member
}

# The app backend's identities read the secrets Terraform generated for them to present (the
# upload-URL bearer secret), each on its own secret.
resource "google_secret_manager_secret_iam_member" "app_reads_secrets" {
  for_each = local.app_secret_reads

  secret_id = google_secret_manager_secret.api[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
