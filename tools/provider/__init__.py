"""Adding a provider: ``python -m tools.provider new NAME`` (scaffold) and ``check NAME`` (readiness).

The guide is docs/adding-a-provider.md. The scaffold writes the fixed set of places a provider
touches, each with TODOs; the readiness check says exactly which of them are still missing.
"""

from tools.provider.readiness import Check, ReadinessReport, check_provider
from tools.provider.scaffold import ScaffoldError, scaffold, validate_name

__all__ = ["Check", "ReadinessReport", "ScaffoldError", "check_provider", "scaffold", "validate_name"]
