variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "name" {
  description = "Topic name, exactly as the code publishes to it (a contract's topic, e.g. chain.snapshot)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$", var.name)) && !startswith(var.name, "goog")
    error_message = "name must be a Pub/Sub topic id: 3-255 characters, starting with a letter, not with 'goog'."
  }
}

variable "labels" {
  description = "Labels of the topic and its subscriptions."
  type        = map(string)
  default     = {}
}

variable "message_retention" {
  description = "How long the topic keeps published messages (lets a subscription be replayed with seek)."
  type        = string
  default     = "604800s" # 7 days

  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention))
    error_message = "message_retention is a duration in seconds, e.g. 604800s."
  }
}

variable "dead_letter_topic_id" {
  description = "Id (projects/<p>/topics/<t>) of the dead-letter topic every push subscription forwards undeliverable messages to."
  type        = string
}

variable "retry_policy" {
  description = "shared/topology.py RetryPolicy: exponential backoff bounds (seconds) and the delivery attempts before dead-lettering."
  type = object({
    minimum_backoff_s     = number
    maximum_backoff_s     = number
    max_delivery_attempts = number
  })

  validation {
    condition = (
      var.retry_policy.minimum_backoff_s >= 0 && var.retry_policy.minimum_backoff_s <= 600 &&
      var.retry_policy.maximum_backoff_s >= var.retry_policy.minimum_backoff_s && var.retry_policy.maximum_backoff_s <= 600
    )
    error_message = "Backoffs must satisfy 0 <= minimum <= maximum <= 600 seconds (Pub/Sub's limits)."
  }

  validation {
    condition     = var.retry_policy.max_delivery_attempts >= 5 && var.retry_policy.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "push_subscriptions" {
  description = "Push subscriptions on this topic, by subscription id (<topic>--<function>): the endpoint, the OIDC audience the function expects, and the ack deadline (the function's timeout, clamped to 10-600 s)."
  type = map(object({
    push_endpoint        = string
    audience             = string
    ack_deadline_seconds = number
  }))
  default = {}

  validation {
    condition     = alltrue([for s in values(var.push_subscriptions) : startswith(s.push_endpoint, "https://")])
    error_message = "push endpoints must be https URLs."
  }

  validation {
    condition     = alltrue([for s in values(var.push_subscriptions) : s.ack_deadline_seconds >= 10 && s.ack_deadline_seconds <= 600])
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "push_service_account_email" {
  description = "Service account whose OIDC token Pub/Sub attaches to every push (the functions' allowed invoker)."
  type        = string
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent (service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com). It forwards dead letters, so it must be able to ack this topic's subscriptions."
  type        = string
}
