"""Route 53 DNS failover: configuration, local data plane (health checkers, DNS), load, faults, drill, live mode."""
