"""Cloud-agnostic business logic. Depends only on ports; never imports a vendor SDK or an adapter."""
