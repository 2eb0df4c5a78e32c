//! Nobody moves money anonymously: a TLS node with API keys and client certificates,
//! driven through the real binaries (`corebank certs`, `corebank keys`, `corebank node`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use corebank_proto::v1::banking_client::BankingClient;
use corebank_proto::v1::ledger_client::LedgerClient;
use corebank_proto::v1::{self};
use corebank_proto::{ApiError, ErrorCode};
use support::NodeProcess;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn corebank(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_corebank"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "corebank {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn create_key(keys: &Path, name: &str, scopes: &str) -> String {
    let keys = keys.to_str().unwrap();
    corebank(&[
        "keys", "create", "--file", keys, "--name", name, "--scopes", scopes,
    ])
    .trim()
    .to_string()
}

async fn tls_channel(
    node: &NodeProcess,
    certs: &Path,
    client: Option<&str>,
) -> Result<Channel, tonic::transport::Error> {
    let ca = Certificate::from_pem(std::fs::read(certs.join("ca.pem")).unwrap());
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name("localhost");
    if let Some(name) = client {
        let cert = std::fs::read(certs.join(format!("client-{name}.pem"))).unwrap();
        let key = std::fs::read(certs.join(format!("client-{name}-key.pem"))).unwrap();
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{}", node.grpc))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

#[derive(Clone)]
struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

fn bearer(key: Option<&str>) -> Bearer {
    Bearer(key.map(|k| format!("Bearer {k}").parse().unwrap()))
}

fn code(status: &tonic::Status) -> ErrorCode {
    ApiError::from_status(status)
        .map(|e| e.code)
        .unwrap_or_else(|| panic!("no corebank error code in {status:?}"))
}

fn open_request() -> v1::OpenAccountRequest {
    v1::OpenAccountRequest {
        customer_id: "alice".into(),
        currency: "EUR".into(),
        product: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_or_beyond_their_credentials_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let keys = dir.path().join("keys.json");
    corebank(&[
        "certs",
        "--out",
        certs.to_str().unwrap(),
        "--client",
        "auditor:read",
        "--client",
        "teller:transfer",
    ]);
    let reader = create_key(&keys, "reporting", "read");
    let teller = create_key(&keys, "teller-app", "transfer");
    let node = NodeProcess::start(
        &dir.path().join("data"),
        &[
            "--branch",
            "0001",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            certs.join("node.pem").to_str().unwrap(),
            "--tls-key",
            certs.join("node-key.pem").to_str().unwrap(),
            "--tls-ca",
            certs.join("ca.pem").to_str().unwrap(),
            "--api-keys",
            keys.to_str().unwrap(),
        ],
    )
    .unwrap();
    let channel = tls_channel(&node, &certs, None).await.unwrap();

    // No credential at all.
    let mut anonymous = BankingClient::with_interceptor(channel.clone(), bearer(None));
    assert_eq!(
        code(&anonymous.open_account(open_request()).await.unwrap_err()),
        ErrorCode::Unauthenticated
    );
    // A made-up key.
    let mut forger =
        BankingClient::with_interceptor(channel.clone(), bearer(Some("cbk_000000000000_00")));
    assert_eq!(
        code(&forger.open_account(open_request()).await.unwrap_err()),
        ErrorCode::Unauthenticated
    );
    // A read-only key may read but not open accounts or move money.
    let mut reporting = BankingClient::with_interceptor(channel.clone(), bearer(Some(&reader)));
    assert_eq!(
        code(&reporting.open_account(open_request()).await.unwrap_err()),
        ErrorCode::PermissionDenied
    );
    let mut reporting_ledger =
        LedgerClient::with_interceptor(channel.clone(), bearer(Some(&reader)));
    let transfer: v1::Transfer = corebank_ledger::Transfer {
        id: 9,
        debit_account_id: 1,
        credit_account_id: 2,
        amount: 1,
        ledger: 978,
        code: 1,
        ..Default::default()
    }
    .into();
    let refused = reporting_ledger
        .create_transfers(v1::CreateTransfersRequest {
            transfers: vec![transfer],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&refused), ErrorCode::PermissionDenied);
    let lookup = v1::LookupTransfersRequest {
        ids: vec![corebank_proto::convert::u128_field(9).unwrap()],
        consistency: 0,
    };
    assert!(
        reporting_ledger
            .lookup_transfers(lookup.clone())
            .await
            .unwrap()
            .get_ref()
            .transfers
            .is_empty(),
        "a refused call changed nothing"
    );

    // The teller key may open an account.
    let mut tellers = BankingClient::with_interceptor(channel.clone(), bearer(Some(&teller)));
    let account = tellers
        .open_account(open_request())
        .await
        .unwrap()
        .into_inner()
        .account_number;
    let balance = v1::GetBalanceRequest {
        account_number: account.clone(),
        consistency: 0,
    };
    assert_eq!(
        reporting
            .get_balance(balance.clone())
            .await
            .unwrap()
            .get_ref()
            .posted,
        "0.00"
    );

    // Revoked and reloaded (SIGHUP): refused from then on.
    let teller_id = teller.split('_').nth(1).unwrap().to_string();
    corebank(&[
        "keys",
        "revoke",
        "--file",
        keys.to_str().unwrap(),
        "--id",
        &teller_id,
    ]);
    Command::new("kill")
        .arg("-HUP")
        .arg(node.child.id().to_string())
        .status()
        .unwrap();
    let mut revoked = false;
    for _ in 0..100 {
        if let Err(status) = tellers.open_account(open_request()).await {
            assert_eq!(code(&status), ErrorCode::Unauthenticated);
            revoked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(revoked, "a revoked key kept working after the reload");

    // Mutual TLS: the certificate is the credential, with the scopes it carries.
    let auditor = tls_channel(&node, &certs, Some("auditor")).await.unwrap();
    let mut auditor_ledger = LedgerClient::new(auditor);
    assert!(auditor_ledger.lookup_transfers(lookup).await.is_ok());
    let refused = auditor_ledger
        .create_transfers(v1::CreateTransfersRequest {
            transfers: vec![transfer],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(&refused), ErrorCode::PermissionDenied);
    let teller_cert = tls_channel(&node, &certs, Some("teller")).await.unwrap();
    let mut teller_banking = BankingClient::new(teller_cert);
    assert!(teller_banking.get_balance(balance).await.is_ok());

    // Plain TCP against the TLS port gets nowhere, and the node stays up.
    let plain = Channel::from_shared(format!("http://{}", node.grpc))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut plain = BankingClient::new(plain);
        assert!(plain.open_account(open_request()).await.is_err());
    }
    assert!(
        reporting
            .get_balance(v1::GetBalanceRequest {
                account_number: account,
                consistency: 0
            })
            .await
            .is_ok()
    );
    node.stop();
}

#[test]
fn insecure_mode_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let refused = NodeProcess::start(
        dir.path(),
        &["--branch", "0001", "--listen", "0.0.0.0:0", "--insecure"],
    );
    let message = refused
        .err()
        .expect("an insecure node listened on every interface");
    assert!(message.contains("loopback"), "{message}");
}

#[test]
fn a_node_without_tls_or_insecure_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let refused = NodeProcess::start(dir.path(), &["--branch", "0001", "--listen", "127.0.0.1:0"]);
    assert!(
        refused
            .err()
            .expect("started without TLS")
            .contains("TLS needs")
    );
}
