"""Adapters: one module (or package) per outside system, each implementing a domain port."""
