output "bucket_names" {
  description = "Bucket of each area (uploads, work, results, cache), keyed by area, plus the function source bucket."
  value       = merge(module.storage.bucket_names, { function_source = google_storage_bucket.function_source.name })
}

output "topic_names" {
  description = "Topic of each stage (keyed by stage name) and the progress, results and deadLetter topics."
  value       = module.messaging.topic_names
}

output "upload_url_function_url" {
  description = "URL of the upload-URL function; the app backend calls it with an ID token of one of app_invoker_members."
  value       = module.functions["upload_url"].uri
}

output "function_urls" {
  description = "URL of every function, keyed by function name."
  value       = { for name, function in module.functions : name => function.uri }
}

output "function_service_accounts" {
  description = "Runtime service account of every function, keyed by function name."
  value       = { for name, account in google_service_account.function : name => account.email }
}

output "app_subscriptions" {
  description = "Pull subscriptions the app backend reads result documents and progress events from, keyed by results / progress."
  value       = module.messaging.app_subscription_names
}

output "secret_ids" {
  description = "Secret Manager secrets to add versions to (README: Adding secret values), keyed by secret."
  value       = { for name, secret in google_secret_manager_secret.api : name => secret.secret_id }
}

output "warmup_jobs" {
  description = "Cloud Scheduler warm-up job of each stage (empty when warmup_interval_minutes is 0)."
  value       = module.warmup.job_names
}

output "build" {
  description = "The functions' build identity and the Artifact Registry repository their images go to."
  value = {
    service_account = google_service_account.build.email
    repository      = google_artifact_registry_repository.functions.id
  }
}

output "alert_policies" {
  description = "Alert policy names (projects/P/alertPolicies/ID), keyed by what they watch."
  value       = { for key, policy in google_monitoring_alert_policy.pipeline : key => policy.name }
}
