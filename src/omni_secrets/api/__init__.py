"""HTTP API: the FastAPI app factory, auth, error envelope and routes."""
