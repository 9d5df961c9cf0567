output "name" {
  description = "Name of the function."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "HTTPS URL of the function (push endpoint / what the app calls)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_name" {
  description = "The underlying Cloud Run service, where roles/run.invoker is granted."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "source_object" {
  description = "The uploaded source zip (\"<name>-<md5>.zip\")."
  value       = google_storage_bucket_object.source.name
}
