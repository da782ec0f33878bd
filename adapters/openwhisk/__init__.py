"""Openwhisk: the openwhisk message store and the platform's event shapes.
Only this package and handlers/openwhisk.py import the vendor SDK (see docs/adding-a-provider.md)."""
