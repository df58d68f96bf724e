# Inputs of the root module. Everything the code decides (functions, topics, push
# subscriptions, retry policy, schedules, which secret goes to which function) lives in
# locals.tf and schedules/*.yaml, not here: variables are what differs between projects.

# --- project -------------------------------------------------------------------------

variable "project_id" {
  description = "GCP project id to deploy into (it must exist and have billing enabled)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project id: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of every regional resource (functions, Cloud SQL, buckets, scheduler). Mumbai by default: the exchanges' and brokers' APIs are in India."
  type        = string
  default     = "asia-south1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like asia-south1 or europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of resource names (functions become <prefix>-chain-poll, ...). Topic and subscription names are the code's own (chain.snapshot, ...), so one project holds one deployment."
  type        = string
  default     = "qs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.name_prefix))
    error_message = "name_prefix must be 2-8 lowercase letters or digits, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels put on every resource that takes labels."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "Label keys must start with a lowercase letter; keys and values use lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}

variable "enable_apis" {
  description = "Enable the project's required APIs from terraform. Set false when an organisation pipeline enables APIs for you."
  type        = bool
  default     = true
}

# --- functions -----------------------------------------------------------------------

variable "bundle_dir" {
  description = "Directory holding the per-function zips built by `make bundle`, relative to this module (terraform/)."
  type        = string
  default     = "../build/bundles"

  validation {
    condition     = length(trimspace(var.bundle_dir)) > 0
    error_message = "bundle_dir must not be empty."
  }
}

variable "function_overrides" {
  description = "Per-function sizing overrides on top of shared/topology.py's values, keyed by function name (chain_poll, decide, ...): min_instances (keep warm instances), max_instances, memory_mb, timeout_s."
  type = map(object({
    min_instances = optional(number)
    max_instances = optional(number)
    memory_mb     = optional(number)
    timeout_s     = optional(number)
  }))
  default = {}

  validation {
    condition = alltrue([
      for k in keys(var.function_overrides) : contains(["chain_poll", "news_ingest", "decide", "risk_check", "retrain", "notify"], k)
    ])
    error_message = "function_overrides keys must be function names: chain_poll, news_ingest, decide, risk_check, retrain, notify."
  }

  validation {
    condition = alltrue([
      for o in values(var.function_overrides) : (
        (o.min_instances == null || try(o.min_instances >= 0 && o.min_instances <= 10, false)) &&
        (o.max_instances == null || try(o.max_instances >= 1 && o.max_instances <= 100, false)) &&
        (o.memory_mb == null || contains([256, 512, 1024, 2048, 4096, 8192], coalesce(o.memory_mb, 0))) &&
        (o.timeout_s == null || try(o.timeout_s >= 1 && o.timeout_s <= 3600, false))
      )
    ])
    error_message = "Overrides: min_instances 0-10, max_instances 1-100, memory_mb one of 256/512/1024/2048/4096/8192, timeout_s 1-3600."
  }
}

variable "log_level" {
  description = "QS_LOG_LEVEL of every function."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "chain_source" {
  description = "QS_CHAIN_SOURCE of chain_poll: nse (website JSON) or upstox (API v2; then populate the upstox-access-token secret daily). simulator is for demos only."
  type        = string
  default     = "nse"

  validation {
    condition     = contains(["nse", "upstox", "simulator"], var.chain_source)
    error_message = "chain_source must be nse, upstox or simulator (replay:<dir> is local only)."
  }
}

variable "extra_invokers" {
  description = "Extra service-account emails the functions accept as callers of events and schedules (QS_ALLOWED_INVOKERS), e.g. an operator's automation account. Pub/Sub push and Cloud Scheduler identities are always included."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.extra_invokers : can(regex("^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$", e))])
    error_message = "extra_invokers must be email addresses."
  }
}

variable "api_invokers" {
  description = "IAM members (user:, group:, serviceAccount:) allowed to call a function's HTTP API, keyed by function name: decide (POST /decision), risk_check (POST /check, /killswitch), retrain (POST /train, /rollback). Each service still authorises the caller per tenant."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.api_invokers) : contains(["decide", "risk_check", "retrain"], k)])
    error_message = "api_invokers keys must be decide, risk_check or retrain (the functions with an HTTP API)."
  }

  validation {
    condition = alltrue(flatten([
      for members in values(var.api_invokers) : [for m in members : can(regex("^(user|group|serviceAccount|domain):", m))]
    ]))
    error_message = "api_invokers members must start with user:, group:, serviceAccount: or domain: (never allUsers)."
  }
}

variable "disabled_secrets" {
  description = "Secrets created but bound to no function, because the feature is not used (e.g. upstox-access-token when chain_source is nse, ses-* when email goes through SMTP). A bound secret must have a version before `make deploy`."
  type        = set(string)
  default     = []

  validation {
    condition = alltrue([
      for s in var.disabled_secrets : contains(["upstox-access-token", "telegram-bot-token", "smtp-password", "webhook-signing-key", "ses-access-key-id", "ses-secret-access-key"], s)
    ])
    error_message = "disabled_secrets may only name operator-populated secrets: upstox-access-token, telegram-bot-token, smtp-password, webhook-signing-key, ses-access-key-id, ses-secret-access-key."
  }
}

# --- notify --------------------------------------------------------------------------

variable "notify" {
  description = "notify's plain settings (its secrets live in Secret Manager): email backend and SMTP server, sender, the operator's address for notify.dead, the SES region."
  type = object({
    email_backend  = optional(string, "smtp")
    smtp_host      = optional(string, "")
    smtp_port      = optional(number, 587)
    smtp_security  = optional(string, "starttls")
    smtp_username  = optional(string, "")
    email_sender   = optional(string, "")
    operator_email = optional(string, "")
    ses_region     = optional(string, "ap-south-1")
  })
  default = {}

  validation {
    condition     = contains(["smtp", "ses"], var.notify.email_backend)
    error_message = "notify.email_backend must be smtp or ses."
  }

  validation {
    condition     = contains(["starttls", "ssl", "none"], var.notify.smtp_security)
    error_message = "notify.smtp_security must be starttls, ssl or none."
  }

  validation {
    condition     = var.notify.smtp_port >= 1 && var.notify.smtp_port <= 65535
    error_message = "notify.smtp_port must be a TCP port."
  }

  validation {
    condition = alltrue([
      for e in [var.notify.email_sender, var.notify.operator_email] : e == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))
    ])
    error_message = "notify.email_sender and notify.operator_email must be empty or email addresses."
  }
}

# --- schedules -----------------------------------------------------------------------

variable "paused_schedules" {
  description = "Cloud Scheduler job names (from schedules/*.yaml) to create paused, e.g. while a provider is down."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.paused_schedules : can(regex("^[a-zA-Z0-9_-]{1,500}$", s))])
    error_message = "paused_schedules must hold job names (letters, digits, '-' and '_')."
  }
}

# --- network -------------------------------------------------------------------------

variable "connector_cidr" {
  description = "A free /28 for the Serverless VPC Access connector's subnet (the functions' path to Cloud SQL's private IP)."
  type        = string
  default     = "10.8.0.0/28"

  validation {
    condition     = can(cidrhost(var.connector_cidr, 0)) && endswith(var.connector_cidr, "/28")
    error_message = "connector_cidr must be an IPv4 /28, e.g. 10.8.0.0/28."
  }
}

variable "ops_cidr" {
  description = "A free /28 for the operations subnet, where a temporary VM runs the schema migrations (the database has no public address)."
  type        = string
  default     = "10.8.1.0/28"

  validation {
    condition     = can(cidrhost(var.ops_cidr, 0)) && endswith(var.ops_cidr, "/28")
    error_message = "ops_cidr must be an IPv4 /28, e.g. 10.8.1.0/28."
  }
}

variable "private_service_prefix_length" {
  description = "Prefix length of the range reserved for private services access (Cloud SQL's private IP)."
  type        = number
  default     = 20

  validation {
    condition     = var.private_service_prefix_length >= 16 && var.private_service_prefix_length <= 24
    error_message = "private_service_prefix_length must be between 16 and 24."
  }
}

# --- database ------------------------------------------------------------------------

variable "db_tier" {
  description = "Cloud SQL machine tier (Enterprise edition), e.g. db-custom-1-3840 or db-custom-2-7680."
  type        = string
  default     = "db-custom-1-3840"

  validation {
    condition     = can(regex("^db-(custom-[0-9]+-[0-9]+|f1-micro|g1-small|perf-optimized-N-[0-9]+)$", var.db_tier))
    error_message = "db_tier must be a Cloud SQL tier such as db-custom-2-7680."
  }
}

variable "db_availability_type" {
  description = "ZONAL (one zone) or REGIONAL (high availability, a standby in a second zone)."
  type        = string
  default     = "REGIONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.db_availability_type)
    error_message = "db_availability_type must be ZONAL or REGIONAL."
  }
}

variable "db_disk_size_gb" {
  description = "Initial SSD size in GB (it grows automatically)."
  type        = number
  default     = 20

  validation {
    condition     = var.db_disk_size_gb >= 10 && var.db_disk_size_gb <= 65536
    error_message = "db_disk_size_gb must be between 10 and 65536."
  }
}

variable "db_backup_retention_count" {
  description = "How many daily backups Cloud SQL keeps."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_count >= 1 && var.db_backup_retention_count <= 365
    error_message = "db_backup_retention_count must be between 1 and 365."
  }
}

variable "db_log_retention_days" {
  description = "Days of write-ahead log kept for point-in-time recovery."
  type        = number
  default     = 7

  validation {
    condition     = var.db_log_retention_days >= 1 && var.db_log_retention_days <= 7
    error_message = "db_log_retention_days must be between 1 and 7."
  }
}

variable "db_deletion_protection" {
  description = "Refuse to delete the Cloud SQL instance (terraform and API). Turn off only to tear a test project down."
  type        = bool
  default     = true
}

variable "enable_mlflow_tracking" {
  description = "Give retrain an MLflow backend store (database mlflow on the same instance). MLflow reaches it over the private network without TLS (pg8000 in a URL cannot carry an SSL context), so this relaxes the instance's ssl_mode to ALLOW_UNENCRYPTED_AND_ENCRYPTED; the model registry works without it."
  type        = bool
  default     = false
}

# --- storage -------------------------------------------------------------------------

variable "raw_snapshot_retention_days" {
  description = "Days a raw option-chain payload is kept in the raw-snapshots bucket (moved to Coldline after 30 days)."
  type        = number
  default     = 365

  validation {
    condition     = var.raw_snapshot_retention_days >= 31 && var.raw_snapshot_retention_days <= 3650
    error_message = "raw_snapshot_retention_days must be between 31 and 3650."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object version is kept (all buckets are versioned)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && var.noncurrent_version_retention_days <= 365
    error_message = "noncurrent_version_retention_days must be between 1 and 365."
  }
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets. Keep false in production."
  type        = bool
  default     = false
}

# --- alerting ------------------------------------------------------------------------

variable "alert_emails" {
  description = "Addresses that receive the alert policies' notifications (an email channel each)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alert_emails must be email addresses."
  }
}

variable "alert_notification_channels" {
  description = "Existing Cloud Monitoring notification channel ids (projects/<p>/notificationChannels/<id>) to notify as well, e.g. PagerDuty or Slack."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "alert_notification_channels must be full channel ids: projects/<project>/notificationChannels/<id>."
  }
}

variable "function_error_ratio" {
  description = "Alert when a function's share of 5xx responses over 10 minutes exceeds this (0-1). 503 is how a function asks Pub/Sub to retry, so a short burst is normal."
  type        = number
  default     = 0.05

  validation {
    condition     = var.function_error_ratio > 0 && var.function_error_ratio < 1
    error_message = "function_error_ratio must be between 0 and 1 (exclusive)."
  }
}

variable "stale_snapshot_runs" {
  description = "Alert when chain_poll records this many stale payloads (the provider returned a snapshot time already stored) for one job within 5 minutes."
  type        = number
  default     = 3

  validation {
    condition     = var.stale_snapshot_runs >= 1 && var.stale_snapshot_runs <= 60
    error_message = "stale_snapshot_runs must be between 1 and 60."
  }
}
