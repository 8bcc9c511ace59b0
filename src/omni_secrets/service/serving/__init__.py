"""Serving the credentials: which version each type serves (``pinned_versions``), the service the
edges call (``secrets``: status, ApeX calls, readiness), and its builder (``build``)."""
