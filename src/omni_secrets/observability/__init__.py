"""Observability: structured logging, Prometheus metrics and alerting."""
