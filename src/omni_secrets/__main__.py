"""``python -m omni_secrets`` is the ``omni-secrets`` console script."""

from omni_secrets.cli import main

main()
