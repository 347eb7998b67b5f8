//! The QUIC transport: one listening endpoint per node, an outbound connection to every peer
//! (kept up with reconnects), one message per unidirectional stream. Inbound frames are
//! bounded, decoded and handed to the driver through a bounded queue.

use super::{
    Counters,
    frame::{FRAME_MAX, Wire},
    tls::{self, NodeCertificate, TlsError, ValidatorVerifier},
};
use alloy_primitives::Address;
use parking_lot::{Mutex, RwLock};
use quinn::{
    Connection, Endpoint, IdleTimeout, TransportConfig, VarInt,
    crypto::rustls::{QuicClientConfig, QuicServerConfig},
};
use secp256k1::SecretKey;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::sync::mpsc;

/// Messages queued per peer and class before new ones are dropped.
const SEND_QUEUE_LEN: usize = 1_024;
/// Streams a peer may have open toward us at once (bounds buffered frames per connection).
const STREAMS_PER_CONNECTION_MAX: u32 = 32;
const CONSENSUS_PRIORITY: i32 = 10;
const BULK_PRIORITY: i32 = 0;
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

pub struct P2pConfig {
    pub chain_id: u64,
    pub key: SecretKey,
    pub listen: SocketAddr,
    pub peers: Vec<(Address, SocketAddr)>,
    /// Who may connect; shared so that validator-set changes apply to new handshakes.
    pub validators: Arc<RwLock<BTreeSet<Address>>>,
    /// Full nodes (peers whose key is not a validator's) this node serves at once; 0 refuses
    /// them. A full node's messages reach the driver like a validator's (its votes count for
    /// nothing), and this node sends to it over the connection it opened.
    pub full_nodes_max: usize,
}

/// Bytes of received frames the node holds at once (queued for the driver or buffered by it);
/// a frame beyond it is dropped and counted.
pub const INBOUND_BYTES_MAX: usize = 256 << 20;

/// A share of [`INBOUND_BYTES_MAX`], given back when the frame is dropped.
#[derive(Debug)]
pub struct BytePermit {
    held: Arc<AtomicUsize>,
    bytes: usize,
}

impl BytePermit {
    fn try_take(held: &Arc<AtomicUsize>, bytes: usize) -> Option<Self> {
        let mut current = held.load(Ordering::Relaxed);
        loop {
            if current + bytes > INBOUND_BYTES_MAX {
                return None;
            }
            match held.compare_exchange_weak(
                current,
                current + bytes,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Self {
                        held: held.clone(),
                        bytes,
                    });
                }
                Err(now) => current = now,
            }
        }
    }
}

impl BytePermit {
    /// The frame's length.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BytePermit {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A decoded frame, the validator it came from, and its share of the inbound byte bound.
#[derive(Debug)]
pub struct Inbound {
    pub from: Address,
    pub wire: Wire,
    pub permit: BytePermit,
}

#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("QUIC configuration: {0}")]
    Config(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("connecting: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("writing a frame: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("finishing a stream: {0}")]
    Finish(#[from] quinn::ClosedStream),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

struct Link {
    consensus: mpsc::Sender<Arc<[u8]>>,
    bulk: mpsc::Sender<Arc<[u8]>>,
    connected: Arc<AtomicBool>,
}

pub struct P2p {
    endpoint: Endpoint,
    links: BTreeMap<Address, Link>,
    /// Links to full nodes, over the connections they opened.
    full_nodes: FullNodeLinks,
    counters: Arc<Counters>,
}

type FullNodeLinks = Arc<Mutex<BTreeMap<Address, Link>>>;

fn transport_config() -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(STREAMS_PER_CONNECTION_MAX));
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.max_idle_timeout(Some(
        IdleTimeout::try_from(Duration::from_secs(5)).expect("small timeout"),
    ));
    t.keep_alive_interval(Some(Duration::from_secs(1)));
    Arc::new(t)
}

/// A QUIC endpoint with this node's endorsed certificate, accepting `validators`.
fn endpoint(
    chain_id: u64,
    key: &SecretKey,
    listen: SocketAddr,
    validators: Arc<RwLock<BTreeSet<Address>>>,
    open_to_full_nodes: bool,
    counters: Arc<Counters>,
) -> Result<Endpoint, P2pError> {
    let cert: NodeCertificate = tls::node_certificate(chain_id, key)?;
    let verifier = ValidatorVerifier::new(chain_id, validators, open_to_full_nodes, counters);
    let (server, client) = tls::configs(&cert, verifier)?;
    let quic_server = QuicServerConfig::try_from(server)?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_server));
    server_config.transport_config(transport_config());
    let quic_client = QuicClientConfig::try_from(client)?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(quic_client));
    client_config.transport_config(transport_config());
    let mut endpoint =
        Endpoint::server(server_config, listen).map_err(|source| P2pError::Bind {
            addr: listen,
            source,
        })?;
    endpoint.set_default_client_config(client_config);
    Ok(endpoint)
}

impl P2p {
    /// Binds the endpoint, starts accepting and dialing; frames arrive on `inbox`.
    pub fn start(config: P2pConfig, inbox: mpsc::Sender<Inbound>) -> Result<Self, P2pError> {
        let counters = Arc::new(Counters::default());
        let endpoint = endpoint(
            config.chain_id,
            &config.key,
            config.listen,
            config.validators.clone(),
            config.full_nodes_max > 0,
            counters.clone(),
        )?;
        let full_nodes = FullNodeLinks::default();
        let held = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept_loop(
            endpoint.clone(),
            Accepting {
                chain_id: config.chain_id,
                inbox: inbox.clone(),
                counters: counters.clone(),
                held: held.clone(),
                validators: config.validators,
                full_nodes: full_nodes.clone(),
                full_nodes_max: config.full_nodes_max,
            },
        ));
        let mut links = BTreeMap::new();
        for (peer, addr) in config.peers {
            let (consensus, consensus_rx) = mpsc::channel(SEND_QUEUE_LEN);
            let (bulk, bulk_rx) = mpsc::channel(SEND_QUEUE_LEN);
            let connected = Arc::new(AtomicBool::new(false));
            tokio::spawn(dial_loop(
                endpoint.clone(),
                peer,
                addr,
                consensus_rx,
                bulk_rx,
                connected.clone(),
                Reading {
                    inbox: inbox.clone(),
                    counters: counters.clone(),
                    held: held.clone(),
                },
            ));
            links.insert(
                peer,
                Link {
                    consensus,
                    bulk,
                    connected,
                },
            );
        }
        Ok(Self {
            endpoint,
            links,
            full_nodes,
            counters,
        })
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }

    /// Peers with a live outbound connection, and full nodes connected to this node.
    pub fn connected_peers(&self) -> usize {
        self.links
            .values()
            .filter(|l| l.connected.load(Ordering::Relaxed))
            .count()
            + self.full_nodes.lock().len()
    }

    fn enqueue(&self, link: &Link, wire: &Wire, bytes: Arc<[u8]>) {
        let queue = if wire.is_consensus() {
            &link.consensus
        } else {
            &link.bulk
        };
        if queue.try_send(bytes).is_err() {
            self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends to every peer (never blocks; a full queue drops and counts).
    pub fn broadcast(&self, wire: &Wire) {
        let bytes: Arc<[u8]> = wire.encode().into();
        for link in self.links.values() {
            self.enqueue(link, wire, bytes.clone());
        }
        for link in self.full_nodes.lock().values() {
            self.enqueue(link, wire, bytes.clone());
        }
    }

    pub fn send_to(&self, peer: Address, wire: &Wire) {
        if let Some(link) = self.links.get(&peer) {
            self.enqueue(link, wire, wire.encode().into());
        } else if let Some(link) = self.full_nodes.lock().get(&peer) {
            self.enqueue(link, wire, wire.encode().into());
        }
    }

    pub fn close(&self) {
        self.endpoint.close(VarInt::from_u32(0), b"shutdown");
    }
}

/// The validator host's messages go out over QUIC.
impl bttc_engine::env::Transport for &P2p {
    fn broadcast(&mut self, wire: &Wire) {
        P2p::broadcast(self, wire);
    }

    fn send_to(&mut self, peer: Address, wire: &Wire) {
        P2p::send_to(self, peer, wire);
    }
}

/// What the accepting side shares with each connection it serves.
struct Accepting {
    chain_id: u64,
    inbox: mpsc::Sender<Inbound>,
    counters: Arc<Counters>,
    held: Arc<AtomicUsize>,
    validators: Arc<RwLock<BTreeSet<Address>>>,
    full_nodes: FullNodeLinks,
    full_nodes_max: usize,
}

/// What a connection's reader needs: where frames go and the bounds they count against.
#[derive(Clone)]
struct Reading {
    inbox: mpsc::Sender<Inbound>,
    counters: Arc<Counters>,
    held: Arc<AtomicUsize>,
}

async fn accept_loop(endpoint: Endpoint, accepting: Accepting) {
    let accepting = Arc::new(accepting);
    // One inbound connection per peer: a new one (a restarted peer) replaces the old.
    let live: Arc<Mutex<HashMap<Address, Connection>>> = Arc::default();
    while let Some(incoming) = endpoint.accept().await {
        let accepting = accepting.clone();
        let live = live.clone();
        tokio::spawn(async move {
            // A refused handshake was counted by the verifier.
            let Ok(conn) = incoming.await else { return };
            let Some(from) = peer_address(accepting.chain_id, &conn) else {
                return;
            };
            let full_node = !accepting.validators.read().contains(&from);
            if full_node {
                let mut full_nodes = accepting.full_nodes.lock();
                if !full_nodes.contains_key(&from) && full_nodes.len() >= accepting.full_nodes_max {
                    conn.close(VarInt::from_u32(3), b"too many full nodes");
                    accepting.queue_full();
                    return;
                }
                // Frames to the full node go out over its own connection.
                let (consensus, consensus_rx) = mpsc::channel(SEND_QUEUE_LEN);
                let (bulk, bulk_rx) = mpsc::channel(SEND_QUEUE_LEN);
                let connected = Arc::new(AtomicBool::new(true));
                full_nodes.insert(
                    from,
                    Link {
                        consensus,
                        bulk,
                        connected,
                    },
                );
                let locked = |rx| Arc::new(tokio::sync::Mutex::new(rx));
                tokio::spawn(pump(conn.clone(), locked(consensus_rx), CONSENSUS_PRIORITY));
                tokio::spawn(pump(conn.clone(), locked(bulk_rx), BULK_PRIORITY));
                tracing::info!(peer = %from, "a full node connected");
            }
            if let Some(old) = live.lock().insert(from, conn.clone()) {
                old.close(VarInt::from_u32(2), b"replaced by a newer connection");
            }
            let reading = Reading {
                inbox: accepting.inbox.clone(),
                counters: accepting.counters.clone(),
                held: accepting.held.clone(),
            };
            serve_connection(conn.clone(), from, reading).await;
            let mut live = live.lock();
            if live
                .get(&from)
                .is_some_and(|c| c.stable_id() == conn.stable_id())
            {
                live.remove(&from);
                if full_node {
                    accepting.full_nodes.lock().remove(&from);
                }
            }
        });
    }
}

impl Accepting {
    fn queue_full(&self) {
        self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
    }
}

fn peer_address(chain_id: u64, conn: &Connection) -> Option<Address> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    tls::endorsed_address(chain_id, certs.first()?)
}

async fn serve_connection(conn: Connection, from: Address, reading: Reading) {
    while let Ok(mut stream) = conn.accept_uni().await {
        let Reading {
            inbox,
            counters,
            held,
        } = reading.clone();
        tokio::spawn(async move {
            match stream.read_to_end(FRAME_MAX).await {
                Ok(bytes) => match Wire::decode(&bytes) {
                    Ok(wire) => {
                        let Some(permit) = BytePermit::try_take(&held, bytes.len()) else {
                            counters.queue_full.fetch_add(1, Ordering::Relaxed);
                            return;
                        };
                        if inbox.try_send(Inbound { from, wire, permit }).is_err() {
                            counters.queue_full.fetch_add(1, Ordering::Relaxed);
                        } else {
                            counters.received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        counters.malformed.fetch_add(1, Ordering::Relaxed);
                        counters.mark(from);
                        tracing::warn!(%from, error = %e, "refused a malformed frame");
                    }
                },
                Err(quinn::ReadToEndError::TooLong) => {
                    counters.oversized.fetch_add(1, Ordering::Relaxed);
                    counters.mark(from);
                    tracing::warn!(%from, "refused a frame over {FRAME_MAX} bytes");
                    let _ = stream.stop(VarInt::from_u32(1));
                }
                Err(_) => {}
            }
        });
    }
}

async fn dial_loop(
    endpoint: Endpoint,
    peer: Address,
    addr: SocketAddr,
    consensus_rx: mpsc::Receiver<Arc<[u8]>>,
    bulk_rx: mpsc::Receiver<Arc<[u8]>>,
    connected: Arc<AtomicBool>,
    reading: Reading,
) {
    let consensus_rx = Arc::new(tokio::sync::Mutex::new(consensus_rx));
    let bulk_rx = Arc::new(tokio::sync::Mutex::new(bulk_rx));
    let mut backoff = RECONNECT_MIN;
    loop {
        let conn = match endpoint.connect(addr, &tls::server_name(peer)) {
            Ok(connecting) => connecting.await.ok(),
            Err(quinn::ConnectError::EndpointStopping) => return,
            Err(_) => None,
        };
        if let Some(conn) = conn {
            backoff = RECONNECT_MIN;
            connected.store(true, Ordering::Relaxed);
            tracing::debug!(%peer, %addr, "connected");
            let a = pump(conn.clone(), consensus_rx.clone(), CONSENSUS_PRIORITY);
            let b = pump(conn.clone(), bulk_rx.clone(), BULK_PRIORITY);
            // A validator answers a full node over the connection the full node opened.
            let c = serve_connection(conn.clone(), peer, reading.clone());
            tokio::select! {
                _ = a => {}
                _ = b => {}
                _ = c => {}
                _ = conn.closed() => {}
            }
            connected.store(false, Ordering::Relaxed);
        }
        // Retry pacing for a peer that is down; not a wait for a condition.
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// Sends queued frames on `conn`, one stream each, until the connection fails.
async fn pump(
    conn: Connection,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Arc<[u8]>>>>,
    priority: i32,
) {
    let mut queue = queue.lock().await;
    while let Some(bytes) = queue.recv().await {
        if send_frame(&conn, &bytes, priority).await.is_err() {
            return;
        }
    }
}

/// Writes one frame on a new unidirectional stream.
pub async fn send_frame(conn: &Connection, bytes: &[u8], priority: i32) -> Result<(), P2pError> {
    let mut stream = conn.open_uni().await?;
    let _ = stream.set_priority(priority);
    stream.write_all(bytes).await?;
    stream.finish()?;
    Ok(())
}

/// A bare connection to validator `peer` at `addr` made with `key` (any key): for tools and for
/// tests that play a misbehaving peer.
pub async fn connect_raw(
    chain_id: u64,
    key: &SecretKey,
    peer: Address,
    addr: SocketAddr,
) -> Result<(Endpoint, Connection), P2pError> {
    let validators = Arc::new(RwLock::new(BTreeSet::from([peer])));
    let endpoint = endpoint(
        chain_id,
        key,
        "127.0.0.1:0".parse().expect("literal"),
        validators,
        false,
        Arc::new(Counters::default()),
    )?;
    let conn = endpoint.connect(addr, &tls::server_name(peer))?.await?;
    Ok((endpoint, conn))
}

/// Keeps a value alive for as long as a connection is used (tests hold the endpoint).
pub type RawLink = (Endpoint, Connection);
