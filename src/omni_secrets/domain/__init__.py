"""The core of omni-secrets: no framework, network, database or settings imports."""
