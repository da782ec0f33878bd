#!/usr/bin/env node
// Local Cosmos DB for tests: @vercel/cosmosdb-server 1.0.1 started with its known faults worked
// around HERE (test infrastructure), never in the production adapter.
//
//   node emulators/cosmos_server.js --host 127.0.0.1 --port 8081
//
// Workarounds, and why:
//  1. Keep-alive. The package's CLI answers every request with `connection: close`, so each SDK
//     call pays a new TCP + TLS handshake (~72 ms/op measured). `createHttpsServer({keepAlive:
//     true})` makes the handler send `connection: keep-alive`, and a long `keepAliveTimeout`
//     keeps the SDK's pooled connection open between calls (~4 ms/op).
//  2. Reading a missing item answers 500. The read-document handler dereferences the missing
//     document before its own 404 check and throws a TypeError. The real service answers 404
//     NotFound, so this launcher answers 404 with the service's body for a missing document
//     before the faulty handler runs.
//  3. Loopback only. The CLI binds every interface when --host is omitted; this script always
//     binds the given 127.x address and refuses anything else.
// The expired self-signed certificate (notAfter 2021) is NOT patched here: the test client is
// built with `connection_verify=False` (tests/fixtures/cosmos.py), exactly as the package's own
// README does with `rejectUnauthorized: false`. Where a test wants TLS verification on (the
// production client configuration), it passes its own certificate with --tls-cert/--tls-key.
"use strict";

const fs = require("fs");

const args = { host: "127.0.0.1", port: 8081, cert: null, key: null };
for (let i = 2; i < process.argv.length; i += 1) {
  const key = process.argv[i];
  if (key === "--host") args.host = process.argv[++i];
  else if (key === "--port") args.port = parseInt(process.argv[++i], 10);
  // Optional: serve a certificate of the caller's (e.g. one a test made and trusts) instead of
  // the package's expired one, so a client can keep TLS verification ON.
  else if (key === "--tls-cert") args.cert = process.argv[++i];
  else if (key === "--tls-key") args.key = process.argv[++i];
  else {
    console.error(`unknown argument ${key}`);
    process.exit(2);
  }
}
if (!args.host.startsWith("127.")) {
  console.error(`refusing to bind ${args.host}: local servers bind loopback (127.x) only`);
  process.exit(2);
}

// (2) Patch the read-document handler BEFORE the package's router module captures it: routes.js
// reads `handler.default` once, when it is first required (by lib/index.js below).
const readDocument = require("@vercel/cosmosdb-server/lib/handler/read-document");
const { parsePartitionKey } = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");
const faultyRead = readDocument.default;
readDocument.default = (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  if (collection.read()) {
    let partition;
    try {
      partition = parsePartitionKey(req.headers["x-ms-documentdb-partitionkey"], params.docId);
    } catch (err) {
      partition = undefined; // let the original handler report a malformed header its own way
    }
    if (partition !== undefined && !collection.document(params.docId, partition).read()) {
      res.statusCode = 404;
      return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
    }
  }
  return faultyRead(account, req, res, params);
};

const { createHttpsServer } = require("@vercel/cosmosdb-server");

// (1) keepAlive: the handler then sends `connection: keep-alive` instead of `close`.
const tls = args.cert && args.key ? { cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) } : {};
const server = createHttpsServer({ keepAlive: true, ...tls });
server.keepAliveTimeout = 120 * 1000;
server.headersTimeout = 125 * 1000;

server.listen(args.port, args.host, () => {
  const { address, port } = server.address();
  console.log(`cosmosdb-server ready https://${address}:${port} (keep-alive)`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
