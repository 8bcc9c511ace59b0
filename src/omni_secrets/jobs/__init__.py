"""Background jobs the service runs next to the API (reconcile, break-glass expiry, heartbeat)."""
