#!/bin/bash
# Create the functions' database role and apply the schema migrations, on the temporary
# operations VM inside the VPC (terraform/README.md, step 8). Idempotent: run it again after
# every release that adds a migration, and to apply a new qs-db-app-password version.
#
#   bash schema.sh <Cloud SQL private IP> [secret prefix, default qs]
#
# Expects quantsentinel.tar.gz (git archive of the deployed commit) beside it.
#
# qs_app is created by qs_owner in SQL rather than as a Cloud SQL user: Cloud SQL makes
# every user it creates a member of cloudsqlsuperuser, and the functions' role must be
# LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS (as local/postgres.py creates it),
# so that row-level security binds it. Its password is the one terraform generated.
set -euo pipefail

DB_IP=${1:?usage: bash schema.sh <Cloud SQL private IP> [secret prefix]}
PREFIX=${2:-qs}

if ! command -v psql >/dev/null || ! python3.11 -c 'import venv' 2>/dev/null; then
    sudo apt-get update -qq
    sudo apt-get install -y -qq python3.11-venv make postgresql-client
fi
mkdir -p quantsentinel
tar -xzf quantsentinel.tar.gz -C quantsentinel
cd quantsentinel
make venv

OWNER_PW=$(gcloud secrets versions access latest --secret="$PREFIX-db-owner-password")
APP_PW=$(gcloud secrets versions access latest --secret="$PREFIX-db-app-password")

PGPASSWORD=$OWNER_PW psql "host=$DB_IP dbname=quantsentinel user=qs_owner sslmode=require" \
    -v ON_ERROR_STOP=1 -v pw="$APP_PW" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'qs_app') AS missing \gset
\if :missing
CREATE ROLE qs_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
\endif
ALTER ROLE qs_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'pw';
SQL

ENCODED_PW=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$OWNER_PW")
.venv/bin/qs db migrate --url "postgresql://qs_owner:$ENCODED_PW@$DB_IP:5432/quantsentinel?sslmode=require"
echo "qs_app ready, schema up to date"
