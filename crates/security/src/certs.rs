//! Development certificates: a CA, node certificates and client certificates.
//!
//! Everything is ECDSA P-256 with SHA-256 (the most widely verified choice;
//! `rustls` with `aws-lc-rs` and every gRPC stack accept it).
//!
//! - **CA** (`ca.pem`, `ca-key.pem`): self-signed, `CA:true, pathlen:0`, key
//!   usages `keyCertSign, cRLSign, digitalSignature`, subject `CN=corebank
//!   development CA <8 hex>, O=corebank`, valid [`CA_VALIDITY_DAYS`] days.
//! - **Node** (`node.pem`, `node-key.pem`): signed by the CA, `CA:false`,
//!   extended key usages `serverAuth` and `clientAuth` (replicas call each
//!   other with it), SANs: the DNS names and IP addresses asked for (default
//!   `localhost`, `127.0.0.1`, `::1`), CN = the first of them.
//! - **Client** (`client-NAME.pem`, `client-NAME-key.pem`): signed by the CA,
//!   `CA:false`, extended key usage `clientAuth`, **CN = the client's name**,
//!   and **one URI SAN `urn:corebank:scopes:<scopes>`** with the scopes joined
//!   by commas, e.g. `urn:corebank:scopes:read,transfer`. A server reads the
//!   caller's identity from these two fields only (see
//!   [`crate::tls::peer_identity_from_certificate`]); a certificate without the
//!   scopes URI authenticates but may do nothing. Node certificates carry the
//!   URI SAN too, with the `admin` scope: replicas call each other with them.
//!
//! Private keys are PKCS#8 PEM written with mode 0600; existing files are
//! never overwritten unless asked (`force`). An existing CA in the directory
//! is reused, so more certificates can be issued later.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};

use crate::auth::{Scope, ScopeError, ScopeSet};
use crate::fsutil::{self, Access, ReadError};
use crate::names::{NameError, excerpt, validate_name};
use crate::secret::Secret;

/// The CA certificate's file name.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA private key's file name.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The default file stem of the node certificate (`node.pem`, `node-key.pem`).
pub const NODE_FILE_STEM: &str = "node";
/// A client certificate carries its scopes in a URI SAN starting with this.
pub const SCOPES_URI_PREFIX: &str = "urn:corebank:scopes:";
/// How long a new development CA is valid.
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// How long node and client certificates are valid unless asked otherwise.
pub const LEAF_VALIDITY_DAYS: u32 = 365;
/// The longest validity accepted for a node or client certificate.
pub const VALIDITY_DAYS_MAX: u32 = 3650;
/// The most DNS names in one node certificate.
pub const DNS_NAMES_MAX: usize = 32;
/// The most IP addresses in one node certificate.
pub const IP_ADDRESSES_MAX: usize = 32;
/// The most client certificates made in one go.
pub const CLIENTS_MAX: usize = 64;
/// The longest DNS name accepted.
pub const DNS_NAME_BYTES_MAX: usize = 253;
/// The largest PEM file read (certificates, keys, CA bundles).
pub const PEM_FILE_BYTES_MAX: usize = 1 << 20;
/// Certificates start this long before "now", to tolerate clock skew.
const BACKDATE: Duration = Duration::hours(1);

/// The URI SAN that carries `scopes` in a client certificate.
pub fn scopes_uri(scopes: ScopeSet) -> String {
    format!("{SCOPES_URI_PREFIX}{scopes}")
}

/// The scopes in a URI SAN, or `None` if the URI is not a scopes URI.
pub fn parse_scopes_uri(uri: &str) -> Option<Result<ScopeSet, ScopeError>> {
    uri.strip_prefix(SCOPES_URI_PREFIX)
        .map(ScopeSet::parse_list)
}

/// Why certificates could not be made, loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A client or file name is not a valid name.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// What the name is for.
        what: &'static str,
        /// The name (at most 64 characters of it).
        name: String,
        /// Why it was refused.
        reason: NameError,
    },
    /// A DNS name is not a valid host name.
    #[error(
        "invalid DNS name {name:?}: use labels of letters, digits and '-', separated by dots, \
         at most {DNS_NAME_BYTES_MAX} bytes"
    )]
    InvalidDnsName {
        /// The name (at most 64 characters of it).
        name: String,
    },
    /// A node certificate needs at least one DNS name or IP address.
    #[error("a node certificate needs at least one DNS name or IP address")]
    NoSubjectAltName,
    /// Too many names of one kind.
    #[error("{count} {what} given, the limit is {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A client given as text is not `NAME:SCOPES`.
    #[error("invalid client {spec:?}: {reason} (expected NAME:SCOPES, e.g. teller:read,transfer)")]
    InvalidClientSpec {
        /// The text (at most 64 characters of it).
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same client name twice in one request.
    #[error("client {name:?} is named twice")]
    DuplicateClient {
        /// The repeated name.
        name: String,
    },
    /// A validity period outside 1 to [`VALIDITY_DAYS_MAX`] days.
    #[error("a validity of {days} days is not allowed: use 1 to {VALIDITY_DAYS_MAX} days")]
    InvalidValidity {
        /// The number of days asked for.
        days: u32,
    },
    /// Only one of the CA certificate and the CA key exists.
    #[error(
        "{} exists but {} does not: restore it, or remove both to make a new CA",
        .present.display(), .missing.display()
    )]
    CaIncomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// Files that would be written exist already.
    #[error("refusing to overwrite existing files (--force replaces them): {}", display_paths(.paths))]
    FilesExist {
        /// The files in the way.
        paths: Vec<PathBuf>,
    },
    /// A file to read does not exist.
    #[error("{} does not exist", .path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// A file to read is larger than [`PEM_FILE_BYTES_MAX`].
    #[error("{} is {bytes} bytes, more than the {PEM_FILE_BYTES_MAX} accepted", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// A file could not be read.
    #[error("cannot read {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The CA certificate is not exactly one PEM certificate that parses.
    #[error("the CA certificate is unusable: {detail}")]
    CaUnreadable {
        /// What is wrong.
        detail: String,
    },
    /// The CA certificate is not a CA (no `CA:true` basic constraint).
    #[error(
        "the CA certificate is not a certificate authority (its basic constraints lack CA:true)"
    )]
    NotACa,
    /// The CA certificate has expired.
    #[error("the CA certificate expired at {not_after}: make a new CA")]
    CaExpired {
        /// Its expiry (RFC 3339 or a Unix time).
        not_after: String,
    },
    /// The CA key is not a PEM private key that can sign.
    #[error("the CA private key is unusable: {detail}")]
    KeyUnreadable {
        /// What is wrong.
        detail: String,
    },
    /// The CA key is not the key of the CA certificate.
    #[error("the CA private key does not belong to the CA certificate")]
    CaKeyMismatch,
    /// Making a key or a certificate failed.
    #[error("certificate generation failed: {detail}")]
    Generation {
        /// The generator's message.
        detail: String,
    },
    /// A file could not be written.
    #[error("cannot write {}: {error}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

impl CertError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "invalid_name",
            Self::InvalidDnsName { .. } => "invalid_dns_name",
            Self::NoSubjectAltName => "no_subject_alt_name",
            Self::TooMany { .. } => "too_many_names",
            Self::InvalidClientSpec { .. } => "invalid_client_spec",
            Self::DuplicateClient { .. } => "duplicate_client",
            Self::InvalidValidity { .. } => "invalid_validity",
            Self::CaIncomplete { .. } => "ca_incomplete",
            Self::FilesExist { .. } => "files_exist",
            Self::NotFound { .. } => "file_not_found",
            Self::TooLarge { .. } => "file_too_large",
            Self::Read { .. } => "read_failed",
            Self::CaUnreadable { .. } => "ca_unreadable",
            Self::NotACa => "not_a_ca",
            Self::CaExpired { .. } => "ca_expired",
            Self::KeyUnreadable { .. } => "key_unreadable",
            Self::CaKeyMismatch => "ca_key_mismatch",
            Self::Generation { .. } => "generation_failed",
            Self::Write { .. } => "write_failed",
            Self::Random => "random_failed",
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn generation(error: rcgen::Error) -> CertError {
    CertError::Generation {
        detail: error.to_string(),
    }
}

/// A client certificate to make: `NAME:SCOPES` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    /// The client's name: the certificate's CN and part of its file names.
    pub name: String,
    /// The scopes written into the certificate.
    pub scopes: ScopeSet,
}

impl ClientSpec {
    /// A client named `name` with `scopes` (at least one).
    pub fn new(name: &str, scopes: ScopeSet) -> Result<Self, CertError> {
        validate_name(name).map_err(|reason| CertError::InvalidName {
            what: "client name",
            name: excerpt(name, 64),
            reason,
        })?;
        if scopes.is_empty() {
            return Err(CertError::InvalidClientSpec {
                spec: excerpt(name, 64),
                reason: ScopeError::Empty.to_string(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            scopes,
        })
    }
}

impl FromStr for ClientSpec {
    type Err = CertError;

    /// Parses `NAME:SCOPES`, e.g. `teller:read,transfer`.
    fn from_str(text: &str) -> Result<Self, CertError> {
        let invalid = |reason: String| CertError::InvalidClientSpec {
            spec: excerpt(text, 64),
            reason,
        };
        let (name, scopes) = text
            .split_once(':')
            .ok_or_else(|| invalid("there is no ':' between name and scopes".into()))?;
        let scopes = ScopeSet::parse_list(scopes).map_err(|error| invalid(error.to_string()))?;
        Self::new(name, scopes)
    }
}

impl fmt::Display for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.scopes)
    }
}

/// The names a node certificate is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCertRequest {
    /// DNS names (SAN `dNSName`).
    pub dns_names: Vec<String>,
    /// IP addresses (SAN `iPAddress`).
    pub ip_addresses: Vec<IpAddr>,
}

impl Default for NodeCertRequest {
    /// `localhost`, `127.0.0.1` and `::1`.
    fn default() -> Self {
        Self {
            dns_names: vec!["localhost".into()],
            ip_addresses: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ],
        }
    }
}

impl NodeCertRequest {
    /// From names as typed on a command line: a name that is an IP address goes
    /// to the IP addresses. If no DNS name is given the default (`localhost`) is
    /// used; if no IP address is given, the defaults (`127.0.0.1`, `::1`).
    pub fn from_names(names: &[String], ip_addresses: &[IpAddr]) -> Self {
        let defaults = Self::default();
        let mut dns_names = Vec::new();
        let mut ips = ip_addresses.to_vec();
        for name in names {
            match name.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns_names.push(name.clone()),
            }
        }
        Self {
            dns_names: if dns_names.is_empty() {
                defaults.dns_names
            } else {
                dns_names
            },
            ip_addresses: if ips.is_empty() {
                defaults.ip_addresses
            } else {
                ips
            },
        }
    }

    fn check(&self) -> Result<(), CertError> {
        if self.dns_names.len() > DNS_NAMES_MAX {
            return Err(CertError::TooMany {
                what: "DNS names",
                count: self.dns_names.len(),
                max: DNS_NAMES_MAX,
            });
        }
        if self.ip_addresses.len() > IP_ADDRESSES_MAX {
            return Err(CertError::TooMany {
                what: "IP addresses",
                count: self.ip_addresses.len(),
                max: IP_ADDRESSES_MAX,
            });
        }
        if self.dns_names.is_empty() && self.ip_addresses.is_empty() {
            return Err(CertError::NoSubjectAltName);
        }
        for name in &self.dns_names {
            if !is_dns_name(name) {
                return Err(CertError::InvalidDnsName {
                    name: excerpt(name, 64),
                });
            }
        }
        Ok(())
    }

    /// The common name: the first DNS name, else the first IP address.
    fn common_name(&self) -> String {
        match (self.dns_names.first(), self.ip_addresses.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "corebank node".into(),
        }
    }
}

/// A host name: dot-separated labels of 1 to 63 letters, digits and `-` (not at
/// either end of a label), at most 253 bytes in all, not all digits and dots.
fn is_dns_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    !name.is_empty()
        && name.len() <= DNS_NAME_BYTES_MAX
        && name.split('.').all(label_ok)
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// A certificate just issued, with its new private key.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: Secret<String>,
}

/// A development certificate authority that can issue node and client
/// certificates.
pub struct DevCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: Secret<String>,
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("issuer", &self.issuer)
            .field("not_after", &self.not_after)
            .field("key_pem", &self.key_pem)
            .finish_non_exhaustive()
    }
}

fn validity_end(days: u32) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
    if days == 0 || days > VALIDITY_DAYS_MAX.max(CA_VALIDITY_DAYS) {
        return Err(CertError::InvalidValidity { days });
    }
    let now = OffsetDateTime::now_utc();
    let not_before = now
        .checked_sub(BACKDATE)
        .ok_or(CertError::InvalidValidity { days })?;
    let not_after = now
        .checked_add(Duration::days(i64::from(days)))
        .ok_or(CertError::InvalidValidity { days })?;
    Ok((not_before, not_after))
}

fn new_key() -> Result<KeyPair, CertError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generation)
}

impl DevCa {
    /// Makes a new CA valid for `validity_days` days (use [`CA_VALIDITY_DAYS`]).
    pub fn generate(validity_days: u32) -> Result<Self, CertError> {
        let (not_before, not_after) = validity_end(validity_days)?;
        let mut tag = [0u8; 4];
        aws_lc_rs::rand::fill(&mut tag).map_err(|_| CertError::Random)?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(
            DnType::CommonName,
            format!("corebank development CA {}", fsutil::hex(&tag)),
        );
        subject.push(DnType::OrganizationName, "corebank");
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = new_key()?;
        let cert = params.self_signed(&key).map_err(generation)?;
        let key_pem = Secret::new(key.serialize_pem());
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem,
            issuer: Issuer::new(params, key),
            not_after,
        })
    }

    /// A CA from its certificate and private key in PEM. Checks that the
    /// certificate is a CA, has not expired, and that the key is its key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let unreadable = |detail: String| CertError::CaUnreadable { detail };
        let mut certificates = CertificateDer::pem_slice_iter(cert_pem.as_bytes());
        let cert_der = match (certificates.next(), certificates.next()) {
            (Some(Ok(der)), None) => der,
            (None, _) => return Err(unreadable("no PEM CERTIFICATE section found".into())),
            (Some(Err(error)), _) => return Err(unreadable(format!("bad PEM: {error}"))),
            (Some(Ok(_)), Some(_)) => {
                return Err(unreadable(
                    "more than one certificate found, expected one".into(),
                ));
            }
        };
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|error| unreadable(format!("not an X.509 certificate: {error}")))?;
        if !x509.is_ca() {
            return Err(CertError::NotACa);
        }
        let not_after_unix = x509.validity().not_after.timestamp();
        let not_after = OffsetDateTime::from_unix_timestamp(not_after_unix)
            .map_err(|_| unreadable("its expiry date is out of range".into()))?;
        if not_after <= OffsetDateTime::now_utc() {
            return Err(CertError::CaExpired {
                not_after: not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| format!("@{not_after_unix}")),
            });
        }
        let key = KeyPair::from_pem(key_pem).map_err(|error| CertError::KeyUnreadable {
            detail: error.to_string(),
        })?;
        if key.subject_public_key_info() != x509.public_key().raw {
            return Err(CertError::CaKeyMismatch);
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|error| unreadable(error.to_string()))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            cert_der,
            key_pem: Secret::new(key_pem.to_owned()),
            issuer,
            not_after,
        })
    }

    /// Loads `ca.pem` and `ca-key.pem` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let cert = read_pem_text(&dir.join(CA_CERT_FILE))?;
        let key = Secret::new(read_pem_text(&dir.join(CA_KEY_FILE))?);
        Self::from_pem(&cert, key.expose())
    }

    /// The CA certificate, PEM (what servers and clients trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &Secret<String> {
        &self.key_pem
    }

    /// When the CA expires.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn leaf_params(
        &self,
        common_name: String,
        validity_days: u32,
    ) -> Result<CertificateParams, CertError> {
        if validity_days > VALIDITY_DAYS_MAX {
            return Err(CertError::InvalidValidity {
                days: validity_days,
            });
        }
        let (not_before, not_after) = validity_end(validity_days)?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, common_name);
        subject.push(DnType::OrganizationName, "corebank");
        params.distinguished_name = subject;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        // A certificate never outlives the CA that signed it.
        params.not_after = not_after.min(self.not_after);
        Ok(params)
    }

    fn sign(&self, params: &CertificateParams) -> Result<IssuedCert, CertError> {
        let key = new_key()?;
        let cert = params.signed_by(&key, &self.issuer).map_err(generation)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }

    /// Issues a node (server) certificate, also usable as a client certificate
    /// between replicas.
    pub fn issue_node(
        &self,
        node: &NodeCertRequest,
        validity_days: u32,
    ) -> Result<IssuedCert, CertError> {
        node.check()?;
        let mut params = self.leaf_params(node.common_name(), validity_days)?;
        for name in &node.dns_names {
            let name = rcgen::string::Ia5String::try_from(name.as_str()).map_err(|_| {
                CertError::InvalidDnsName {
                    name: excerpt(name, 64),
                }
            })?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        for ip in &node.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        // Replicas of a branch call each other with their node certificates (Raft
        // traffic, membership): that takes the admin scope.
        let uri = rcgen::string::Ia5String::try_from(scopes_uri(ScopeSet::only(Scope::Admin)))
            .map_err(generation)?;
        params.subject_alt_names.push(SanType::URI(uri));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(&params)
    }

    /// Issues a client certificate: CN = the client's name, URI SAN
    /// `urn:corebank:scopes:<scopes>`.
    pub fn issue_client(
        &self,
        client: &ClientSpec,
        validity_days: u32,
    ) -> Result<IssuedCert, CertError> {
        let client = ClientSpec::new(&client.name, client.scopes)?;
        let mut params = self.leaf_params(client.name.clone(), validity_days)?;
        let uri =
            rcgen::string::Ia5String::try_from(scopes_uri(client.scopes)).map_err(generation)?;
        params.subject_alt_names.push(SanType::URI(uri));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params)
    }
}

/// Reads a PEM file (at most [`PEM_FILE_BYTES_MAX`] bytes) as text.
pub(crate) fn read_pem_text(path: &Path) -> Result<String, CertError> {
    let bytes = fsutil::read_bounded(path, PEM_FILE_BYTES_MAX).map_err(|error| match error {
        ReadError::NotFound => CertError::NotFound {
            path: path.to_owned(),
        },
        ReadError::TooLarge { bytes } => CertError::TooLarge {
            path: path.to_owned(),
            bytes,
        },
        ReadError::Io(error) => CertError::Read {
            path: path.to_owned(),
            error,
        },
    })?;
    String::from_utf8(bytes).map_err(|_| CertError::CaUnreadable {
        detail: format!("{} is not PEM text", path.display()),
    })
}

/// What [`write_dev_certs`] should make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertsRequest {
    /// The directory to write into (created, mode 0700, if missing).
    pub out_dir: PathBuf,
    /// The node certificate to make, if any.
    pub node: Option<NodeCertRequest>,
    /// File stem of the node certificate: `STEM.pem`, `STEM-key.pem`.
    pub node_file_stem: String,
    /// The client certificates to make.
    pub clients: Vec<ClientSpec>,
    /// Validity of node and client certificates, in days.
    pub validity_days: u32,
    /// Replace files that exist.
    pub force: bool,
    /// Make a new CA even if one exists in `out_dir` (needs `force` to
    /// replace it).
    pub new_ca: bool,
}

impl DevCertsRequest {
    /// A CA (new or reused), the default node certificate, no client, in `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            node: Some(NodeCertRequest::default()),
            node_file_stem: NODE_FILE_STEM.into(),
            clients: Vec::new(),
            validity_days: LEAF_VALIDITY_DAYS,
            force: false,
            new_ca: false,
        }
    }
}

/// Where the CA came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOrigin {
    /// Made now.
    Generated,
    /// Loaded from `ca.pem` and `ca-key.pem` in the directory.
    Reused,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where.
    pub path: PathBuf,
    /// What it is, e.g. `client certificate for teller (read,transfer)`.
    pub description: String,
    /// Whether it holds a private key (mode 0600).
    pub private: bool,
}

/// What [`write_dev_certs`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertsReport {
    /// Whether the CA is new.
    pub ca: CaOrigin,
    /// Path of the CA certificate (written or reused).
    pub ca_cert: PathBuf,
    /// The files written, in order.
    pub written: Vec<WrittenFile>,
}

struct Output {
    path: PathBuf,
    description: String,
    contents: Secret<String>,
    access: Access,
}

fn exists(path: &Path) -> Result<bool, CertError> {
    path.try_exists().map_err(|error| CertError::Read {
        path: path.to_owned(),
        error,
    })
}

/// Makes (or reuses) the development CA in `request.out_dir` and issues the
/// node and client certificates asked for.
///
/// Nothing is written unless every file can be: all the paths are checked
/// before any key is made, and an existing file is an error unless `force`.
/// An existing `ca.pem` + `ca-key.pem` pair is loaded and reused (unless
/// `new_ca`); one without the other is an error.
pub fn write_dev_certs(request: &DevCertsRequest) -> Result<DevCertsReport, CertError> {
    validate_name(&request.node_file_stem).map_err(|reason| CertError::InvalidName {
        what: "node file name",
        name: excerpt(&request.node_file_stem, 64),
        reason,
    })?;
    if request.validity_days == 0 || request.validity_days > VALIDITY_DAYS_MAX {
        return Err(CertError::InvalidValidity {
            days: request.validity_days,
        });
    }
    if request.clients.len() > CLIENTS_MAX {
        return Err(CertError::TooMany {
            what: "clients",
            count: request.clients.len(),
            max: CLIENTS_MAX,
        });
    }
    let mut names = std::collections::HashSet::new();
    for client in &request.clients {
        ClientSpec::new(&client.name, client.scopes)?;
        if !names.insert(client.name.as_str()) {
            return Err(CertError::DuplicateClient {
                name: client.name.clone(),
            });
        }
    }
    if let Some(node) = &request.node {
        node.check()?;
    }

    let dir = &request.out_dir;
    let ca_cert = dir.join(CA_CERT_FILE);
    let ca_key = dir.join(CA_KEY_FILE);
    let (cert_exists, key_exists) = (exists(&ca_cert)?, exists(&ca_key)?);
    let reuse = !request.new_ca && cert_exists && key_exists;
    if !request.new_ca && cert_exists != key_exists {
        let (present, missing) = if cert_exists {
            (ca_cert, ca_key)
        } else {
            (ca_key, ca_cert)
        };
        return Err(CertError::CaIncomplete { present, missing });
    }

    let node_cert = dir.join(format!("{}.pem", request.node_file_stem));
    let node_key = dir.join(format!("{}-key.pem", request.node_file_stem));
    let mut planned: Vec<PathBuf> = Vec::new();
    if !reuse {
        planned.extend([ca_cert.clone(), ca_key.clone()]);
    }
    if request.node.is_some() {
        planned.extend([node_cert.clone(), node_key.clone()]);
    }
    for client in &request.clients {
        planned.push(dir.join(format!("client-{}.pem", client.name)));
        planned.push(dir.join(format!("client-{}-key.pem", client.name)));
    }
    if !request.force {
        let mut in_the_way = Vec::new();
        for path in &planned {
            if exists(path)? {
                in_the_way.push(path.clone());
            }
        }
        if !in_the_way.is_empty() {
            return Err(CertError::FilesExist { paths: in_the_way });
        }
    }

    fsutil::create_private_dir(dir).map_err(|error| CertError::Write {
        path: dir.clone(),
        error,
    })?;
    let (ca, origin) = if reuse {
        (DevCa::load(dir)?, CaOrigin::Reused)
    } else {
        (DevCa::generate(CA_VALIDITY_DAYS)?, CaOrigin::Generated)
    };

    let mut outputs = Vec::new();
    if origin == CaOrigin::Generated {
        outputs.push(Output {
            path: ca_cert.clone(),
            description: "CA certificate (trust this one)".into(),
            contents: Secret::new(ca.cert_pem().to_owned()),
            access: Access::Public,
        });
        outputs.push(Output {
            path: ca_key,
            description: "CA private key (keep it offline)".into(),
            contents: ca.key_pem().clone(),
            access: Access::Private,
        });
    }
    if let Some(node) = &request.node {
        let issued = ca.issue_node(node, request.validity_days)?;
        let names: Vec<String> = node
            .dns_names
            .iter()
            .cloned()
            .chain(node.ip_addresses.iter().map(IpAddr::to_string))
            .collect();
        outputs.push(Output {
            path: node_cert,
            description: format!("node certificate for {}", names.join(", ")),
            contents: Secret::new(issued.cert_pem),
            access: Access::Public,
        });
        outputs.push(Output {
            path: node_key,
            description: "node private key".into(),
            contents: issued.key_pem,
            access: Access::Private,
        });
    }
    for client in &request.clients {
        let issued = ca.issue_client(client, request.validity_days)?;
        outputs.push(Output {
            path: dir.join(format!("client-{}.pem", client.name)),
            description: format!("client certificate for {} ({})", client.name, client.scopes),
            contents: Secret::new(issued.cert_pem),
            access: Access::Public,
        });
        outputs.push(Output {
            path: dir.join(format!("client-{}-key.pem", client.name)),
            description: format!("client private key for {}", client.name),
            contents: issued.key_pem,
            access: Access::Private,
        });
    }

    let mut written = Vec::with_capacity(outputs.len());
    for output in outputs {
        fsutil::write_file(
            &output.path,
            output.contents.expose().as_bytes(),
            output.access,
            request.force,
        )
        .map_err(|error| CertError::Write {
            path: output.path.clone(),
            error,
        })?;
        written.push(WrittenFile {
            path: output.path,
            description: output.description,
            private: output.access == Access::Private,
        });
    }
    Ok(DevCertsReport {
        ca: origin,
        ca_cert,
        written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn client_specs() -> TestResult {
        let spec: ClientSpec = "teller:read,transfer".parse()?;
        assert_eq!(spec.name, "teller");
        assert_eq!(spec.scopes.to_string(), "read,transfer");
        assert_eq!(spec.to_string(), "teller:read,transfer");
        for bad in [
            "teller",
            "teller:",
            "teller:root",
            ":read",
            "../x:read",
            "a b:read",
        ] {
            assert!(bad.parse::<ClientSpec>().is_err(), "{bad:?}");
        }
        assert_eq!(scopes_uri(spec.scopes), "urn:corebank:scopes:read,transfer");
        assert_eq!(
            parse_scopes_uri("urn:corebank:scopes:admin"),
            Some(Ok(ScopeSet::only(Scope::Admin)))
        );
        assert_eq!(parse_scopes_uri("https://example.com"), None);
        Ok(())
    }

    #[test]
    fn dns_names() {
        for good in ["localhost", "node-1.bank.example", "a", "x1"] {
            assert!(is_dns_name(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a b",
            "a_b",
            "1.2.3.4",
            &"a".repeat(64),
            "é",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        let request = NodeCertRequest::from_names(&["n1.example".into(), "10.0.0.1".into()], &[]);
        assert_eq!(request.dns_names, ["n1.example"]);
        assert_eq!(request.ip_addresses, [IpAddr::from([10, 0, 0, 1])]);
        assert_eq!(
            NodeCertRequest::from_names(&[], &[]),
            NodeCertRequest::default()
        );
    }

    #[test]
    fn generate_reuse_and_refuse_to_overwrite() -> TestResult {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("certs");
        let mut request = DevCertsRequest::new(&out);
        request.clients = vec!["teller:read,transfer".parse()?];
        let report = write_dev_certs(&request)?;
        assert_eq!(report.ca, CaOrigin::Generated);
        let names: Vec<String> = report
            .written
            .iter()
            .filter_map(|file| {
                file.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect();
        assert_eq!(
            names,
            [
                "ca.pem",
                "ca-key.pem",
                "node.pem",
                "node-key.pem",
                "client-teller.pem",
                "client-teller-key.pem"
            ]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in &report.written {
                let mode = std::fs::metadata(&file.path)?.permissions().mode() & 0o777;
                if file.private {
                    assert_eq!(mode, 0o600, "{}", file.path.display());
                }
            }
        }
        let ca_before = std::fs::read_to_string(out.join(CA_CERT_FILE))?;
        let node_before = std::fs::read_to_string(out.join("node.pem"))?;

        // Again: the node certificate is in the way, and nothing changes.
        let again = write_dev_certs(&request);
        match again {
            Err(CertError::FilesExist { paths }) => assert_eq!(paths.len(), 4, "{paths:?}"),
            other => panic!("expected files_exist, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(out.join("node.pem"))?, node_before);

        // A new client from the same CA: the CA is reused.
        let mut more = DevCertsRequest::new(&out);
        more.node = None;
        more.clients = vec!["auditor:read".parse()?];
        let report = write_dev_certs(&more)?;
        assert_eq!(report.ca, CaOrigin::Reused);
        assert_eq!(report.written.len(), 2);
        assert_eq!(std::fs::read_to_string(out.join(CA_CERT_FILE))?, ca_before);

        // --force replaces the node certificate but keeps the CA.
        request.force = true;
        let report = write_dev_certs(&request)?;
        assert_eq!(report.ca, CaOrigin::Reused);
        assert_ne!(std::fs::read_to_string(out.join("node.pem"))?, node_before);
        assert_eq!(std::fs::read_to_string(out.join(CA_CERT_FILE))?, ca_before);

        // A CA without its key is an error.
        std::fs::remove_file(out.join(CA_KEY_FILE))?;
        let error = write_dev_certs(&more).err();
        assert_eq!(error.map(|e| e.code()), Some("ca_incomplete"));
        Ok(())
    }

    #[test]
    fn loading_a_ca_checks_it() -> TestResult {
        let ca = DevCa::generate(30)?;
        let other = DevCa::generate(30)?;
        let reloaded = DevCa::from_pem(ca.cert_pem(), ca.key_pem().expose())?;
        assert_eq!(reloaded.cert_der(), ca.cert_der());
        let code = |result: Result<DevCa, CertError>| result.err().map(|e| e.code());
        assert_eq!(
            code(DevCa::from_pem(ca.cert_pem(), other.key_pem().expose())),
            Some("ca_key_mismatch")
        );
        assert_eq!(
            code(DevCa::from_pem("hello", ca.key_pem().expose())),
            Some("ca_unreadable")
        );
        assert_eq!(
            code(DevCa::from_pem(ca.cert_pem(), "hello")),
            Some("key_unreadable")
        );
        let two = format!("{}{}", ca.cert_pem(), other.cert_pem());
        assert_eq!(
            code(DevCa::from_pem(&two, ca.key_pem().expose())),
            Some("ca_unreadable")
        );
        let node = ca.issue_node(&NodeCertRequest::default(), 30)?;
        assert_eq!(
            code(DevCa::from_pem(&node.cert_pem, node.key_pem.expose())),
            Some("not_a_ca")
        );
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
        assert!(!format!("{node:?}").contains("PRIVATE KEY"));
        Ok(())
    }

    #[test]
    fn issued_certificates_carry_the_convention() -> TestResult {
        let ca = DevCa::generate(30)?;
        let client = ca.issue_client(&"teller:transfer,read".parse()?, 10)?;
        let (_, x509) = x509_parser::parse_x509_certificate(&client.cert_der)?;
        let common_names: Vec<&str> = x509
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .collect();
        assert_eq!(common_names, ["teller"]);
        let uris: Vec<String> = x509
            .subject_alternative_name()?
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(uris, ["urn:corebank:scopes:read,transfer"]);
        assert!(!x509.is_ca());
        let days = (x509.validity().not_after.timestamp() - x509.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 10, "10 days plus the one-hour backdate, rounded down");

        let too_long = ca.issue_node(&NodeCertRequest::default(), VALIDITY_DAYS_MAX + 1);
        assert_eq!(too_long.err().map(|e| e.code()), Some("invalid_validity"));
        let bad = NodeCertRequest {
            dns_names: vec!["bad name".into()],
            ip_addresses: vec![],
        };
        assert_eq!(
            ca.issue_node(&bad, 1).err().map(|e| e.code()),
            Some("invalid_dns_name")
        );
        let none = NodeCertRequest {
            dns_names: vec![],
            ip_addresses: vec![],
        };
        assert_eq!(
            ca.issue_node(&none, 1).err().map(|e| e.code()),
            Some("no_subject_alt_name")
        );
        Ok(())
    }
}
