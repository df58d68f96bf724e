variable "name" {
  description = "The bucket's globally unique name (<project id>-<prefix>-<suffix>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be 3-63 lowercase letters, digits, hyphens or underscores, starting and ending with a letter or digit."
  }
}

variable "location" {
  description = "Region of the bucket (the deployment's region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.location))
    error_message = "location must be a region, e.g. asia-south1 or europe-west1."
  }
}

variable "labels" {
  description = "Labels of the bucket."
  type        = map(string)
  default     = {}
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket while it still holds objects."
  type        = bool
  default     = false
}

variable "log_bucket" {
  description = "Name of the bucket that receives this bucket's access logs (never the bucket itself)."
  type        = string

  validation {
    condition     = length(var.log_bucket) >= 3
    error_message = "log_bucket must name the access-log bucket."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object version is kept before it is deleted (the bucket is versioned)."
  type        = number

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && var.noncurrent_version_retention_days <= 365
    error_message = "noncurrent_version_retention_days must be between 1 and 365."
  }
}

variable "lifecycle_rules" {
  description = "Age-based rules applied before the noncurrent-version rule, in order: age in days since creation, action Delete or SetStorageClass (with storage_class)."
  type = list(object({
    age           = number
    action        = string
    storage_class = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for r in var.lifecycle_rules : r.age >= 1])
    error_message = "A lifecycle rule's age must be at least 1 day."
  }

  validation {
    condition = alltrue([for r in var.lifecycle_rules : (
      r.action == "Delete" ? r.storage_class == null :
      r.action == "SetStorageClass" && contains(["NEARLINE", "COLDLINE", "ARCHIVE"], coalesce(r.storage_class, "none"))
    )])
    error_message = "A lifecycle rule's action is Delete (without storage_class) or SetStorageClass with storage_class NEARLINE, COLDLINE or ARCHIVE."
  }
}
