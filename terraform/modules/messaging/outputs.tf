output "topic_ids" {
  description = "Full id (projects/P/topics/T) of every topic, keyed by topic name."
  value = merge(
    { for stage, topic in var.stage_topics : topic => google_pubsub_topic.stage[stage].id },
    {
      (var.progress_topic)    = google_pubsub_topic.progress.id
      (var.results_topic)     = google_pubsub_topic.results.id
      (var.dead_letter_topic) = google_pubsub_topic.dead_letter.id
    },
    { for name, topic in google_pubsub_topic.subscriber_dead_letter : topic.name => topic.id },
  )
}

output "stage_topic_ids" {
  description = "Full id of each stage's topic, keyed by stage name."
  value       = { for stage, topic in google_pubsub_topic.stage : stage => topic.id }
}

output "topic_names" {
  description = "Topic name of each stage (keyed by stage name) and of progress, results and deadLetter."
  value = merge(
    { for stage, topic in google_pubsub_topic.stage : stage => topic.name },
    {
      progress   = google_pubsub_topic.progress.name
      results    = google_pubsub_topic.results.name
      deadLetter = google_pubsub_topic.dead_letter.name
    },
  )
}

output "stage_subscription_names" {
  description = "Push subscription of each stage, keyed by stage name."
  value       = { for stage, subscription in google_pubsub_subscription.stage : stage => subscription.name }
}

output "dead_letter_subscription_name" {
  description = "Push subscription that feeds the failure handler."
  value       = google_pubsub_subscription.dead_letter.name
}

output "app_subscription_names" {
  description = "Pull subscriptions for the app backend, keyed by results / progress (empty when not created)."
  value       = { for kind, subscription in google_pubsub_subscription.app : kind => subscription.name }
}

output "pusher_email" {
  description = "Service account whose OIDC token every push carries."
  value       = google_service_account.pusher.email
}
