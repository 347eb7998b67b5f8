//! TLS for validator links: each node makes a fresh self-signed certificate whose TLS key is
//! endorsed by its secp256k1 validator key (a signature in a certificate extension). Both sides
//! of a connection check the endorsement, so a peer that cannot prove a validator key never
//! completes the handshake.

use super::Counters;
use alloy_primitives::{Address, B256, keccak256};
use bttc_engine::crypto::{recover_hash_signer, sign_hash_recoverable};
use parking_lot::RwLock;
use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
};
use secp256k1::SecretKey;
use std::{collections::BTreeSet, sync::Arc, sync::atomic::Ordering};

/// Private-enterprise OID arc for the endorsement extension.
const ENDORSEMENT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 53594, 1, 1];
const ENDORSEMENT_DOMAIN: &[u8] = b"bttc/p2p/tls-key/v1";
/// ALPN protocol of validator links.
pub const ALPN: &[u8] = b"bttc-delivery/1";

/// What the validator key signs: the chain and the certificate's raw TLS public key.
fn endorsement_hash(chain_id: u64, tls_public_key: &[u8]) -> B256 {
    keccak256([ENDORSEMENT_DOMAIN, &chain_id.to_be_bytes(), tls_public_key].concat())
}

/// A certificate and its TLS private key.
pub struct NodeCertificate {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A fresh certificate for this node, endorsed by `validator_key`.
pub fn node_certificate(
    chain_id: u64,
    validator_key: &SecretKey,
) -> Result<NodeCertificate, TlsError> {
    use rcgen::PublicKeyData;
    let tls_key = rcgen::KeyPair::generate()?;
    let signature = sign_hash_recoverable(
        validator_key,
        &endorsement_hash(chain_id, tls_key.der_bytes()),
    );
    let mut params = rcgen::CertificateParams::new(vec!["bttc-validator".to_owned()])?;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            ENDORSEMENT_OID,
            signature.to_vec(),
        ));
    let cert = params.self_signed(&tls_key)?;
    Ok(NodeCertificate {
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls_key.serialize_der())),
    })
}

/// The validator address a certificate's endorsement recovers to, if it has a valid one.
pub fn endorsed_address(chain_id: u64, cert: &CertificateDer<'_>) -> Option<Address> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let oid = x509_parser::der_parser::oid::Oid::from(ENDORSEMENT_OID).ok()?;
    let ext = parsed.extensions().iter().find(|e| e.oid == oid)?;
    let signature: [u8; 65] = ext.value.try_into().ok()?;
    let public_key = parsed.public_key().subject_public_key.data.as_ref();
    recover_hash_signer(&endorsement_hash(chain_id, public_key), &signature)
}

/// The server name a dialer uses for a validator: its address in hex (a valid DNS label).
pub fn server_name(validator: Address) -> String {
    hex::encode(validator.as_slice())
}

/// Checks endorsements against the current validator set.
#[derive(Debug)]
pub struct ValidatorVerifier {
    chain_id: u64,
    validators: Arc<RwLock<BTreeSet<Address>>>,
    /// Whether a connecting peer whose key is not a validator's (a full node) gets in.
    open_to_full_nodes: bool,
    algorithms: WebPkiSupportedAlgorithms,
    counters: Arc<Counters>,
}

impl ValidatorVerifier {
    pub fn new(
        chain_id: u64,
        validators: Arc<RwLock<BTreeSet<Address>>>,
        open_to_full_nodes: bool,
        counters: Arc<Counters>,
    ) -> Arc<Self> {
        Arc::new(Self {
            chain_id,
            validators,
            open_to_full_nodes,
            algorithms: provider().signature_verification_algorithms,
            counters,
        })
    }

    /// `dialed`: the validator this node dialed (server side), or `None` for a peer that
    /// connected to this node, which may be a full node when the node is open to them.
    fn check(
        &self,
        cert: &CertificateDer<'_>,
        expected: Option<Address>,
    ) -> Result<Address, rustls::Error> {
        let refuse = |why: &str| {
            self.counters.unknown_key.fetch_add(1, Ordering::Relaxed);
            Err(rustls::Error::General(why.to_owned()))
        };
        let Some(address) = endorsed_address(self.chain_id, cert) else {
            return refuse("certificate carries no validator endorsement");
        };
        let full_node_allowed = expected.is_none() && self.open_to_full_nodes;
        if !full_node_allowed && !self.validators.read().contains(&address) {
            tracing::warn!(%address, "refused a peer whose key is not a validator's");
            return refuse("endorsing key is not a validator");
        }
        if expected.is_some_and(|e| e != address) {
            return refuse("peer is not the validator dialed");
        }
        Ok(address)
    }
}

impl ServerCertVerifier for ValidatorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let expected = match server_name {
            ServerName::DnsName(name) => hex::decode(name.as_ref())
                .ok()
                .filter(|b| b.len() == 20)
                .map(|b| Address::from_slice(&b)),
            _ => None,
        };
        self.check(end_entity, expected)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".to_owned()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for ValidatorVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, None)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".to_owned()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

pub fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// TLS 1.3 configurations for both directions of a validator link.
pub fn configs(
    cert: &NodeCertificate,
    verifier: Arc<ValidatorVerifier>,
) -> Result<(rustls::ServerConfig, rustls::ClientConfig), TlsError> {
    let provider = Arc::new(provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(vec![cert.cert.clone()], cert.key.clone_key())?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert.cert.clone()], cert.key.clone_key())?;
    client.alpn_protocols = vec![ALPN.to_vec()];
    Ok((server, client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bttc_engine::delivery::signing::key_address;

    #[test]
    fn endorsement_recovers_the_validator_and_depends_on_the_chain() {
        let key = SecretKey::from_byte_array([7; 32]).unwrap();
        let cert = node_certificate(5, &key).unwrap();
        assert_eq!(endorsed_address(5, &cert.cert), Some(key_address(&key)));
        assert_ne!(endorsed_address(6, &cert.cert), Some(key_address(&key)));
        assert_eq!(
            endorsed_address(5, &CertificateDer::from(vec![1, 2, 3])),
            None
        );
    }
}
