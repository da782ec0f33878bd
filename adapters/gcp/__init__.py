"""Google Cloud: the Firestore store, the functions-framework (Flask) request mapping and the
Firestore document-change event mapping. Only this package and handlers/gcp import Google SDKs."""
