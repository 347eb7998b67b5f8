// ethers v6 against a network of four validators (`bttc devnet`): the `finalized` block
// (a milestone of the Delivery chain) advances behind the head and never goes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ethers } from 'ethers';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.BTTC_BIN ?? path.join(here, '..', '..', 'target', 'debug', 'bttc');
const VALIDATORS = 4;

function bindable(port, udp) {
  return new Promise((resolve) => {
    if (udp) {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    } else {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    }
  });
}

/** A base port whose devnet ports (RPC, QUIC, BTTC HTTP and WebSocket) are free. */
async function freeBase() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    let free = true;
    for (const offset of [0, 100, 200, 300]) {
      for (let i = 0; i < VALIDATORS && free; i++) {
        free = (await bindable(base + offset + i, false)) && (await bindable(base + offset + i, true));
      }
    }
    if (free) return base;
  }
  throw new Error('no free port range');
}

async function until(ready, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await ready())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('ethers sees finalized advance on a four-validator network', async () => {
  assert.ok(fs.existsSync(bin), `bttc binary not found at ${bin}: run cargo build or set BTTC_BIN`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bttc-ethers-net-'));
  const base = await freeBase();
  const devnet = spawn(bin, ['devnet', '--validators', String(VALIDATORS), '--base-port', String(base), '--datadir', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const networkFile = path.join(dir, 'network.json');
    await until(() => fs.existsSync(networkFile), 60_000, 'network.json');
    const network = JSON.parse(fs.readFileSync(networkFile, 'utf8'));
    const provider = new ethers.JsonRpcProvider(network.bttc.rpc[3], undefined, { staticNetwork: true, cacheTimeout: -1 });
    await until(async () => {
      try { return (await provider.getBlockNumber()) >= 1; } catch { return false; }
    }, 60_000, 'the first block');
    assert.equal((await provider.getNetwork()).chainId, BigInt(network.bttc.chain_id));
    const seen = [];
    await until(async () => {
      const finalized = await provider.getBlock('finalized');
      const latest = await provider.getBlockNumber();
      assert.ok(finalized.number <= latest, `finalized ${finalized.number} is past the head ${latest}`);
      if (seen.length > 0) assert.ok(finalized.number >= seen.at(-1), `finalized went back: ${seen} then ${finalized.number}`);
      seen.push(finalized.number);
      return new Set(seen).size >= 3;
    }, 60_000, 'finalized to advance twice');
  } finally {
    devnet.kill('SIGINT');
    await new Promise((r) => devnet.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
