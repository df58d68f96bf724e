# One Cloud Scheduler job: an authenticated HTTP call to a function (what the local
# scheduler does, local/scheduler.py) or a Pub/Sub publish.

resource "google_cloud_scheduler_job" "this" {
  project          = var.project_id
  region           = var.region
  name             = var.name
  description      = var.description
  schedule         = var.schedule
  time_zone        = var.time_zone
  paused           = var.paused
  attempt_deadline = "${var.attempt_deadline_s}s"

  retry_config {
    retry_count          = var.retry_count
    min_backoff_duration = "5s"
    max_backoff_duration = "60s"
    max_doublings        = 3
  }

  dynamic "http_target" {
    for_each = var.http_target == null ? [] : [var.http_target]
    content {
      http_method = "POST"
      uri         = http_target.value.uri
      body        = base64encode(http_target.value.body)
      headers = {
        "Content-Type" = "application/json"
      }

      oidc_token {
        service_account_email = http_target.value.service_account_email
        audience              = http_target.value.audience
      }
    }
  }

  dynamic "pubsub_target" {
    for_each = var.pubsub_target == null ? [] : [var.pubsub_target]
    content {
      topic_name = pubsub_target.value.topic_id
      data       = base64encode(pubsub_target.value.data)
      attributes = pubsub_target.value.attributes
    }
  }

  lifecycle {
    precondition {
      condition     = (var.http_target == null) != (var.pubsub_target == null)
      error_message = "Set exactly one of http_target and pubsub_target."
    }
  }
}
