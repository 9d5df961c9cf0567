output "bucket_names" {
  description = "Bucket name of each area, keyed by area name."
  value       = { for area, bucket in google_storage_bucket.area : area => bucket.name }
}

output "bucket_urls" {
  description = "gs:// URL of each area's bucket, keyed by area name."
  value       = { for area, bucket in google_storage_bucket.area : area => bucket.url }
}
