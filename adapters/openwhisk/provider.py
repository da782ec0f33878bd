"""The OpenWhisk provider's registration (see ``adapters.registry``); importing it imports no SDK."""

from adapters.registry import ProviderSpec

SPEC = ProviderSpec(
    name="openwhisk",
    vendor_modules=("ibmcloudant", "ibm_cloud_sdk_core"),
    handler="handlers.openwhisk",
    events="adapters.openwhisk.events",
    store_class="adapters.openwhisk.store:CloudantMessageStore",
    store_scheme="cloudant",
    store_opener="adapters.openwhisk.store:open_spec",
    cloud="runtime.openwhisk:OpenWhiskCloud",
    address="127.0.0.6",
    emulator="emulators.pouchdb:PouchDBServer",
    fixtures=("tests.fixtures.pouchdb",),
    colour="#1192e8",
)
