"""The service's routers: ``inspections`` (upload and read records) and ``health`` (liveness, readiness, metrics)."""
