'use strict';

/*
 * Widens serverless-azure-functions 2.2.1's runtime table to the Python versions Azure Functions
 * runs today.
 *
 * Why: the plugin validates `provider.runtime` against `supportedRuntimeSet` from its own
 * `lib/config/runtime` module, which stops at python3.8 (no longer offered by Azure), and it
 * takes the Linux app's `linuxFxVersion` from that module's `dockerImages` map. Nothing else in
 * the plugin is version-specific for Python, so adding entries to those exports is enough:
 * `sls package` then accepts python3.9-3.12, and a deploy gets `PYTHON|3.x` as linuxFxVersion.
 *
 * It must be listed BEFORE serverless-azure-functions in `plugins:` so that the table is widened
 * before the Azure plugin's hooks validate the configuration. The module object is shared with
 * the plugin (Node's require cache), so the change is seen wherever the plugin reads it.
 */

const path = require('path');

const PYTHON_VERSIONS = ['3.9', '3.10', '3.11', '3.12'];
const MODULE = 'serverless-azure-functions/lib/config/runtime';

function loadRuntimeModule(serviceDir) {
  // Resolve from the service first (the copy the Azure plugin itself loads), then from here.
  const paths = [serviceDir, __dirname].filter(Boolean);
  return require(require.resolve(MODULE, { paths }));
}

function widen(runtime) {
  for (const version of PYTHON_VERSIONS) {
    const name = `python${version}`;
    const key = `PYTHON${version.replace('.', '')}`;
    if (runtime.Runtime && !runtime.Runtime[key]) runtime.Runtime[key] = name;
    if (!runtime.supportedRuntimes.includes(name)) runtime.supportedRuntimes.push(name);
    runtime.supportedRuntimeSet.add(name);
    if (!runtime.dockerImages[name]) runtime.dockerImages[name] = `PYTHON|${version}`;
  }
  return runtime;
}

class AzurePythonRuntimes {
  constructor(serverless) {
    const serviceDir = serverless && (serverless.serviceDir || (serverless.config && serverless.config.servicePath));
    widen(loadRuntimeModule(serviceDir && path.resolve(serviceDir)));
  }
}

module.exports = AzurePythonRuntimes;
module.exports.PYTHON_VERSIONS = PYTHON_VERSIONS;
module.exports.widen = widen;
