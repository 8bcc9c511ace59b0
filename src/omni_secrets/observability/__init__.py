"""Logs, metrics and alerts. Configured once by the entry point; nothing global at import."""
