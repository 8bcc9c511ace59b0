"""Background jobs the service runs next to the API (break-glass expiry, rotation monitor)."""
