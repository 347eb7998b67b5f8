// Compiles the contracts with solc-js (pinned in package.json), offline, into artifacts/ (one
// JSON per contract: abi, bytecode, deployedBytecode, evmVersion, solc version).
// Root-chain contracts (root/, lib/, test/) target `paris`: TRON's and BSC's VMs have no PUSH0.
// BTTC-chain contracts (child/, and test-child/ for tests) target `berlin`, the rules of
// bttc-mainnet.
// `node compile.mjs --check` compiles into memory and fails if artifacts/ differs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifactsDir = path.join(here, 'artifacts');
const check = process.argv.includes('--check');
const groups = [
  { dirs: ['lib', 'root', 'test'], evmVersion: 'paris' },
  { dirs: ['lib', 'child', 'test-child'], evmVersion: 'berlin', only: ['child/', 'test-child/'] },
];

function readSources(dirs) {
  const sources = {};
  for (const dir of dirs) {
    const full = path.join(here, dir);
    if (!fs.existsSync(full)) continue;
    for (const file of fs.readdirSync(full).filter((f) => f.endsWith('.sol')).sort()) {
      sources[`${dir}/${file}`] = { content: fs.readFileSync(path.join(full, file), 'utf8') };
    }
  }
  return sources;
}

const artifacts = {};
for (const group of groups) {
  const sources = readSources(group.dirs);
  const own = (file) => !group.only || group.only.some((prefix) => file.startsWith(prefix));
  if (!Object.keys(sources).some(own)) continue;
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: group.evmVersion,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  for (const w of (output.errors ?? []).filter((e) => e.severity !== 'error')) console.error(w.formattedMessage);
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    for (const e of errors) console.error(e.formattedMessage);
    process.exit(1);
  }
  for (const [file, contracts] of Object.entries(output.contracts)) {
    if (!own(file)) continue;
    for (const [name, c] of Object.entries(contracts)) {
      // Internal-only libraries and abstract bases have no code of their own.
      if (c.evm.bytecode.object === "" || (file.startsWith("lib/") && c.abi.length === 0)) continue;
      artifacts[name] = {
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
        source: file,
        evmVersion: group.evmVersion,
        solc: solc.version(),
      };
    }
  }
}

if (check) {
  let stale = false;
  const committed = fs.existsSync(artifactsDir)
    ? fs.readdirSync(artifactsDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5))
    : [];
  for (const name of new Set([...committed, ...Object.keys(artifacts)])) {
    const file = path.join(artifactsDir, `${name}.json`);
    const want = artifacts[name] ? JSON.stringify(artifacts[name], null, 2) + '\n' : null;
    const have = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
    if (want !== have) {
      console.error(`stale artifact: ${name} (run \`node engine/contracts/compile.mjs\`)`);
      stale = true;
    }
  }
  if (stale) process.exit(1);
  console.log(`artifacts match the sources (${Object.keys(artifacts).length} contracts)`);
} else {
  fs.mkdirSync(artifactsDir, { recursive: true });
  for (const [name, artifact] of Object.entries(artifacts)) {
    fs.writeFileSync(path.join(artifactsDir, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
    console.log(`compiled ${name} (${(artifact.deployedBytecode.length - 2) / 2} bytes, ${artifact.evmVersion})`);
  }
}
