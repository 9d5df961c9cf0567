variable "pubsub_agent_member" {
  description = "The Pub/Sub service agent as an IAM member (serviceAccount:service-N@gcp-sa-pubsub...), taken from the resource that creates it (root service_agents.tf), never built from the project number."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the subscription and service account names (topics are named exactly as shared/topology.json says)."
  type        = string
}

variable "stage_topics" {
  description = "Topic id of each stage, keyed by stage name (from shared/topology.json)."
  type        = map(string)
}

variable "progress_topic" {
  description = "Topic id of progress events (topology.topics.progress)."
  type        = string
}

variable "results_topic" {
  description = "Topic id of result documents (topology.topics.results)."
  type        = string
}

variable "dead_letter_topic" {
  description = "Topic id that receives messages a stage failed max_delivery_attempts times (topology.topics.deadLetter)."
  type        = string
}

variable "stage_endpoints" {
  description = "HTTPS URL of each stage's function, keyed by stage name: the push endpoint and OIDC audience of its subscription."
  type        = map(string)
}

variable "stage_timeouts" {
  description = "Timeout in seconds of each stage's function, keyed by stage name; the ack deadline is never shorter (capped at 600)."
  type        = map(number)
}

variable "failure_handler_endpoint" {
  description = "HTTPS URL of the failure handler function, pushed from the dead-letter topic."
  type        = string
}

variable "failure_handler_timeout" {
  description = "Timeout in seconds of the failure handler function."
  type        = number
}

variable "max_delivery_attempts" {
  description = "Deliveries of a message to a stage before Pub/Sub dead-letters it."
  type        = number

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be from 5 to 100."
  }
}

variable "ack_margin_seconds" {
  description = "Seconds a push's ack deadline adds to its function's timeout (shared/topology.json delivery.ackMarginSeconds)."
  type        = number
}

variable "minimum_backoff_seconds" {
  description = "First redelivery delay of the exponential backoff, in seconds."
  type        = number
}

variable "maximum_backoff_seconds" {
  description = "Largest redelivery delay of the exponential backoff, in seconds (at most 600)."
  type        = number
}

variable "create_app_subscriptions" {
  description = "Create pull subscriptions on the results and progress topics for the app backend."
  type        = bool
  default     = true
}

variable "app_subscriber_members" {
  description = "IAM members that may pull the app subscriptions (roles/pubsub.subscriber on each, not on the project)."
  type        = list(string)
  default     = []
}

variable "subscribers" {
  description = "Functions pushed from a subscription of their own on a shared topic (the webhook on results): topic and dead-letter topic names, endpoint, timeout, delivery attempts, backoff."
  type = map(object({
    topic                   = string
    dead_letter_topic       = string
    endpoint                = string
    timeout_seconds         = number
    max_delivery_attempts   = number
    minimum_backoff_seconds = number
    maximum_backoff_seconds = number
  }))
  default = {}
}
