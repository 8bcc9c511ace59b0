"""Rotation: preview, commit and cancel a group's candidate versions; the rotation monitor.

- ``service.py`` — :class:`~.service.RotationService`, the face the API calls; its work is in
  ``preview.py`` (open a preview) and ``commit.py`` (commit or cancel one), with
  ``failures.py`` reporting their expected failures;
- ``monitor.py`` — :class:`~.monitor.RotationMonitor`, the timed rounds (gauges everywhere;
  alerts and ``rotation_alert`` rows from the leader); ``report.py`` — where every type and group
  stands (shared with ``omni-secrets rotation check``);
- ``events.py`` — what both decide; ``reactions.py`` — what follows (log lines, metrics,
  redaction, alerts, background audit rows, the catch-up, the peer announcement);
- ``views.py`` — what the API gets back; ``build.py`` — the builder bootstrap calls.

The rules themselves are :mod:`omni_secrets.domain.rotation`'s. Nothing is imported here, so
``rotation check`` loads only the report.
"""
