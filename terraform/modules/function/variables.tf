variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Region of the function, its source object and its Cloud Run service."
  type        = string
}

variable "name" {
  description = "The function's GCP name (also its Cloud Run service name): lowercase letters, digits and hyphens."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.name))
    error_message = "name must be 2-50 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "function_key" {
  description = "The function's name in the code (shared/topology.py), e.g. chain_poll."
  type        = string
}

variable "description" {
  description = "Human description of the function."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels of the function and its source object."
  type        = map(string)
  default     = {}
}

variable "runtime" {
  description = "Cloud Functions runtime; the code requires Python 3.11."
  type        = string
  default     = "python311"

  validation {
    condition     = var.runtime == "python311"
    error_message = "The code and its lock target Python 3.11: runtime must be python311."
  }
}

variable "entry_point" {
  description = "Name of the functions-framework target in main.py."
  type        = string
  default     = "entry"
}

variable "source_zip" {
  description = "Path of the function's bundle built by `make bundle` (main.py, the shared package, requirements.txt)."
  type        = string

  validation {
    condition     = endswith(var.source_zip, ".zip")
    error_message = "source_zip must be a .zip built by `make bundle`."
  }
}

variable "source_bucket" {
  description = "Bucket that stores the source bundles."
  type        = string
}

variable "build_sa_id" {
  description = "Id (projects/<p>/serviceAccounts/<email>) of the service account Cloud Build uses for the build."
  type        = string
}

variable "docker_repository" {
  description = "Artifact Registry repository id (projects/<p>/locations/<r>/repositories/<n>) the build pushes the image to."
  type        = string
}

variable "memory_mb" {
  description = "Memory of one instance, MiB."
  type        = number

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192], var.memory_mb)
    error_message = "memory_mb must be one of 256, 512, 1024, 2048, 4096, 8192."
  }
}

variable "timeout_s" {
  description = "Request timeout, seconds (HTTP functions: at most 3600)."
  type        = number

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 3600
    error_message = "timeout_s must be between 1 and 3600."
  }
}

variable "max_instances" {
  description = "Upper bound on instances: caps spend and the Cloud SQL connections one function can open."
  type        = number

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100
    error_message = "max_instances must be between 1 and 100."
  }
}

variable "min_instances" {
  description = "Instances kept warm (billed while idle). 0 scales to zero."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 10
    error_message = "min_instances must be between 0 and 10."
  }
}

variable "ingress" {
  description = "ALLOW_INTERNAL_ONLY admits Pub/Sub push and Cloud Scheduler of the same project only; ALLOW_ALL also admits authenticated API callers from outside."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.ingress)
    error_message = "ingress must be ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector id: the path to Cloud SQL's private IP. Only private ranges go through it."
  type        = string
}

variable "env" {
  description = "Plain environment variables."
  type        = map(string)
  default     = {}
}

variable "secret_env" {
  description = "Environment variables read from Secret Manager: variable name => secret id (latest version). The function's account may access these secrets and no others."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.secret_env), keys(var.env))) == 0
    error_message = "A variable cannot be both plain (env) and secret (secret_env)."
  }
}

variable "project_roles" {
  description = "Project-level roles of the function's service account (keep to the minimum, e.g. roles/cloudsql.client)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.project_roles : !contains(["roles/owner", "roles/editor", "roles/viewer"], r)])
    error_message = "Primitive roles (owner, editor, viewer) are never granted to a function."
  }
}

variable "publish_topics" {
  description = "Topic ids the function may publish to (roles/pubsub.publisher on each topic)."
  type        = list(string)
  default     = []
}

variable "bucket_roles" {
  description = "Bucket name => storage role of the function's account on that bucket only."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for r in values(var.bucket_roles) : contains(["roles/storage.objectViewer", "roles/storage.objectUser", "roles/storage.objectCreator"], r)])
    error_message = "bucket_roles values must be roles/storage.objectViewer, objectUser or objectCreator."
  }
}

variable "invoker_members" {
  description = "Members granted roles/run.invoker on the function's Cloud Run service (push and scheduler identities, API callers)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "A function is never public: allUsers and allAuthenticatedUsers are refused."
  }
}
