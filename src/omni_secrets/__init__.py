"""omni-secrets: serves ApeX Omni exchange credentials from Google Secret Manager.

Nothing is created at import time: entry points build :class:`omni_secrets.config.Settings`
and pass it to :func:`omni_secrets.api.app.create_app` or the CLI commands.
"""

__version__ = "0.1.0"
