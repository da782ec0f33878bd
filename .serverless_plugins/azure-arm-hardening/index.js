'use strict';

/*
 * Hardens the ARM template serverless-azure-functions 2.2.1 deploys (consumption plan: Function
 * App + storage account + Application Insights).
 *
 * Why: the plugin's resource templates are fixed code (lib/armTemplates/resources/*.js) that
 * serverless.azure.yml cannot reach, and they leave transport security at the platform's old
 * defaults: the Function App answers plain HTTP and FTP, accepts TLS 1.0, and has no HTTP/2; the
 * storage account (the Functions host's own state) accepts HTTP and TLS 1.0. checkov's ARM
 * scanner reports each (tests/packaging/test_validators.py). Wrapping the two resources'
 * getTemplate adds the settings every production Function App should have, without replacing the
 * plugin's template wholesale (provider.armTemplate) and losing its app settings and parameters.
 *
 * What it sets:
 *   Microsoft.Web/sites            httpsOnly, siteConfig.minTlsVersion 1.2, http20Enabled,
 *                                  ftpsState Disabled (apiVersion raised from the plugin's
 *                                  2016-03-01 to 2022-03-01: the older versions lack ftpsState,
 *                                  and 2018-11-01 types http20Enabled as a string)
 *   Microsoft.Storage/storageAccounts  supportsHttpsTrafficOnly, minimumTlsVersion TLS1_2,
 *                                  allowBlobPublicAccess false (apiVersion 2021-09-01; the legacy
 *                                  `accountType` property is dropped — `sku` carries the same)
 *
 * List it BEFORE serverless-azure-functions in `plugins:`; the module objects are shared with the
 * plugin through Node's require cache, so its deploy builds the hardened template.
 */

const path = require('path');

const RESOURCES = 'serverless-azure-functions/lib/armTemplates/resources';
const SITE_API_VERSION = '2022-03-01';
const STORAGE_API_VERSION = '2021-09-01';
const PATCHED = Symbol.for('overcast.armHardening');

function load(serviceDir, name) {
  const paths = [serviceDir, __dirname].filter(Boolean);
  return require(require.resolve(`${RESOURCES}/${name}`, { paths }));
}

function hardenSite(resource) {
  resource.apiVersion = SITE_API_VERSION;
  resource.properties = resource.properties || {};
  resource.properties.httpsOnly = true;
  // An empty hostingEnvironment means none; newer API versions name it hostingEnvironmentProfile.
  if (resource.properties.hostingEnvironment === '') delete resource.properties.hostingEnvironment;
  const siteConfig = (resource.properties.siteConfig = resource.properties.siteConfig || {});
  siteConfig.minTlsVersion = '1.2';
  siteConfig.http20Enabled = true;
  siteConfig.ftpsState = 'Disabled';
}

function hardenStorage(resource) {
  resource.apiVersion = STORAGE_API_VERSION;
  const properties = (resource.properties = resource.properties || {});
  delete properties.accountType;
  properties.supportsHttpsTrafficOnly = true;
  properties.minimumTlsVersion = 'TLS1_2';
  properties.allowBlobPublicAccess = false;
}

const HARDENERS = {
  'Microsoft.Web/sites': hardenSite,
  'Microsoft.Storage/storageAccounts': hardenStorage,
};

function wrap(prototype) {
  if (prototype[PATCHED]) return;
  const original = prototype.getTemplate;
  prototype.getTemplate = function getHardenedTemplate(...args) {
    const template = original.apply(this, args);
    for (const resource of template.resources || []) {
      const harden = HARDENERS[resource.type];
      if (harden) harden(resource);
    }
    return template;
  };
  prototype[PATCHED] = true;
}

function harden(serviceDir) {
  wrap(load(serviceDir, 'functionApp').FunctionAppResource.prototype);
  wrap(load(serviceDir, 'storageAccount').StorageAccountResource.prototype);
}

class AzureArmHardening {
  constructor(serverless) {
    const serviceDir = serverless && (serverless.serviceDir || (serverless.config && serverless.config.servicePath));
    harden(serviceDir && path.resolve(serviceDir));
  }
}

module.exports = AzureArmHardening;
module.exports.harden = harden;
