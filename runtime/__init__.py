"""Local stand-ins for cloud function hosts that cannot be installed here (one module per provider)."""
