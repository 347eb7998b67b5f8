// Compiles tests/contracts/*.sol with solc-js (pinned in package.json) and writes one JSON
// artifact per contract ({abi, bytecode}) into the directory given as the first argument.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const here = path.dirname(fileURLToPath(import.meta.url));
const sourcesDir = path.join(here, '..', 'contracts');
// Default: the committed artifacts (benches read them; the client tests check they match).
const outDir = process.argv[2] ?? path.join(here, '..', 'contracts', 'artifacts');
const evmVersion = process.argv[3] ?? 'osaka';

const sources = {};
for (const file of fs.readdirSync(sourcesDir).filter((f) => f.endsWith('.sol'))) {
  sources[file] = { content: fs.readFileSync(path.join(sourcesDir, file), 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion,
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
if (errors.length > 0) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
fs.mkdirSync(outDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const artifact = {
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      source: file,
      solc: solc.version(),
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2));
    console.log(`compiled ${name} (${c.evm.bytecode.object.length / 2} bytes) -> ${outDir}`);
  }
}
