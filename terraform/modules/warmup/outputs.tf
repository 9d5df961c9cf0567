output "job_names" {
  description = "Warm-up job of each stage, keyed by stage name (empty when disabled)."
  value       = { for stage, job in google_cloud_scheduler_job.warmup : stage => job.name }
}
