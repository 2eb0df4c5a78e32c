//! TLS 1.3 configuration for corebank servers and clients (rustls, aws-lc-rs).
//!
//! - Only TLS 1.3 is offered and accepted; a TLS 1.2 peer fails the handshake.
//! - ALPN is `h2` (gRPC runs over HTTP/2).
//! - A server given a client CA **requests** a client certificate and verifies
//!   any certificate sent against that CA, but lets clients without one
//!   connect: they must then present an API key on every call (see
//!   [`crate::auth::Authenticator`]). A certificate from another CA fails the
//!   handshake.
//! - Key exchange is the aws-lc-rs default, X25519MLKEM768 (post-quantum
//!   hybrid) first.
//!
//! File loading gives one precise error per problem: missing file, not PEM, no
//! certificate, no private key, key not matching the certificate, bad CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::auth::{AuthError, AuthMethod, Identity, InvalidCredential, ScopeSet};
use crate::certs::{PEM_FILE_BYTES_MAX, parse_scopes_uri};
use crate::fsutil::{self, ReadError};
use crate::names::validate_name;

/// The ALPN protocol spoken: HTTP/2, for gRPC.
pub const ALPN_H2: &[u8] = b"h2";
/// The most certificates accepted in one PEM file (chain or CA bundle).
pub const CERTIFICATES_PER_FILE_MAX: usize = 64;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file does not exist.
    #[error("{what} file {} does not exist", .path.display())]
    NotFound {
        /// What the file was for.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {what} file {}: {error}", .path.display())]
    Read {
        /// What the file was for.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A file is larger than [`PEM_FILE_BYTES_MAX`].
    #[error("{what} file {} is {bytes} bytes, more than the {PEM_FILE_BYTES_MAX} accepted", .path.display())]
    TooLarge {
        /// What the file was for.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// A file is not valid PEM.
    #[error("{what} file {} is not valid PEM: {detail}", .path.display())]
    NotPem {
        /// What the file was for.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// A certificate file holds no `CERTIFICATE` section.
    #[error("{what} file {} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')", .path.display())]
    NoCertificate {
        /// What the file was for.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A file holds more than [`CERTIFICATES_PER_FILE_MAX`] certificates.
    #[error("{what} file {} holds more than {CERTIFICATES_PER_FILE_MAX} certificates", .path.display())]
    TooManyCertificates {
        /// What the file was for.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A key file holds no private key.
    #[error(
        "key file {} holds no PEM private key ('-----BEGIN PRIVATE KEY-----', \
         'EC PRIVATE KEY' or 'RSA PRIVATE KEY')", .path.display()
    )]
    NoPrivateKey {
        /// The path.
        path: PathBuf,
    },
    /// The private key is not of a supported kind.
    #[error("the private key is not usable: {detail}")]
    UnsupportedKey {
        /// rustls' message.
        detail: String,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate (they come from different pairs)")]
    KeyMismatch,
    /// A CA certificate could not be used as a trust anchor.
    #[error("the CA certificate is not usable as a trust anchor: {detail}")]
    InvalidCa {
        /// What is wrong.
        detail: String,
    },
    /// Anything else rustls refused.
    #[error("the TLS configuration is invalid: {detail}")]
    Config {
        /// rustls' message.
        detail: String,
    },
}

impl TlsError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "file_not_found",
            Self::Read { .. } => "read_failed",
            Self::TooLarge { .. } => "file_too_large",
            Self::NotPem { .. } => "not_pem",
            Self::NoCertificate { .. } => "no_certificate",
            Self::TooManyCertificates { .. } => "too_many_certificates",
            Self::NoPrivateKey { .. } => "no_private_key",
            Self::UnsupportedKey { .. } => "unsupported_key",
            Self::KeyMismatch => "key_mismatch",
            Self::InvalidCa { .. } => "invalid_ca",
            Self::Config { .. } => "invalid_tls_config",
        }
    }
}

fn from_rustls(error: rustls::Error) -> TlsError {
    match error {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch
        }
        rustls::Error::General(detail) => TlsError::UnsupportedKey { detail },
        other => TlsError::Config {
            detail: other.to_string(),
        },
    }
}

/// The crypto provider used everywhere: aws-lc-rs with its defaults.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    fsutil::read_bounded(path, PEM_FILE_BYTES_MAX).map_err(|error| match error {
        ReadError::NotFound => TlsError::NotFound {
            what,
            path: path.to_owned(),
        },
        ReadError::TooLarge { bytes } => TlsError::TooLarge {
            what,
            path: path.to_owned(),
            bytes,
        },
        ReadError::Io(error) => TlsError::Read {
            what,
            path: path.to_owned(),
            error,
        },
    })
}

fn certificates_from_pem(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut certificates = Vec::new();
    for certificate in CertificateDer::pem_slice_iter(bytes) {
        let certificate = certificate.map_err(|error| TlsError::NotPem {
            what,
            path: path.to_owned(),
            detail: pem_detail(&error),
        })?;
        if certificates.len() == CERTIFICATES_PER_FILE_MAX {
            return Err(TlsError::TooManyCertificates {
                what,
                path: path.to_owned(),
            });
        }
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// The PEM parser's message, without echoing file contents at length.
fn pem_detail(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a section is not valid base64".into(),
        other => crate::names::excerpt(&other.to_string(), 120),
    }
}

/// Loads a PEM certificate chain (end-entity first), e.g. `node.pem`.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem("certificate", path)?;
    certificates_from_pem("certificate", path, &bytes)
}

/// Loads the first PEM private key (PKCS#8, SEC1 or PKCS#1) in a file, e.g.
/// `node-key.pem`.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = crate::secret::Secret::new(read_pem("key", path)?);
    PrivateKeyDer::from_pem_slice(bytes.expose()).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => TlsError::NotPem {
            what: "key",
            path: path.to_owned(),
            detail: pem_detail(&other),
        },
    })
}

/// Loads a PEM CA bundle (one or more certificates) as trust anchors.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let bytes = read_pem("CA", path)?;
    roots_from_certificates(certificates_from_pem("CA", path, &bytes)?)
}

/// Trust anchors from DER certificates.
pub fn roots_from_certificates(
    certificates: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| TlsError::InvalidCa {
                detail: error.to_string(),
            })?;
    }
    Ok(roots)
}

/// A TLS 1.3 server configuration: `cert_chain` + `key` as the server's
/// identity, ALPN `h2`, and, with `client_ca`, optional client certificates
/// verified against it (without `client_ca`, no client certificate is asked
/// for and callers authenticate with API keys only).
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<RootCertStore>,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(from_rustls)?;
    let builder = match client_ca {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|error| TlsError::InvalidCa {
                    detail: error.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(cert_chain, key)
        .map_err(from_rustls)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// [`server_config`] from PEM files: `cert` (chain), `key`, optional client CA.
pub fn server_config_from_files(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let chain = load_certificates(cert)?;
    let key = load_private_key(key)?;
    let roots = client_ca.map(load_roots).transpose()?;
    server_config(chain, key, roots)
}

/// A TLS 1.3 client configuration trusting `roots`, ALPN `h2`, presenting
/// `client_identity` (chain and key) when given.
pub fn client_config(
    roots: RootCertStore,
    client_identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|error| TlsError::InvalidCa {
            detail: error.to_string(),
        })?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(from_rustls)?
        .with_webpki_verifier(verifier);
    let mut config = match client_identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(from_rustls)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// [`client_config`] from PEM files: the CA to trust, and optionally the
/// client's certificate and key.
pub fn client_config_from_files(
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    let roots = load_roots(ca)?;
    let identity = match client {
        Some((cert, key)) => Some((load_certificates(cert)?, load_private_key(key)?)),
        None => None,
    };
    client_config(roots, identity)
}

/// The caller described by a client certificate: name = the subject's common
/// name, scopes = the URI SAN `urn:corebank:scopes:<list>` (none if absent),
/// credential id = the serial number in hex.
///
/// This reads the certificate; it does **not** verify it. Call it only on the
/// end-entity certificate that rustls verified during the handshake
/// (`ServerConnection::peer_certificates()`).
pub fn peer_identity_from_certificate(cert: &CertificateDer<'_>) -> Result<Identity, AuthError> {
    let invalid = AuthError::invalid;
    let (_, x509) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| invalid(InvalidCredential::CertificateUnreadable))?;
    let mut common_names = x509.subject().iter_common_name();
    let name = match (common_names.next(), common_names.next()) {
        (Some(name), None) => name
            .as_str()
            .map_err(|_| invalid(InvalidCredential::CertificateName))?,
        _ => return Err(invalid(InvalidCredential::CertificateName)),
    };
    validate_name(name).map_err(|_| invalid(InvalidCredential::CertificateName))?;

    let alternative_names = x509
        .subject_alternative_name()
        .map_err(|_| invalid(InvalidCredential::CertificateUnreadable))?;
    let mut scopes: Option<ScopeSet> = None;
    if let Some(extension) = alternative_names {
        for general_name in &extension.value.general_names {
            let x509_parser::extensions::GeneralName::URI(uri) = general_name else {
                continue;
            };
            let Some(parsed) = parse_scopes_uri(uri) else {
                continue;
            };
            let parsed = parsed.map_err(|_| invalid(InvalidCredential::CertificateScopes))?;
            if scopes.replace(parsed).is_some() {
                return Err(invalid(InvalidCredential::CertificateScopes));
            }
        }
    }
    Ok(Identity {
        name: name.to_owned(),
        scopes: scopes.unwrap_or(ScopeSet::EMPTY),
        method: AuthMethod::ClientCertificate,
        credential_id: fsutil::hex(x509.raw_serial()),
    })
}

#[cfg(test)]
mod tests;
