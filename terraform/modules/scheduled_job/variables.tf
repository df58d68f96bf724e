variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Scheduler job."
  type        = string
}

variable "name" {
  description = "Job id (schedules/*.yaml `name`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,500}$", var.name))
    error_message = "Job names use letters, digits, '-' and '_' only."
  }
}

variable "description" {
  description = "What the job does."
  type        = string
  default     = ""
}

variable "schedule" {
  description = "Unix cron expression (5 fields), evaluated in time_zone."
  type        = string

  validation {
    condition     = length(split(" ", trimspace(var.schedule))) == 5
    error_message = "schedule must be a 5-field unix cron expression."
  }
}

variable "time_zone" {
  description = "IANA time zone of the cron expression."
  type        = string
  default     = "Asia/Kolkata"
}

variable "paused" {
  description = "Create the job paused."
  type        = bool
  default     = false
}

variable "attempt_deadline_s" {
  description = "How long one attempt may take before Cloud Scheduler counts it failed (HTTP targets: 15-1800 s)."
  type        = number
  default     = 60

  validation {
    condition     = var.attempt_deadline_s >= 15 && var.attempt_deadline_s <= 1800
    error_message = "attempt_deadline_s must be between 15 and 1800."
  }
}

variable "retry_count" {
  description = "Retries of a failed attempt (0-5)."
  type        = number
  default     = 0

  validation {
    condition     = var.retry_count >= 0 && var.retry_count <= 5
    error_message = "retry_count must be between 0 and 5."
  }
}

variable "http_target" {
  description = "POST body to uri with a Google-signed OIDC token (audience, service account). Set exactly one of http_target and pubsub_target."
  type = object({
    uri                   = string
    audience              = string
    service_account_email = string
    body                  = optional(string, "{}")
  })
  default = null

  validation {
    condition     = var.http_target == null || startswith(try(var.http_target.uri, ""), "https://")
    error_message = "http_target.uri must be an https URL."
  }
}

variable "pubsub_target" {
  description = "Publish data (and attributes) to topic_id instead of calling a function directly."
  type = object({
    topic_id   = string
    data       = optional(string, "{}")
    attributes = optional(map(string), {})
  })
  default = null
}
