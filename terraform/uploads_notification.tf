# A photo finalized under uploads/ in the uploads bucket becomes a message on the entry stage's
# topic (JSON_API_V1: the object resource as JSON; bucketId/objectId/eventType as attributes).
# The message carries the object path only, never the image.

# (The Cloud Storage service agent is read, and so created, in service_agents.tf.)

# The service agent publishes the notifications: publisher on that one topic, not the project.
resource "google_pubsub_topic_iam_member" "gcs_agent_publishes_uploads" {
  topic  = module.messaging.stage_topic_ids[local.entry_stage]
  role   = "roles/pubsub.publisher"
  member = time_sleep.gcs_agent_ready.triggers["member"] # after the wait that follows its creation
}

resource "google_storage_notification" "uploads" {
  bucket             = module.storage.bucket_names["uploads"]
  topic              = module.messaging.stage_topic_ids[local.entry_stage]
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = local.topology.uploadPrefix

  # Creating the notification fails unless the agent can already publish to the topic.
  depends_on = [google_pubsub_topic_iam_member.gcs_agent_publishes_uploads]
}
