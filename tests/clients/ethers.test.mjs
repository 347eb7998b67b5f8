// ethers v6 against the dev node: deploy the ERC-20, transfer, read balances and events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ethers } from 'ethers';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const bin = process.env.BTTC_BIN ?? path.join(root, 'target', 'debug', 'bttc');
const KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
];

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startNode(blockTime = '0') {
  assert.ok(fs.existsSync(bin), `bttc binary not found at ${bin}: run cargo build or set BTTC_BIN`);
  const datadir = fs.mkdtempSync(path.join(os.tmpdir(), 'bttc-ethers-'));
  const port = await freePort();
  const wsPort = await freePort();
  const proc = spawn(bin, ['node', '--dev', '--datadir', datadir, '--http.port', String(port), '--ws.port', String(wsPort), '--block-time', blockTime], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    assert.equal(proc.exitCode, null, 'node exited early');
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }),
      });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    assert.ok(Date.now() < deadline, 'node did not start within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, wsUrl: `ws://127.0.0.1:${wsPort}`, stop: () => { proc.kill('SIGTERM'); fs.rmSync(datadir, { recursive: true, force: true }); } };
}

test('ethers deploys the ERC-20 and transfers', async () => {
  const artifacts = path.join(root, 'target', 'test-artifacts-ethers');
  execFileSync('node', [path.join(here, 'compile.mjs'), artifacts], { stdio: 'inherit' });
  const artifact = JSON.parse(fs.readFileSync(path.join(artifacts, 'TestToken.json'), 'utf8'));
  const node = await startNode();
  try {
    // ethers caches identical requests for 250 ms by default; blocks here come faster than that.
  const provider = new ethers.JsonRpcProvider(node.url, undefined, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 });
    const alice = new ethers.Wallet(KEYS[0], provider);
    const bob = new ethers.Wallet(KEYS[1], provider);
    assert.equal((await provider.getNetwork()).chainId, 1337n);

    const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, alice);
    const token = await factory.deploy(10n ** 24n);
    await token.waitForDeployment();
    assert.equal(await token.balanceOf(alice.address), 10n ** 24n);

    const receipt = await (await token.transfer(bob.address, 12345n)).wait();
    assert.equal(receipt.status, 1);
    assert.equal(await token.balanceOf(bob.address), 12345n);
    const events = await token.queryFilter(token.filters.Transfer(alice.address, bob.address), 0);
    assert.equal(events.length, 1);
    assert.equal(events[0].args.value, 12345n);

    // A plain ether transfer with an EIP-1559 fee.
    const before = await provider.getBalance(bob.address);
    const paid = await (await alice.sendTransaction({ to: bob.address, value: 777n })).wait();
    assert.equal(paid.status, 1);
    assert.equal(await provider.getBalance(bob.address), before + 777n);

    await assert.rejects(token.failWithReason(), /token: always fails/);
  } finally {
    node.stop();
  }
});
