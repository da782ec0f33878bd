"""Per-vendor implementations of core's ports and event shapes. Each subpackage imports only its own SDK."""
