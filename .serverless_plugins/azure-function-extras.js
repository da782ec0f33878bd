'use strict';

/*
 * Completes the function.json files that serverless-azure-functions 2.2.1 writes, for what its
 * binding table cannot express. List it BEFORE serverless-azure-functions in `plugins:` (its
 * first hook must run before that plugin builds the bindings).
 *
 * Why: the Azure plugin builds each binding from its bundled bindings.json and copies only the
 * settings that table names. For the Cosmos DB trigger that table has the extension-v3 names
 * (collectionName, leaseCollectionName, createLeaseCollectionIfNotExists, connectionStringSetting,
 * the last one required); Python 3.11 on Functions v4 runs extension bundle 4.x (host.json), whose
 * Cosmos DB extension v4 reads containerName, leaseContainerName, createLeaseContainerIfNotExists
 * and connection. Unpatched, the plugin refuses a v4-style event (no connectionStringSetting) or
 * writes v3 names the v4 extension ignores, and drops every setting it does not know (e.g.
 * leaseContainerPrefix, startFromBeginning). It also cannot write a function's retry policy
 * (function.json top-level "retry"), which the change-feed function depends on.
 *
 * What it does:
 *   1. before:package:setupProviderConfiguration (before the Azure plugin's bindings): a Cosmos DB
 *      event written with v4 names gets the v3 aliases the plugin's validation wants.
 *   2. before:package:createDeploymentArtifacts (after the bindings are written, before the zip):
 *      - on a Cosmos DB trigger written with v4 names, the v3 aliases are removed again;
 *      - every event setting the plugin dropped is copied onto that event's binding unchanged;
 *      - a function's `retry:` (strategy fixedDelay|exponentialBackoff, maxRetryCount, and
 *        delayInterval or minimumInterval/maximumInterval) becomes function.json's "retry",
 *        after validation (a bad policy fails the packaging with a clear message).
 * Nothing else in function.json changes.
 */

const fs = require('fs');
const path = require('path');

const EVENT_META_KEYS = new Set(['x-azure-settings']);
// Cosmos DB extension v4 setting → the v3 name in the Azure plugin's binding table.
const COSMOS_V3_ALIASES = {
  containerName: 'collectionName',
  leaseContainerName: 'leaseCollectionName',
  createLeaseContainerIfNotExists: 'createLeaseCollectionIfNotExists',
  connection: 'connectionStringSetting',
};
const DURATION = /^-?(\d+\.)?\d{2}:\d{2}:\d{2}$/; // [d.]hh:mm:ss, as the Functions host parses it

const RETRY_SCHEMA = {
  type: 'object',
  properties: {
    strategy: { enum: ['fixedDelay', 'exponentialBackoff'] },
    maxRetryCount: { type: 'integer', minimum: -1 },
    delayInterval: { type: 'string' },
    minimumInterval: { type: 'string' },
    maximumInterval: { type: 'string' },
  },
  required: ['strategy', 'maxRetryCount'],
  additionalProperties: false,
};

function validateRetry(functionName, retry) {
  const problems = [];
  if (retry.strategy === 'fixedDelay') {
    if (!DURATION.test(retry.delayInterval || '')) problems.push('fixedDelay needs delayInterval "hh:mm:ss"');
  } else if (retry.strategy === 'exponentialBackoff') {
    for (const key of ['minimumInterval', 'maximumInterval']) {
      if (!DURATION.test(retry[key] || '')) problems.push(`exponentialBackoff needs ${key} "hh:mm:ss"`);
    }
  } else {
    problems.push('strategy must be fixedDelay or exponentialBackoff');
  }
  if (!Number.isInteger(retry.maxRetryCount) || retry.maxRetryCount < -1) {
    problems.push('maxRetryCount must be an integer >= -1 (-1 retries forever)');
  }
  if (problems.length) {
    throw new Error(`functions.${functionName}.retry: ${problems.join('; ')}`);
  }
}

function eventSettings(event) {
  const [kind] = Object.keys(event);
  const merged = { ...(event['x-azure-settings'] || {}), ...event };
  const settings = {};
  for (const [key, value] of Object.entries(merged)) {
    if (key === kind || EVENT_META_KEYS.has(key) || value === undefined || value === null) continue;
    if (typeof value === 'object' && !Array.isArray(value)) continue; // nested maps are not binding settings
    settings[key] = value;
  }
  return settings;
}

class AzureFunctionExtras {
  constructor(serverless) {
    this.serverless = serverless;
    const schema = serverless.configSchemaHandler;
    if (schema && typeof schema.defineFunctionProperties === 'function') {
      schema.defineFunctionProperties('azure', { properties: { retry: RETRY_SCHEMA } });
    }
    this.aliased = new Map(); // function name -> v3 alias names added for the Azure plugin
    this.hooks = {
      'before:package:setupProviderConfiguration': () => this.aliasCosmosSettings(),
      'before:package:createDeploymentArtifacts': () => this.completeFunctionJson(),
    };
  }

  aliasCosmosSettings() {
    const service = this.serverless.service;
    for (const name of service.getAllFunctions()) {
      for (const event of service.getFunction(name).events || []) {
        if (!('cosmosDB' in event)) continue;
        const settings = event['x-azure-settings'] || event;
        if (!('connection' in settings || 'containerName' in settings)) continue; // v3-style: leave it
        const added = [];
        for (const [v4, v3] of Object.entries(COSMOS_V3_ALIASES)) {
          if (v4 in settings && !(v3 in settings)) {
            settings[v3] = settings[v4];
            added.push(v3);
          }
        }
        this.aliased.set(name, added);
      }
    }
  }

  completeFunctionJson() {
    const service = this.serverless.service;
    const servicePath = this.serverless.serviceDir || this.serverless.config.servicePath;
    for (const name of service.getAllFunctions()) {
      const file = path.join(servicePath, name, 'function.json');
      if (!fs.existsSync(file)) continue; // a deploy of a prebuilt package: nothing to complete
      const config = service.getFunction(name);
      const functionJson = JSON.parse(fs.readFileSync(file, 'utf8'));
      // Bindings are written in event order; the HTTP trigger's "$return" output comes last.
      (config.events || []).forEach((event, index) => {
        const binding = functionJson.bindings[index];
        if (!binding) return;
        if (binding.type === 'cosmosDBTrigger' && this.aliased.has(name)) {
          // Written with v4 names: drop the v3 names (aliases and the plugin's filled-in defaults).
          for (const v3 of Object.values(COSMOS_V3_ALIASES)) delete binding[v3];
          const settings = event['x-azure-settings'] || event;
          for (const v3 of this.aliased.get(name)) delete settings[v3];
        }
        for (const [key, value] of Object.entries(eventSettings(event))) {
          if (!(key in binding)) binding[key] = value;
        }
      });
      if (config.retry) {
        validateRetry(name, config.retry);
        functionJson.retry = { ...config.retry };
      }
      fs.writeFileSync(file, JSON.stringify(functionJson, null, 2));
    }
  }
}

module.exports = AzureFunctionExtras;
module.exports.eventSettings = eventSettings;
module.exports.validateRetry = validateRetry;
