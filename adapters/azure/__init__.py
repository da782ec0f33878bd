"""Azure adapters: the Cosmos DB message store and the Azure Functions event shapes.

Only this package and ``handlers.azure`` import the Azure SDKs (azure-cosmos, azure-functions).
"""
