# A private network for Cloud SQL: the instance has only a private IP, reached by the
# functions through a Serverless VPC Access connector (private ranges only; calls to NSE,
# Upstox, Telegram and SMTP leave directly).

resource "google_compute_network" "main" {
  name                    = "${local.prefix}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_subnetwork" "connector" {
  name                     = "${local.prefix}-connector"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = var.connector_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "main" {
  name          = "${local.prefix}-connector"
  region        = var.region
  machine_type  = "e2-micro"
  min_instances = 2
  max_instances = 3

  subnet {
    name = google_compute_subnetwork.connector.name
  }
}

# Private services access: the peering range Cloud SQL's private IP comes from.
resource "google_compute_global_address" "private_services" {
  name          = "${local.prefix}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_service_prefix_length
  network       = google_compute_network.main.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.main.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# Nothing enters the network from outside: the connector's own rules (created by
# Serverless VPC Access) and the Cloud SQL peering are the only paths in.
resource "google_compute_firewall" "deny_ingress" {
  name      = "${local.prefix}-deny-all-ingress"
  network   = google_compute_network.main.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# --- operations: the database has no public address, so schema migrations (and
# MLflow's store preparation) run from a temporary VM in this subnet, reached through
# IAP only (terraform/README.md, "Apply the schema").

resource "google_compute_subnetwork" "ops" {
  name                     = "${local.prefix}-ops"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = var.ops_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# SSH through Identity-Aware Proxy's range only, to VMs tagged for operations.
resource "google_compute_firewall" "iap_ssh" {
  name          = "${local.prefix}-allow-iap-ssh"
  network       = google_compute_network.main.id
  direction     = "INGRESS"
  priority      = 1000
  source_ranges = ["35.235.240.0/20"]
  target_tags   = ["${local.prefix}-ops"]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_service_account" "ops" {
  account_id   = "${local.prefix}-ops"
  display_name = "Quantsentinel operations VM (migrations)"
  depends_on   = [google_project_service.enabled]
}

# The operations VM's identity: it reads the two database passwords (deploy/ops/schema.sh
# creates qs_app with the generated one) and writes its logs.
resource "google_secret_manager_secret_iam_member" "ops_passwords" {
  for_each = {
    owner = google_secret_manager_secret.db_owner_password.secret_id
    app   = google_secret_manager_secret.app["db-app-password"].secret_id
  }

  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.ops.email}"
}

resource "google_project_iam_member" "ops_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.ops.email}"
}
