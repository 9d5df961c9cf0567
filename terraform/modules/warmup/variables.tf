variable "name_prefix" {
  description = "Prefix of the job names."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Scheduler jobs."
  type        = string
}

variable "interval_minutes" {
  description = "Every how many minutes each stage is pinged (cron \"*/N * * * *\"); 0 creates no job."
  type        = number

  validation {
    condition     = var.interval_minutes >= 0 && var.interval_minutes <= 59 && floor(var.interval_minutes) == var.interval_minutes
    error_message = "interval_minutes must be a whole number from 0 to 59."
  }
}

variable "topic_ids" {
  description = "Full id of each stage's topic, keyed by stage name: one job per entry."
  type        = map(string)
}

variable "time_zone" {
  description = "Time zone of the schedule."
  type        = string
  default     = "Etc/UTC"
}
