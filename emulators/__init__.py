"""Launchers for the local servers that speak each vendor's protocol (moto, DynamoDB Local,
the Cosmos DB emulator server, the Firestore emulator, ...). Every one binds 127.0.0.1."""
