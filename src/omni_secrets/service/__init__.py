"""The service layer: orchestrates the domain and the injected adapters for api/, cli/ and jobs/."""
