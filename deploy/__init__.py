"""Deployment tooling: per-function bundles (``python -m deploy bundle``) and the check that
terraform/ matches the code (``python -m deploy check``). Not deployed itself."""
