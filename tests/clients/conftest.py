"""Fixtures: a bttc dev node started as a separate process, and the compiled test contracts."""

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
]
STARTUP_TIMEOUT_S = 60


def bttc_binary() -> Path:
    path = Path(os.environ.get("BTTC_BIN", ROOT / "target" / "debug" / "bttc"))
    if not path.exists():
        pytest.fail(f"bttc binary not found at {path}: build it (cargo build) or set BTTC_BIN")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevNode:
    """A `bttc node --dev` process on a free port with its own data directory."""

    def __init__(self, datadir: Path, block_time: str = "0", extra=()):
        self.datadir = datadir
        self.port = free_port()
        self.ws_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        self.log_path = datadir / "node.log"
        self.args = [
            str(bttc_binary()), "node", "--dev", "--datadir", str(datadir),
            "--http.port", str(self.port), "--ws.port", str(self.ws_port),
            "--block-time", block_time, *extra,
        ]
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                self.rpc("eth_blockNumber")
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"node did not answer within {STARTUP_TIMEOUT_S}s:\n{self.log_text()}")

    def rpc(self, method, *params):
        """Raw JSON-RPC call; returns the whole response object."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        return requests.post(self.url, json=body, timeout=30).json()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def datadir():
    with tempfile.TemporaryDirectory(prefix="bttc-test-") as d:
        yield Path(d)


@pytest.fixture
def node(datadir):
    n = DevNode(datadir).start()
    yield n
    n.stop()


@pytest.fixture(scope="session")
def artifacts():
    """Compiles tests/contracts with solc-js (npm) once per session."""
    out = ROOT / "target" / "test-artifacts"
    subprocess.run(["node", str(Path(__file__).parent / "compile.mjs"), str(out)], check=True)
    fresh = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    committed = {p.stem: json.loads(p.read_text()) for p in (ROOT / "tests" / "contracts" / "artifacts").glob("*.json")}
    assert fresh == committed, "tests/contracts/artifacts is stale: run `node tests/clients/compile.mjs`"
    return fresh


def free_port_range(offsets, count) -> int:
    """A base port whose `base + offset + i` ports (TCP and UDP) are all free."""
    import random
    for _ in range(200):
        base = random.randint(20_000, 50_000)
        try:
            for offset in offsets:
                for i in range(count):
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        with socket.socket(socket.AF_INET, kind) as s:
                            s.bind(("127.0.0.1", base + offset + i))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port range")


class Network:
    """`bttc devnet --validators N`: N validator processes (Delivery and BTTC chains) on
    loopback, described by the `network.json` the devnet writes."""

    def __init__(self, datadir: Path, validators: int = 4, full_nodes: int = 1):
        self.datadir = datadir
        self.validators = validators
        base = free_port_range([0, 50, 100, 150, 200, 250, 300, 350], validators)
        self.log_path = datadir / "devnet.out"
        self.args = [str(bttc_binary()), "devnet", "--validators", str(validators),
                     "--full-nodes", str(full_nodes),
                     "--base-port", str(base), "--datadir", str(datadir / "net")]
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        network_file = self.datadir / "net" / "network.json"
        while not network_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"devnet did not start:\n{self.log_text()}")
            time.sleep(0.05)
        self.network = json.loads(network_file.read_text())
        self.urls = self.network["bttc"]["rpc"]
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the network made no block:\n{self.log_text()}")
            try:
                if all(int(self.rpc(i, "eth_blockNumber")["result"], 16) >= 1 for i in range(len(self.urls))):
                    return self
            except (requests.ConnectionError, KeyError):
                pass
            time.sleep(0.1)

    def rpc(self, i, method, *params):
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        return requests.post(self.urls[i], json=body, timeout=30).json()

    def log_text(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for i in range(len(self.urls)):
            name = f"node-{i}" if i < self.validators else f"full-{i - self.validators}"
            log = self.datadir / "net" / name / "node.log"
            if log.exists():
                text += f"\n--- node {i}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        return text

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT, as Ctrl-C: the devnet stops its validators
            self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture(scope="session")
def network():
    with tempfile.TemporaryDirectory(prefix="bttc-net-") as d:
        n = Network(Path(d)).start()
        yield n
        n.stop()
