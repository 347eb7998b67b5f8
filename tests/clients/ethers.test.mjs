// ethers v6 against the dev node: deploy the ERC-20, transfer, read balances and events; follow
// heads and logs over WebSocket while a load of transfers runs.
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
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
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

let compiled;
function tokenArtifact() {
  if (!compiled) {
    const artifacts = path.join(root, 'target', 'test-artifacts-ethers');
    execFileSync('node', [path.join(here, 'compile.mjs'), artifacts], { stdio: 'inherit' });
    compiled = JSON.parse(fs.readFileSync(path.join(artifacts, 'TestToken.json'), 'utf8'));
  }
  return compiled;
}

/** Resolves once `ready()` holds, polling every 20 ms; fails after `ms`. */
async function until(ready, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('ethers deploys the ERC-20 and transfers', async () => {
  const artifact = tokenArtifact();
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

test('ethers follows every head and every matching log over WebSocket under load', async () => {
  const artifact = tokenArtifact();
  const node = await startNode('0');
  const ws = new ethers.WebSocketProvider(node.wsUrl, undefined, { staticNetwork: true });
  try {
    const http = new ethers.JsonRpcProvider(node.url, undefined, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 });
    const [alice, ...others] = KEYS.map((k) => new ethers.NonceManager(new ethers.Wallet(k, http)));
    const token = await (await new ethers.ContractFactory(artifact.abi, artifact.bytecode, alice).deploy(10n ** 24n)).waitForDeployment();
    await Promise.all(others.map(async (o) => (await token.transfer(await o.getAddress(), 10n ** 21n)).wait()));

    const watched = ethers.Wallet.createRandom().address;
    const unwatched = ethers.Wallet.createRandom().address;
    const heads = [];
    const logs = [];
    await ws.on('block', (n) => heads.push(n));
    // A provider-level log filter (address and topics). ethers 6.17's Contract.on with a
    // null topic never calls its listener over WebSocket, whatever the node (ethers #4941).
    const logFilter = {
      address: await token.getAddress(),
      topics: [ethers.id('Transfer(address,address,uint256)'), null, ethers.zeroPadValue(watched, 32)],
    };
    await ws.on(logFilter, (log) => logs.push(log));
    // ethers subscribes in the background: send marker transfers until both subscriptions
    // have delivered one; from there on nothing may be missed.
    let markers = 0;
    await until(async () => {
      if (heads.length > 0 && logs.length > 0) return true;
      await (await token.transfer(watched, 1n)).wait();
      markers += 1;
      return false;
    }, 30_000, 'the subscriptions to start');
    const first = heads[0];
    const firstLogs = logs.length;

    // The load: 8 waves of 4 senders × 5 transfers, every other one to the watched address,
    // each wave sent while blocks of the previous ones are being made.
    let toWatched = 0;
    const sent = [];
    for (let wave = 0; wave < 8; wave += 1) {
      const sends = [];
      for (const sender of [alice, ...others]) {
        for (let i = 0; i < 5; i += 1) {
          const to = i % 2 === 0 ? watched : unwatched;
          if (to === watched) toWatched += 1;
          sends.push(token.connect(sender).transfer(to, BigInt(wave * 5 + i + 1), { gasLimit: 80_000 }));
        }
      }
      sent.push(...(await Promise.all(sends)));
    }
    await Promise.all(sent.map((tx) => tx.wait()));
    const tip = await http.getBlockNumber();
    await until(() => heads.at(-1) >= tip && logs.length >= firstLogs + toWatched, 60_000, `heads to ${tip} and ${toWatched} logs`);

    // Every head once and in order, from the first received to the tip.
    const expectedHeads = Array.from({ length: tip - first + 1 }, (_, i) => first + i);
    assert.deepEqual(heads, expectedHeads);
    assert.ok(heads.length > 5, `the load spans several blocks (${heads.length})`);
    // Every matching log once, in chain order, as eth_getLogs reports them.
    const expected = await http.getLogs({ ...logFilter, fromBlock: first, toBlock: tip });
    const key = (l) => `${l.blockNumber}:${l.index}:${l.transactionHash}:${l.data}`;
    assert.deepEqual(logs.map(key), expected.map(key));
    assert.equal(logs.length, firstLogs + toWatched, `${markers} markers`);
  } finally {
    await ws.destroy();
    node.stop();
  }
});
