"""Adapters: one module per outside system, each built with explicit arguments (never Settings)."""
