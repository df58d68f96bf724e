output "id" {
  description = "Topic id: projects/<p>/topics/<name>."
  value       = google_pubsub_topic.this.id
}

output "name" {
  description = "Topic name."
  value       = google_pubsub_topic.this.name
}

output "subscriptions" {
  description = "Push subscription ids => full names."
  value       = { for k, s in google_pubsub_subscription.push : k => s.id }
}
