# Topics, push subscriptions and the dead-letter topic (shared/topology.py, as local/
# creates them against the emulator).

# The Pub/Sub service agent: it signs push OIDC tokens and forwards dead letters.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta
  project  = var.project_id
  service  = "pubsub.googleapis.com"

  depends_on = [google_project_service.enabled]
}

locals {
  pubsub_agent = google_project_service_identity.pubsub.email

  # topic => { subscription id => push settings }
  push_subscriptions = {
    for topic in local.topics : topic => {
      for id, s in local.subscriptions : id => {
        push_endpoint        = module.function[s.function].uri
        audience             = local.function_audiences[s.function]
        ack_deadline_seconds = max(10, min(local.function_specs[s.function].timeout_s, 600))
      } if s.topic == topic
    }
  }
}

module "topic" {
  source   = "./modules/topic"
  for_each = toset(local.topics)

  project_id                 = var.project_id
  name                       = each.key
  labels                     = local.labels
  dead_letter_topic_id       = google_pubsub_topic.dead_letter.id
  retry_policy               = local.retry_policy
  push_subscriptions         = local.push_subscriptions[each.key]
  push_service_account_email = google_service_account.push.email
  pubsub_service_agent       = local.pubsub_agent

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest, as for every topic (modules/topic/main.tf).
  name                       = local.dead_letter_topic
  labels                     = local.labels
  message_retention_duration = "604800s"

  depends_on = [google_project_service.enabled]
}

# Operators read dead letters here (and the dead-letter depth alert watches it).
resource "google_pubsub_subscription" "dead_letter_operator" {
  name                       = local.dead_letter_subscription
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# The service agent forwards undeliverable messages to the dead-letter topic...
resource "google_pubsub_topic_iam_member" "dead_letter_agent_publisher" {
  topic  = google_pubsub_topic.dead_letter.name
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${local.pubsub_agent}"
}

# ...and mints the push subscriptions' OIDC tokens for the push identity.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_agent}"
}
