# A contract's topic and the push subscriptions of the functions that consume it, each
# with OIDC authentication, the shared retry policy, and dead-lettering after
# max_delivery_attempts (as local/cloud.py creates them against the emulator).

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest. Messages carry no credentials (ids, prices, verdicts); a customer-managed key would make every publish depend on Cloud KMS availability for no protection the project's IAM does not already give.
  project                    = var.project_id
  name                       = var.name
  labels                     = var.labels
  message_retention_duration = var.message_retention
}

resource "google_pubsub_subscription" "push" {
  for_each = var.push_subscriptions

  project = var.project_id
  name    = each.key
  topic   = google_pubsub_topic.this.id
  labels  = var.labels

  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = "604800s"
  enable_message_ordering    = false

  expiration_policy {
    ttl = "" # never expire for inactivity (a quiet topic is not an abandoned one)
  }

  push_config {
    push_endpoint = each.value.push_endpoint

    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = each.value.audience
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_policy.minimum_backoff_s}s"
    maximum_backoff = "${var.retry_policy.maximum_backoff_s}s"
  }

  dead_letter_policy {
    dead_letter_topic     = var.dead_letter_topic_id
    max_delivery_attempts = var.retry_policy.max_delivery_attempts
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it must be a subscriber of the
# source subscription (to ack the message it forwards). Publishing to the dead-letter
# topic is granted once, on that topic, by the root module.
resource "google_pubsub_subscription_iam_member" "dead_letter_ack" {
  for_each = var.push_subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}
