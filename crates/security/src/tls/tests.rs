//! Real TLS 1.3 handshakes between rustls clients and servers configured by
//! this module, in memory (byte buffers) and over a loopback socket.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ConnectionCommon, ProtocolVersion, ServerConnection};

use super::*;
use crate::auth::{Authenticator, Scope};
use crate::certs::{DevCertsRequest, write_dev_certs};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Which side refused the handshake, and why.
#[derive(Debug)]
enum Refused {
    ByServer(rustls::Error),
    ByClient(rustls::Error),
    Stalled,
}

/// Moves every pending TLS record from `from` to `to`; an error is `to`'s.
fn pump<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> Result<usize, rustls::Error> {
    let mut records = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut records)
            .map_err(|error| rustls::Error::General(error.to_string()))?;
    }
    let mut rest = &records[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest)
            .map_err(|error| rustls::Error::General(error.to_string()))?;
        to.process_new_packets()?;
    }
    Ok(records.len())
}

fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), Refused> {
    for _ in 0..16 {
        let to_server = pump(client, server).map_err(Refused::ByServer)?;
        let to_client = pump(server, client).map_err(Refused::ByClient)?;
        if to_server == 0 && to_client == 0 && !client.is_handshaking() && !server.is_handshaking()
        {
            return Ok(());
        }
    }
    Err(Refused::Stalled)
}

struct Pki {
    _dir: tempfile::TempDir,
    ours: std::path::PathBuf,
    theirs: std::path::PathBuf,
}

/// Two independent development CAs, each with a node certificate and clients.
fn pki() -> Result<Pki, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let ours = dir.path().join("ours");
    let mut request = DevCertsRequest::new(&ours);
    request.clients = vec!["teller:read,transfer".parse()?, "ops:admin".parse()?];
    write_dev_certs(&request)?;
    let theirs = dir.path().join("theirs");
    let mut request = DevCertsRequest::new(&theirs);
    request.clients = vec!["teller:admin".parse()?];
    write_dev_certs(&request)?;
    Ok(Pki {
        _dir: dir,
        ours,
        theirs,
    })
}

fn server(dir: &Path) -> Result<ServerConnection, Box<dyn std::error::Error>> {
    let config = server_config_from_files(
        &dir.join("node.pem"),
        &dir.join("node-key.pem"),
        Some(&dir.join("ca.pem")),
    )?;
    Ok(ServerConnection::new(Arc::new(config))?)
}

fn client(
    ca_dir: &Path,
    identity: Option<(&Path, &str)>,
) -> Result<ClientConnection, Box<dyn std::error::Error>> {
    let cert;
    let key;
    let identity = match identity {
        Some((dir, name)) => {
            cert = dir.join(format!("client-{name}.pem"));
            key = dir.join(format!("client-{name}-key.pem"));
            Some((cert.as_path(), key.as_path()))
        }
        None => None,
    };
    let config = client_config_from_files(&ca_dir.join("ca.pem"), identity)?;
    Ok(ClientConnection::new(
        Arc::new(config),
        ServerName::try_from("localhost")?,
    )?)
}

#[test]
fn client_certificate_identifies_the_caller() -> TestResult {
    let pki = pki()?;
    let mut server = server(&pki.ours)?;
    let mut client = client(&pki.ours, Some((&pki.ours, "teller")))?;
    handshake(&mut client, &mut server).map_err(|refused| format!("{refused:?}"))?;

    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(server.alpn_protocol(), Some(ALPN_H2));

    let authenticator = Authenticator::new(None);
    // The certificate wins over any header.
    let identity =
        authenticator.authenticate(Some("Bearer whatever"), server.peer_certificates())?;
    assert_eq!(identity.name, "teller");
    assert_eq!(identity.scopes.to_string(), "read,transfer");
    assert_eq!(identity.method, AuthMethod::ClientCertificate);
    assert!(!identity.credential_id.is_empty());
    assert_eq!(identity.require(Scope::Transfer), Ok(()));
    assert_eq!(
        identity.require(Scope::Admin).map_err(|e| e.code()),
        Err("permission_denied")
    );

    // Application data flows both ways.
    client.writer().write_all(b"ping")?;
    pump(&mut client, &mut server)?;
    let mut received = [0u8; 4];
    server.reader().read_exact(&mut received)?;
    assert_eq!(&received, b"ping");
    Ok(())
}

#[test]
fn client_without_certificate_connects_and_needs_an_api_key() -> TestResult {
    let pki = pki()?;
    let mut server = server(&pki.ours)?;
    let mut client = client(&pki.ours, None)?;
    handshake(&mut client, &mut server).map_err(|refused| format!("{refused:?}"))?;
    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert!(server.peer_certificates().is_none());
    let authenticator = Authenticator::new(None);
    assert_eq!(
        authenticator.authenticate(None, server.peer_certificates()),
        Err(AuthError::Unauthenticated)
    );
    Ok(())
}

#[test]
fn client_certificate_from_another_ca_is_refused() -> TestResult {
    let pki = pki()?;
    let mut server = server(&pki.ours)?;
    // Trusts our server, but presents a certificate made by another CA.
    let mut client = client(&pki.ours, Some((&pki.theirs, "teller")))?;
    match handshake(&mut client, &mut server) {
        Err(Refused::ByServer(rustls::Error::InvalidCertificate(_))) => {}
        other => {
            return Err(
                format!("expected the server to refuse the certificate, got {other:?}").into(),
            );
        }
    }
    assert!(server.peer_certificates().is_none() || server.is_handshaking());
    Ok(())
}

#[test]
fn server_certificate_from_another_ca_is_refused() -> TestResult {
    let pki = pki()?;
    let mut server = server(&pki.theirs)?;
    let mut client = client(&pki.ours, None)?;
    match handshake(&mut client, &mut server) {
        Err(Refused::ByClient(rustls::Error::InvalidCertificate(_))) => Ok(()),
        other => Err(format!("expected the client to refuse the server, got {other:?}").into()),
    }
}

#[test]
fn tls_1_2_is_refused() -> TestResult {
    let pki = pki()?;
    let mut server = server(&pki.ours)?;
    let roots = load_roots(&pki.ours.join("ca.pem"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut client = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost")?)?;
    match handshake(&mut client, &mut server) {
        Err(Refused::ByServer(rustls::Error::PeerIncompatible(_))) => Ok(()),
        other => Err(format!("expected the server to refuse TLS 1.2, got {other:?}").into()),
    }
}

#[test]
fn node_certificate_between_replicas_carries_the_admin_scope() -> TestResult {
    let pki = pki()?;
    let mut server = server(&pki.ours)?;
    let config = client_config_from_files(
        &pki.ours.join("ca.pem"),
        Some((&pki.ours.join("node.pem"), &pki.ours.join("node-key.pem"))),
    )?;
    let mut client = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost")?)?;
    handshake(&mut client, &mut server).map_err(|refused| format!("{refused:?}"))?;
    let identity = Authenticator::new(None).authenticate(None, server.peer_certificates())?;
    assert_eq!(identity.name, "localhost");
    // Replicas send Raft traffic and membership changes to each other.
    assert_eq!(identity.require(Scope::Admin).map_err(|e| e.code()), Ok(()));
    Ok(())
}

#[test]
fn handshake_over_loopback_tcp() -> TestResult {
    let pki = pki()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let server_side = server(&pki.ours)?;
    let server_thread = std::thread::spawn(move || -> Result<(String, Vec<u8>), String> {
        let (socket, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(server_side, socket);
        let mut request = [0u8; 5];
        stream.read_exact(&mut request).map_err(|e| e.to_string())?;
        let name = Authenticator::new(None)
            .authenticate(None, stream.conn.peer_certificates())
            .map_err(|e| e.to_string())?
            .name;
        stream.write_all(b"pong").map_err(|e| e.to_string())?;
        stream.conn.send_close_notify();
        stream.flush().map_err(|e| e.to_string())?;
        Ok((name, request.to_vec()))
    });
    let connection = client(&pki.ours, Some((&pki.ours, "ops")))?;
    let socket = std::net::TcpStream::connect(address)?;
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(b"hello")?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    assert_eq!(reply, b"pong");
    let (name, request) = server_thread
        .join()
        .map_err(|_| "server thread panicked")??;
    assert_eq!((name.as_str(), request.as_slice()), ("ops", &b"hello"[..]));
    Ok(())
}

#[test]
fn loading_errors_are_precise() -> TestResult {
    let pki = pki()?;
    let dir = &pki.ours;
    let code = |result: Result<ServerConfig, TlsError>| result.err().map(|error| error.code());
    let ca = dir.join("ca.pem");
    let cert = dir.join("node.pem");
    let key = dir.join("node-key.pem");

    assert_eq!(
        code(server_config_from_files(
            &dir.join("absent.pem"),
            &key,
            None
        )),
        Some("file_not_found")
    );
    assert_eq!(
        code(server_config_from_files(
            &cert,
            &dir.join("absent.pem"),
            None
        )),
        Some("file_not_found")
    );
    assert_eq!(
        code(server_config_from_files(
            &cert,
            &key,
            Some(&dir.join("nope.pem"))
        )),
        Some("file_not_found")
    );

    let text = dir.join("text.pem");
    std::fs::write(&text, "hello, not PEM\n")?;
    assert_eq!(
        code(server_config_from_files(&text, &key, None)),
        Some("no_certificate")
    );
    assert_eq!(
        code(server_config_from_files(&cert, &text, None)),
        Some("no_private_key")
    );
    // A key where the certificate should be, and the other way round.
    assert_eq!(
        code(server_config_from_files(&key, &key, None)),
        Some("no_certificate")
    );
    assert_eq!(
        code(server_config_from_files(&cert, &cert, None)),
        Some("no_private_key")
    );

    let broken = dir.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )?;
    assert_eq!(
        code(server_config_from_files(&broken, &key, None)),
        Some("not_pem")
    );
    let truncated = dir.join("truncated.pem");
    std::fs::write(&truncated, "-----BEGIN CERTIFICATE-----\nAAAA\n")?;
    assert_eq!(
        code(server_config_from_files(&truncated, &key, None)),
        Some("not_pem")
    );

    // The key of another certificate.
    let client_key = dir.join("client-teller-key.pem");
    let mismatch = server_config_from_files(&cert, &client_key, None);
    assert_eq!(code(mismatch), Some("key_mismatch"));

    let huge = dir.join("huge.pem");
    std::fs::write(&huge, vec![b'A'; PEM_FILE_BYTES_MAX + 1])?;
    assert_eq!(
        code(server_config_from_files(&huge, &key, None)),
        Some("file_too_large")
    );

    // Without a client CA, no client certificate is requested at all.
    let config = server_config_from_files(&cert, &key, None)?;
    let mut server = ServerConnection::new(Arc::new(config))?;
    let mut client = client(dir, Some((dir, "teller")))?;
    handshake(&mut client, &mut server).map_err(|refused| format!("{refused:?}"))?;
    assert!(server.peer_certificates().is_none());

    assert!(client_config_from_files(&ca, None).is_ok());
    Ok(())
}

#[test]
fn peer_identity_rejects_malformed_certificates() -> TestResult {
    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    assert_eq!(
        peer_identity_from_certificate(&garbage),
        Err(AuthError::InvalidCredential {
            reason: InvalidCredential::CertificateUnreadable
        })
    );
    // A certificate whose CN is not a valid name.
    let ca = crate::certs::DevCa::generate(1)?;
    let reloaded = crate::certs::DevCa::from_pem(ca.cert_pem(), ca.key_pem().expose())?;
    let ca_identity = peer_identity_from_certificate(reloaded.cert_der());
    assert_eq!(
        ca_identity,
        Err(AuthError::InvalidCredential {
            reason: InvalidCredential::CertificateName
        }),
        "the CA's CN has spaces"
    );
    Ok(())
}
