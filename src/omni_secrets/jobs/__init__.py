"""Background jobs run by the service process (started and stopped by ``bootstrap``)."""
