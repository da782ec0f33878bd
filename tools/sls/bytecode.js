'use strict';
// Serverless plugin: after the deployment zip is built (and serverless-python-requirements has
// added the vendored packages, so list this plugin after it), compile every .py in the zip to
// bytecode for the function runtime's CPython (python3.12 → cpython-312) with tools/bytecode.py.
//
// The interpreter must be that exact minor version: the one named by OVERCAST_BYTECODE_PYTHON,
// else pythonX.Y on PATH, else a pyenv install of X.Y. Without one the zip ships sources only
// (cold starts compile them, as before) and the packager says so; packaging never fails on it.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const RECORD = 'bytecode.json';

function versionOf(python) {
  const out = spawnSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : null;
}

function findPython(version) {
  const candidates = [];
  if (process.env.OVERCAST_BYTECODE_PYTHON) candidates.push(process.env.OVERCAST_BYTECODE_PYTHON);
  candidates.push(`python${version}`);
  const pyenv = path.join(process.env.PYENV_ROOT || path.join(os.homedir(), '.pyenv'), 'versions');
  if (fs.existsSync(pyenv)) {
    for (const name of fs.readdirSync(pyenv).sort().reverse()) {
      if (name === version || name.startsWith(`${version}.`)) candidates.push(path.join(pyenv, name, 'bin', 'python'));
    }
  }
  return candidates.find((python) => versionOf(python) === version) || null;
}

class Bytecode {
  constructor(serverless, options, { log } = {}) {
    this.serverless = serverless;
    this.log = log || { notice: (m) => serverless.cli.log(m), warning: (m) => serverless.cli.log(m) };
    this.hooks = { 'after:package:createDeploymentArtifacts': () => this.compile() };
  }

  compile() {
    const service = this.serverless.service;
    const match = /^python(\d+\.\d+)$/.exec(service.provider.runtime || '');
    const artifact = service.package && service.package.artifact;
    if (!match) return;
    if (!artifact) {
      this.log.warning('bytecode: no service-wide artifact (package.individually?); the zips ship sources only');
      return;
    }
    const version = match[1];
    const python = findPython(version);
    // What was done, beside the zip (tests read it; so can a deploy pipeline).
    const record = (fields) =>
      fs.writeFileSync(path.join(path.dirname(artifact), RECORD), JSON.stringify({ version, ...fields }, null, 2));
    if (!python) {
      const reason = `no Python ${version} found (set OVERCAST_BYTECODE_PYTHON)`;
      this.log.warning(`bytecode: ${reason}; the zip ships sources only, so each cold start compiles them`);
      record({ python: null, reason });
      return;
    }
    const script = path.join(__dirname, '..', 'bytecode.py');
    const out = spawnSync(python, ['-I', script, artifact], { encoding: 'utf8' });
    if (out.status !== 0) {
      throw new this.serverless.classes.Error(`bytecode: ${python} ${script} failed:\n${out.stderr}`);
    }
    this.log.notice(out.stdout.trim());
    record({ python, output: out.stdout.trim() });
  }
}

module.exports = Bytecode;
