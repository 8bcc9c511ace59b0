"""GSM's ``current`` alias on the serving side (contract section 15): name it where it is missing.

Adoption of aliases moved by others (drift) and the compare-and-set commit live elsewhere.
"""

from omni_secrets.service.aliases.build import build_current_aliases
from omni_secrets.service.aliases.service import CurrentAliasService

__all__ = ["CurrentAliasService", "build_current_aliases"]
