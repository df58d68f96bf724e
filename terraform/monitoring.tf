# Alert policies: function errors, dead-letter depth, stale option-chain snapshots.

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  display_name = "Quantsentinel alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.enabled]
}

locals {
  alert_channels = concat([for c in google_monitoring_notification_channel.email : c.id], var.alert_notification_channels)

  function_services = join(", ", [for id in values(local.function_ids) : "\"${id}\""])
  request_count     = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND resource.labels.service_name = one_of(${local.function_services})"
}

resource "google_monitoring_alert_policy" "function_errors" {
  display_name          = "Quantsentinel: function error rate"
  combiner              = "OR"
  notification_channels = local.alert_channels

  conditions {
    display_name = "share of 5xx responses > ${var.function_error_ratio} for 10 min"

    condition_threshold {
      filter             = "${local.request_count} AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = local.request_count
      comparison         = "COMPARISON_GT"
      threshold_value    = var.function_error_ratio
      duration           = "600s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A function answers more than ${var.function_error_ratio * 100} % of its requests with 5xx.
      503 asks Pub/Sub to retry (a transient failure: database, provider); 500 is a crash,
      logged with its stack. Read the function's logs:
      `gcloud logging read 'resource.labels.service_name="<service>" severity>=WARNING' --limit 50`.
      Messages that keep failing end in the dead-letter subscription ${local.dead_letter_subscription}.
    EOT
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "Quantsentinel: dead letters waiting"
  combiner              = "OR"
  notification_channels = local.alert_channels

  conditions {
    display_name = "undelivered messages in ${local.dead_letter_subscription} > 0"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter_operator.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      Messages were dead-lettered: rejected by a function (attribute qs_rejected_by, with
      qs_reason_code and qs_reason) or undeliverable after ${local.retry_policy.max_delivery_attempts} attempts.
      Inspect: `gcloud pubsub subscriptions pull ${local.dead_letter_subscription} --limit 10`
      (add --auto-ack once handled). Rejections are also rows of the `rejections` table.
    EOT
  }
}

# chain_poll logs "scheduled run skipped" with outcome.reason "stale payload" when the
# provider returns a snapshot time already stored (shared/services/chain_poll.py).
resource "google_logging_metric" "stale_snapshots" {
  name        = "${local.prefix}-chain-poll-stale-payloads"
  description = "chain_poll runs whose provider returned an already stored snapshot time."
  filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${local.function_ids.chain_poll}\"",
    "jsonPayload.message=\"scheduled run skipped\"",
    "jsonPayload.outcome.reason=\"stale payload\"",
  ])

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "job"
      value_type  = "STRING"
      description = "The Cloud Scheduler job (one per symbol)."
    }
  }

  label_extractors = {
    job = "EXTRACT(labels.job)"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "stale_snapshots" {
  display_name          = "Quantsentinel: stale option-chain snapshots"
  combiner              = "OR"
  notification_channels = local.alert_channels

  conditions {
    display_name = "at least ${var.stale_snapshot_runs} stale payloads of one job in 5 min"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.stale_snapshots.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.stale_snapshot_runs - 0.5
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.job"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The chain provider keeps returning a snapshot already stored: no fresh data reaches
      decide, and risk_check's stale_data kill switch trips after 60 s without a fresh
      published snapshot. Check the provider (QS_CHAIN_SOURCE=${var.chain_source}; an
      expired upstox-access-token is the usual cause with upstox) and the chain_polls table.
    EOT
  }
}
