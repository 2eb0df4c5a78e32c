//! The gateway over TLS 1.3 (rustls): a client trusting the bank's CA gets the API
//! with HSTS; a plain-text client gets nothing; plain HTTP is refused off loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use corebank_gateway::{ConfigError, GatewayConfig, StartError};
use corebank_security::certs::{DevCa, NodeCertRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_gateway_speaks_tls_with_hsts_and_refuses_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::generate(30).unwrap();
    let node =
        NodeCertRequest::from_names(&["localhost".to_owned()], &["127.0.0.1".parse().unwrap()]);
    let issued = ca.issue_node(&node, 30).unwrap();
    let cert = dir.path().join("gateway.pem");
    let key = dir.path().join("gateway-key.pem");
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.expose()).unwrap();

    let mut config = GatewayConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        vec!["127.0.0.1:9".into()],
        dir.path().join("data"),
    );
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    let gateway = corebank_gateway::start(config).await.unwrap();
    assert!(gateway.url().starts_with("https://"));

    let mut roots = corebank_security::rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let mut client = corebank_security::tls::client_config(roots, None).unwrap();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(gateway.addr())
        .await
        .unwrap();
    let name = corebank_security::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(corebank_security::rustls::ProtocolVersion::TLSv1_3)
    );
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );

    // Plain text to the TLS port: no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(gateway.addr())
        .await
        .unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut bytes),
    )
    .await;
    assert!(!String::from_utf8_lossy(&bytes).contains("HTTP/1.1 200"));
    gateway.shutdown().await;

    // Plain HTTP off loopback is refused before anything starts.
    let open = GatewayConfig::new(
        "0.0.0.0:0".parse().unwrap(),
        vec!["127.0.0.1:9".into()],
        dir.path().join("other"),
    );
    assert!(matches!(
        corebank_gateway::start(open).await,
        Err(StartError::Config(ConfigError::PlainNotLoopback(_)))
    ));
}
