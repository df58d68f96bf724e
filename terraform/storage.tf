# Buckets: uniform access, public access prevention enforced, versioning, lifecycle
# rules, access logs. Names are prefixed with the project id (bucket names are global).
# The buckets the code uses share one shape (modules/bucket); the access-log bucket is
# apart, as it cannot log into itself.

locals {
  bucket_prefix = "${var.project_id}-${local.prefix}"

  # key (functions.tf, locals.tf's `buckets` grants) => the bucket's name suffix, its
  # age-based lifecycle rules (before the noncurrent-version rule every bucket has), how
  # long replaced object versions stay, and whether destroy may empty it.
  buckets_spec = {
    # chain_poll's raw payloads: gzip JSON at raw/<source>/<symbol>/<sha256>.json.gz.
    raw = {
      name_suffix = "raw-snapshots"
      lifecycle_rules = [
        { age = 30, action = "SetStorageClass", storage_class = "COLDLINE" },
        { age = var.raw_snapshot_retention_days, action = "Delete" },
      ]
      noncurrent_days = var.noncurrent_version_retention_days
      force_destroy   = var.force_destroy_buckets
    }

    # The model registry's artifacts (models/<type>/<scope>/v<NNNN>-<sha>.bin) and MLflow's.
    # Artifacts are immutable and referenced by the registry: only old versions expire.
    models = {
      name_suffix     = "model-artifacts"
      lifecycle_rules = []
      noncurrent_days = var.noncurrent_version_retention_days
      force_destroy   = var.force_destroy_buckets
    }

    # retrain's daily index history (daily/<SYMBOL>.csv), uploaded by operators.
    history = {
      name_suffix     = "index-history"
      lifecycle_rules = []
      noncurrent_days = var.noncurrent_version_retention_days
      force_destroy   = var.force_destroy_buckets
    }

    # The functions' source bundles (one object per content hash). A bundle stays while
    # terraform references it (a deleted one would be re-uploaded on the next apply);
    # replaced versions of an object go after a week.
    sources = {
      name_suffix     = "function-sources"
      lifecycle_rules = []
      noncurrent_days = 7
      force_destroy   = true # only build outputs: `make bundle` recreates them
    }
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
      days_since_noncurrent_time = var.noncurrent_version_retention_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

module "bucket" {
  source   = "./modules/bucket"
  for_each = local.buckets_spec

  name                              = "${local.bucket_prefix}-${each.value.name_suffix}"
  location                          = var.region
  labels                            = local.labels
  force_destroy                     = each.value.force_destroy
  log_bucket                        = google_storage_bucket.access_logs.name
  lifecycle_rules                   = each.value.lifecycle_rules
  noncurrent_version_retention_days = each.value.noncurrent_days
}

# The buckets were root resources before modules/bucket: their state moves, nothing is
# recreated.
moved {
  from = google_storage_bucket.raw
  to   = module.bucket["raw"].google_storage_bucket.this
}

moved {
  from = google_storage_bucket.models
  to   = module.bucket["models"].google_storage_bucket.this
}

moved {
  from = google_storage_bucket.history
  to   = module.bucket["history"].google_storage_bucket.this
}

moved {
  from = google_storage_bucket.sources
  to   = module.bucket["sources"].google_storage_bucket.this
}
