// The ARM template `sls deploy --config serverless.azure.yml` would submit, written offline.
//
//   node tools/azure_arm_template.js CONFIG.json OUT.json
//
// CONFIG.json is the resolved service (`sls print --config serverless.azure.yml --format json`).
// serverless-azure-functions builds its template from that configuration with its own
// ConfigService defaults (prefix, region, resource group) and the plan type's composite template
// (consumption unless provider.type says otherwise); this runs the same code without the Azure
// calls around it, so a validator (checkov's ARM scanner) can read what would be deployed.
'use strict';

const fs = require('fs');
const path = require('path');

const [configFile, outFile] = process.argv.slice(2);
if (!configFile || !outFile) {
  console.error('usage: node tools/azure_arm_template.js CONFIG.json OUT.json');
  process.exit(2);
}
const serviceDir = path.resolve(__dirname, '..');
const fromService = (name) => require(require.resolve(name, { paths: [serviceDir] }));

// The runtime table widening (python3.9-3.12) that the deploy loads first.
const RuntimePlugin = require(path.join(serviceDir, '.serverless_plugins', 'azure-python-runtimes'));
new RuntimePlugin({ serviceDir });
// The ARM hardening (https only, TLS 1.2, HTTP/2, no FTP) that the deploy loads before the plugin too.
require(path.join(serviceDir, '.serverless_plugins', 'azure-arm-hardening')).harden(serviceDir);

const service = JSON.parse(fs.readFileSync(configFile, 'utf8'));
const serverless = { service, variables: {}, cli: { log() {} } };
const { ConfigService } = fromService('serverless-azure-functions/lib/services/configService');
const config = new ConfigService(serverless, {}).getConfig();
const template = fromService(`serverless-azure-functions/lib/armTemplates/${config.provider.type}`).default;
fs.writeFileSync(outFile, JSON.stringify(template.getTemplate(config), null, 2) + '\n');
console.log(JSON.stringify({ type: config.provider.type, resourceGroup: config.provider.resourceGroup }));
