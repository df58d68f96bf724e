# Buckets: uniform access, public access prevention enforced, versioning, lifecycle
# rules, access logs. Names are prefixed with the project id (bucket names are global).

locals {
  bucket_prefix = "${var.project_id}-${local.prefix}"

  noncurrent_rule = {
    days_since_noncurrent_time = var.noncurrent_version_retention_days
  }
}

# Access logs of the other buckets.
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log sink; logging it into itself would loop.
  name                        = "${local.bucket_prefix}-access-logs"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = local.noncurrent_rule.days_since_noncurrent_time
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# chain_poll's raw payloads: gzip JSON at raw/<source>/<symbol>/<sha256>.json.gz.
resource "google_storage_bucket" "raw" {
  name                        = "${local.bucket_prefix}-raw-snapshots"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets
  labels                      = local.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }

  lifecycle_rule {
    condition {
      age = var.raw_snapshot_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = local.noncurrent_rule.days_since_noncurrent_time
    }
    action {
      type = "Delete"
    }
  }
}

# The model registry's artifacts (models/<type>/<scope>/v<NNNN>-<sha>.bin) and MLflow's.
resource "google_storage_bucket" "models" {
  name                        = "${local.bucket_prefix}-model-artifacts"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets
  labels                      = local.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  # Artifacts are immutable and referenced by the registry: only old versions expire.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = local.noncurrent_rule.days_since_noncurrent_time
    }
    action {
      type = "Delete"
    }
  }
}

# retrain's daily index history (daily/<SYMBOL>.csv), uploaded by operators.
resource "google_storage_bucket" "history" {
  name                        = "${local.bucket_prefix}-index-history"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets
  labels                      = local.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = local.noncurrent_rule.days_since_noncurrent_time
    }
    action {
      type = "Delete"
    }
  }
}

# The functions' source bundles (one object per content hash).
resource "google_storage_bucket" "sources" {
  name                        = "${local.bucket_prefix}-function-sources"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only build outputs: `make bundle` recreates them
  labels                      = local.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  # A bundle stays while terraform references it (a deleted one would be re-uploaded on
  # the next apply); replaced versions of an object go after a week.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
}
