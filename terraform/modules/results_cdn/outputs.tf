output "ip_address" {
  description = "IP address of the CDN endpoint (point the domain's A record here)."
  value       = google_compute_global_address.results.address
}

output "base_url" {
  description = "Base URL of results through the CDN: https://<domain>/<object path>, signed with the CDN key."
  value       = "https://${var.domain}"
}

output "signed_url_key_name" {
  description = "Name of the CDN signed-URL key."
  value       = google_compute_backend_bucket_signed_url_key.results.name
}

output "signed_url_key_secret" {
  description = "Secret Manager secret holding the CDN key name and value (JSON)."
  value       = google_secret_manager_secret.url_signing_key.id
}
