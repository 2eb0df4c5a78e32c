//! `corebank client`: talk to a branch node from the command line, through
//! `corebank-client`: banking operations (account numbers, decimal amounts,
//! idempotency keys) and ledger lookups.
//!
//! Output is a readable table by default and exactly one JSON object with
//! `--json`. A failure exits non-zero with `error: <code>: <sentence>` on stderr
//! (and `{"error": {...}}` on stdout with `--json`). Amounts are decimal strings,
//! never floats; ids and nanosecond timestamps are decimal strings too, since
//! they do not fit in a JSON number that every reader handles exactly.

mod format;
mod risk;

use std::collections::HashSet;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use corebank_account_number::{AccountNumber, BankPrefix};
use corebank_client::{Client, ClientConfig, ClientError, TlsSettings, new_idempotency_key, v1};
use corebank_ledger::{Account, Transfer};
use corebank_money::Currency;
use corebank_proto::convert::u128_of;
use corebank_security::Secret;
use serde_json::{Value, json};

use format::{Align, Table, pairs, rfc3339, rfc3339_seconds};

const CLIENT_HELP: &str = "Examples:\n  \
    corebank client --server 127.0.0.1:8080 --insecure open-account --customer c-42 --currency EUR\n  \
    corebank client --insecure deposit XC68CORE00010000001000 100.00\n  \
    corebank client --insecure --json transfer XC68CORE00010000001000 XC41CORE00010000001001 30.25 --idempotency-key pay-0001\n  \
    corebank client --server branch-0001.bank.example:8080 --tls-ca ca.pem balance XC68CORE00010000001000\n\n\
    Connection: --insecure speaks plain TCP to a node started with --insecure; otherwise TLS 1.3,\n\
    which needs --tls-ca (the CA that signed the node's certificate), optionally a client certificate\n\
    (--tls-cert/--tls-key). The API key comes from --api-key or COREBANK_API_KEY and is never printed.\n\n\
    Output: tables by default; with --json exactly one JSON object on stdout. Amounts, ids and\n\
    nanosecond timestamps are strings. Errors: 'error: <code>: <sentence>' on stderr, and with --json\n\
    {\"error\": {\"code\", \"message\", ...}} on stdout. Exit status: 0 done, 1 refused or failed,\n\
    2 bad command line, 3 outcome unknown (timeout, lost connection: repeat the command with the\n\
    same --idempotency-key to find out; the error says which key was used).";

/// `corebank client ...`.
#[derive(Debug, clap::Args)]
#[command(after_help = CLIENT_HELP)]
pub struct ClientArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Print exactly one JSON object on stdout (errors included) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// The branch node's gRPC address, host:port.
    #[arg(
        long,
        value_name = "ADDR",
        env = "COREBANK_SERVER",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// Plain TCP (HTTP/2 without TLS), for a node started with --insecure.
    #[arg(long, global = true, conflicts_with_all = ["tls_ca", "tls_cert", "tls_key", "server_name"])]
    insecure: bool,
    /// The CA (PEM) to trust for the node's certificate; required unless --insecure.
    #[arg(long, value_name = "FILE", global = true)]
    tls_ca: Option<PathBuf>,
    /// A client certificate chain (PEM) for mutual TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", global = true, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", global = true, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The name to verify the node's certificate against [default: the host, or
    /// localhost when --server is an IP address].
    #[arg(long, value_name = "NAME", global = true)]
    server_name: Option<String>,
    /// An API key (cbk_...), sent as 'authorization: Bearer <key>'. Never printed.
    #[arg(
        long,
        value_name = "KEY",
        env = "COREBANK_API_KEY",
        hide_env_values = true,
        global = true
    )]
    api_key: Option<Secret<String>>,
    /// The most time one command may take, retries included [default: 30].
    #[arg(long, value_name = "SECONDS", global = true,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    timeout: Option<u64>,
}

#[derive(Debug, clap::Subcommand)]
enum ClientCommand {
    /// Open a customer account; prints its account number.
    OpenAccount(OpenAccountArgs),
    /// Money paid in: branch cash -> ACCOUNT.
    Deposit(MoveArgs),
    /// Money paid out: ACCOUNT -> branch cash (insufficient_funds if not available).
    Withdraw(MoveArgs),
    /// A payment from one account of the branch to another.
    Transfer(TransferArgs),
    /// The account's balances: posted, pending (held), available.
    Balance(AccountArgs),
    /// The account's movements (statement), oldest first.
    History(HistoryArgs),
    /// Reserve an amount on an account (a pending transfer); prints the hold id.
    PlaceHold(PlaceHoldArgs),
    /// Post a hold, all of it or AMOUNT (the rest is released).
    CaptureHold(CaptureHoldArgs),
    /// Void a hold: the money is available again.
    ReleaseHold(HoldArgs),
    /// Ledger accounts by id (decimal) or account number; unknown ones are listed as not found.
    LookupAccount(LookupArgs),
    /// Ledger transfers by id (decimal); unknown ones are listed as not found.
    LookupTransfer(LookupArgs),
    /// The branch's replicas as the replica at --server sees them: leader, members,
    /// log and applied indexes, state digest.
    ClusterStatus,
    /// Add a replica to the branch (admin): started with --join, it catches up, then votes.
    AddReplica(AddReplicaArgs),
    /// Remove a replica from the branch (admin). To replace a dead replica: add the new
    /// one, then remove the dead one.
    RemoveReplica(RemoveReplicaArgs),
    /// Transfers the fraud screen held for review, oldest first.
    Held(risk::HeldArgs),
    /// Release (post) or reject (void) a held transfer (admin).
    Review(risk::ReviewArgs),
    /// Freeze an account: it can receive but not send money (admin).
    Freeze(risk::FreezeArgs),
    /// Unfreeze an account (admin).
    Unfreeze(risk::FreezeArgs),
    /// Frozen accounts.
    Frozen,
    /// The branch's risk journal (held, declined, frozen, released, rejected) from a
    /// sequence number on.
    RiskEvents(risk::EventsArgs),
    /// The fraud screen's state: counters, thresholds, model and rules.
    RiskStatus,
    /// Put a new model file in service on the branch without a restart (admin).
    LoadModel(risk::LoadModelArgs),
}

#[derive(Debug, clap::Args)]
struct AddReplicaArgs {
    /// The new replica's node id (unique in the branch, never reused).
    #[arg(long, value_name = "ID")]
    node_id: u64,
    /// The new replica's gRPC address as the others dial it (its --advertise).
    #[arg(long, value_name = "HOST:PORT")]
    address: String,
}

#[derive(Debug, clap::Args)]
struct RemoveReplicaArgs {
    /// The node id of the replica to remove.
    #[arg(long, value_name = "ID")]
    node_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ProductArg {
    Current,
    Savings,
}

#[derive(Debug, clap::Args)]
struct OpenAccountArgs {
    /// The bank's identifier of the customer.
    #[arg(long, value_name = "ID")]
    customer: String,
    /// ISO 4217 code, e.g. EUR.
    #[arg(long, value_name = "CODE")]
    currency: String,
    /// The kind of account.
    #[arg(long, value_enum, default_value = "current")]
    product: ProductArg,
}

#[derive(Debug, clap::Args)]
struct MoveArgs {
    /// The account number.
    account: String,
    /// A decimal amount in the account's currency, e.g. 12.34.
    #[arg(allow_negative_numbers = true)]
    amount: String,
    /// Repeat a command with the same key to make sure the money moves once
    /// [default: a new random key, printed with the receipt].
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Free text for the statement (at most 140 characters).
    #[arg(long, value_name = "TEXT")]
    reference: Option<String>,
}

#[derive(Debug, clap::Args)]
struct TransferArgs {
    /// The account debited.
    from: String,
    /// The account credited.
    to: String,
    /// A decimal amount, e.g. 12.34.
    #[arg(allow_negative_numbers = true)]
    amount: String,
    /// See `deposit --help`.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Free text for both statements (at most 140 characters).
    #[arg(long, value_name = "TEXT")]
    reference: Option<String>,
    /// A fee charged to FROM on top of the amount (all or nothing with the payment).
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    fee: Option<String>,
    #[command(flatten)]
    context: risk::ContextArgs,
}

#[derive(Debug, clap::Args)]
struct AccountArgs {
    /// The account number.
    account: String,
}

#[derive(Debug, clap::Args)]
struct HistoryArgs {
    /// The account number.
    account: String,
    /// The most entries to show.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    limit: u32,
    /// Newest first.
    #[arg(long)]
    newest_first: bool,
}

#[derive(Debug, clap::Args)]
struct PlaceHoldArgs {
    /// The account whose money is reserved.
    account: String,
    /// A decimal amount, e.g. 12.34.
    #[arg(allow_negative_numbers = true)]
    amount: String,
    /// Seconds until the hold expires by itself [default: the branch's].
    #[arg(long, value_name = "N", default_value_t = 0)]
    timeout_seconds: u32,
    /// See `deposit --help`.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Free text, e.g. the merchant (at most 140 characters).
    #[arg(long, value_name = "TEXT")]
    reference: Option<String>,
    /// The account credited when the hold is captured [default: the branch's settlement account].
    #[arg(long, value_name = "ACCOUNT")]
    to_account: Option<String>,
}

#[derive(Debug, clap::Args)]
struct CaptureHoldArgs {
    /// The hold id (decimal), as printed by place-hold.
    hold_id: String,
    /// The amount to capture [default: all of it].
    #[arg(allow_negative_numbers = true)]
    amount: Option<String>,
}

#[derive(Debug, clap::Args)]
struct HoldArgs {
    /// The hold id (decimal), as printed by place-hold.
    hold_id: String,
}

#[derive(Debug, clap::Args)]
struct LookupArgs {
    /// Decimal ledger ids (lookup-account also takes account numbers).
    #[arg(required = true, num_args = 1..)]
    ids: Vec<String>,
}

/// What a command prints when it succeeds: one JSON object, or text.
struct Output {
    json: Value,
    text: String,
}

/// Why a command failed (boxed: it travels in every `Result` of this module).
#[derive(Debug, Default)]
struct Failure(Box<FailureInfo>);

impl std::ops::Deref for Failure {
    type Target = FailureInfo;
    fn deref(&self) -> &FailureInfo {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut FailureInfo {
        &mut self.0
    }
}

/// Why a command failed, in the words of `corebank-client`'s error codes.
#[derive(Debug, Default)]
struct FailureInfo {
    code: String,
    message: String,
    reason: String,
    field: String,
    leader: Option<String>,
    outcome_unknown: bool,
    /// The idempotency key the command used, for repeating it after an unknown outcome.
    idempotency_key: Option<String>,
}

impl Failure {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Self(Box::new(FailureInfo {
            code: code.to_owned(),
            message: message.into(),
            ..FailureInfo::default()
        }))
    }

    fn with_reason(mut self, reason: &str) -> Self {
        reason.clone_into(&mut self.reason);
        self
    }

    fn with_key(mut self, key: &str) -> Self {
        self.idempotency_key = Some(key.to_owned());
        self
    }

    /// The one line for stderr (after `error: `).
    fn sentence(&self) -> String {
        let mut sentence = format!("{}: {}", self.code, self.message);
        if let Some(leader) = &self.leader {
            sentence.push_str(&format!(" (the leader is {leader})"));
        }
        if self.outcome_unknown {
            match &self.idempotency_key {
                Some(key) => sentence.push_str(&format!(
                    " (the outcome is unknown: repeat the command with --idempotency-key {key} to find out)"
                )),
                None => sentence.push_str(" (the outcome is unknown)"),
            }
        }
        sentence
    }

    fn to_json(&self) -> Value {
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        if !self.reason.is_empty() {
            error.insert("reason".into(), json!(self.reason));
        }
        if !self.field.is_empty() {
            error.insert("field".into(), json!(self.field));
        }
        if let Some(leader) = &self.leader {
            error.insert("leader".into(), json!(leader));
        }
        if self.outcome_unknown {
            error.insert("outcome_unknown".into(), json!(true));
            if let Some(key) = &self.idempotency_key {
                error.insert("idempotency_key".into(), json!(key));
            }
        }
        json!({ "error": error })
    }

    fn exit_code(&self) -> u8 {
        if self.outcome_unknown { 3 } else { 1 }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        let outcome_unknown = error.outcome_unknown();
        if let Some(api) = error.api_error() {
            return Self(Box::new(FailureInfo {
                code: api.code.as_str().to_owned(),
                message: if api.message.is_empty() {
                    api.code.description().to_owned()
                } else {
                    api.message.clone()
                },
                reason: api.reason.clone(),
                field: api.field.clone(),
                leader: api.leader.clone(),
                outcome_unknown,
                idempotency_key: None,
            }));
        }
        let (reason, field) = match &error {
            ClientError::Tls { reason, .. } => ((*reason).to_owned(), String::new()),
            ClientError::InvalidInput { field, reason, .. } => {
                ((*reason).to_owned(), field.clone())
            }
            ClientError::Config { field, .. } => (String::new(), (*field).to_owned()),
            _ => (String::new(), String::new()),
        };
        Self(Box::new(FailureInfo {
            code: error.code().to_owned(),
            message: error.to_string(),
            reason,
            field,
            leader: None,
            outcome_unknown,
            idempotency_key: None,
        }))
    }
}

pub fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async move {
        let config = client_config(&args.connection)?;
        // Nothing was sent before the connection stood: never an unknown outcome.
        let client = Client::connect(config.clone()).await.map_err(|error| {
            let mut failure = Failure::from(error);
            failure.outcome_unknown = false;
            failure
        })?;
        execute(&client, &config, args.command).await
    });
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (`| head`) is not worth a panic.
    match outcome {
        Ok(output) => {
            if json {
                let _ = writeln!(stdout, "{}", output.json);
            } else {
                let _ = write!(stdout, "{}", output.text);
            }
            let _ = stdout.flush();
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            if json {
                let _ = writeln!(stdout, "{}", failure.to_json());
                let _ = stdout.flush();
            }
            eprintln!("error: {}", failure.sentence());
            Ok(ExitCode::from(failure.exit_code()))
        }
    }
}

// ------------------------------------------------------------------ connection

/// Splits an optional `http://` / `https://` off the address.
fn split_scheme(server: &str) -> (Option<&str>, &str) {
    for scheme in ["http", "https"] {
        if let Some(rest) = server
            .get(..scheme.len() + 3)
            .filter(|prefix| prefix.eq_ignore_ascii_case(&format!("{scheme}://")))
            .and_then(|_| server.get(scheme.len() + 3..))
        {
            return (Some(scheme), rest);
        }
    }
    (None, server)
}

/// Whether the host of `host:port` (or `[v6]:port`) is an IP address.
fn host_is_ip(address: &str) -> bool {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => address,
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse::<IpAddr>().is_ok()
}

fn client_config(args: &ConnectionArgs) -> Result<ClientConfig, Failure> {
    let invalid = |message: String| Failure::new("invalid_config", message);
    let (scheme, address) = split_scheme(args.server.trim());
    let address = address.trim_end_matches('/');
    if address.is_empty() {
        return Err(invalid(
            "--server needs an address like 127.0.0.1:8080".into(),
        ));
    }
    let mut config = if args.insecure {
        if scheme == Some("https") {
            return Err(invalid(format!(
                "--insecure speaks plain TCP, but --server {} asks for https",
                args.server
            )));
        }
        ClientConfig::new(format!("http://{address}"))
    } else {
        let Some(ca) = &args.tls_ca else {
            return Err(invalid(
                "TLS needs a CA to trust: pass --tls-ca FILE (the CA that signed the node's \
                 certificate), or --insecure for a development node started with --insecure"
                    .into(),
            ));
        };
        if scheme == Some("http") {
            return Err(invalid(format!(
                "--server {} asks for plain http: add --insecure (development nodes only) or use https",
                args.server
            )));
        }
        let mut tls = TlsSettings::new(ca);
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            tls = tls.with_client_cert(cert, key);
        }
        match &args.server_name {
            Some(name) => tls = tls.with_server_name(name),
            None if host_is_ip(address) => tls = tls.with_server_name("localhost"),
            None => {}
        }
        ClientConfig::new(format!("https://{address}")).with_tls(tls)
    };
    config.api_key = args.api_key.clone();
    if let Some(seconds) = args.timeout {
        let total = Duration::from_secs(seconds);
        config = config
            .with_total_timeout(total)
            .with_request_timeout(total.min(Duration::from_secs(10)))
            .with_connect_timeout(total.min(Duration::from_secs(5)));
    }
    Ok(config)
}

// ------------------------------------------------------------------ commands

async fn execute(
    client: &Client,
    config: &ClientConfig,
    command: ClientCommand,
) -> Result<Output, Failure> {
    match command {
        ClientCommand::OpenAccount(args) => open_account(client, args).await,
        ClientCommand::Deposit(args) => {
            let key = key_or_new(args.idempotency_key);
            let request = v1::DepositRequest {
                account_number: args.account,
                amount: args.amount,
                idempotency_key: key.clone(),
                reference: args.reference.unwrap_or_default(),
                context: None,
            };
            match client.deposit_with(request).await {
                Ok(receipt) => Ok(transfer_receipt(&receipt, &key)),
                Err(error) => Err(Failure::from(error).with_key(&key)),
            }
        }
        ClientCommand::Withdraw(args) => {
            let key = key_or_new(args.idempotency_key);
            let request = v1::WithdrawRequest {
                account_number: args.account,
                amount: args.amount,
                idempotency_key: key.clone(),
                reference: args.reference.unwrap_or_default(),
                context: None,
            };
            match client.withdraw_with(request).await {
                Ok(receipt) => Ok(transfer_receipt(&receipt, &key)),
                Err(error) => Err(Failure::from(error).with_key(&key)),
            }
        }
        ClientCommand::Transfer(args) => {
            let key = key_or_new(args.idempotency_key);
            let request = v1::TransferRequest {
                from_account: args.from,
                to_account: args.to,
                amount: args.amount,
                idempotency_key: key.clone(),
                reference: args.reference.unwrap_or_default(),
                fee: args.fee.unwrap_or_default(),
                context: args.context.to_proto()?,
            };
            match client.transfer_with(request).await {
                Ok(receipt) => Ok(transfer_receipt(&receipt, &key)),
                Err(error) => Err(Failure::from(error).with_key(&key)),
            }
        }
        ClientCommand::Balance(args) => balance(client, &args.account).await,
        ClientCommand::History(args) => history(client, args).await,
        ClientCommand::PlaceHold(args) => {
            let key = key_or_new(args.idempotency_key);
            let request = v1::PlaceHoldRequest {
                account_number: args.account,
                amount: args.amount,
                idempotency_key: key.clone(),
                timeout_seconds: args.timeout_seconds,
                reference: args.reference.unwrap_or_default(),
                to_account: args.to_account.unwrap_or_default(),
            };
            match client.place_hold_with(request).await {
                Ok(receipt) => Ok(hold_receipt(&receipt, Some(&key))),
                Err(error) => Err(Failure::from(error).with_key(&key)),
            }
        }
        ClientCommand::CaptureHold(args) => {
            let id = parse_id(&args.hold_id, "hold_id")?;
            let receipt = client.capture_hold(id, args.amount.as_deref()).await?;
            Ok(hold_receipt(&receipt, None))
        }
        ClientCommand::ReleaseHold(args) => {
            let id = parse_id(&args.hold_id, "hold_id")?;
            let receipt = client.release_hold(id).await?;
            Ok(hold_receipt(&receipt, None))
        }
        ClientCommand::LookupAccount(args) => lookup_accounts(client, &args.ids).await,
        ClientCommand::LookupTransfer(args) => lookup_transfers(client, &args.ids).await,
        ClientCommand::ClusterStatus => {
            let status = client
                .cluster_stub()
                .status(v1::ClusterStatusRequest {})
                .await
                .map_err(status_failure)?;
            Ok(cluster_output(&status.into_inner()))
        }
        ClientCommand::AddReplica(args) => {
            let request = v1::AddReplicaRequest {
                node_id: args.node_id,
                address: args.address,
            };
            let status = on_leader(client, config, |mut stub| {
                let request = request.clone();
                async move { stub.add_replica(request).await }
            })
            .await?;
            Ok(cluster_output(&status))
        }
        ClientCommand::Held(args) => risk::held(client, args).await,
        ClientCommand::Review(args) => risk::review(client, args).await,
        ClientCommand::Freeze(args) => risk::freeze(client, args, true).await,
        ClientCommand::Unfreeze(args) => risk::freeze(client, args, false).await,
        ClientCommand::Frozen => risk::frozen(client).await,
        ClientCommand::RiskEvents(args) => risk::events(client, args).await,
        ClientCommand::RiskStatus => risk::status(client).await,
        ClientCommand::LoadModel(args) => risk::load_model(client, args).await,
        ClientCommand::RemoveReplica(args) => {
            let request = v1::RemoveReplicaRequest {
                node_id: args.node_id,
            };
            let status = on_leader(client, config, |mut stub| async move {
                stub.remove_replica(request).await
            })
            .await?;
            Ok(cluster_output(&status))
        }
    }
}

fn status_failure(status: tonic::Status) -> Failure {
    match corebank_client::ApiError::from_status(&status) {
        Some(api) => {
            let mut failure = Failure::new(api.code.as_str(), api.message.clone());
            failure.reason = api.reason;
            failure.field = api.field;
            failure.leader = api.leader;
            failure
        }
        None => Failure::new("rpc", format!("{} ({:?})", status.message(), status.code())),
    }
}

/// A membership change goes to the leader: when the replica asked names another, the
/// call is made there.
async fn on_leader<F, Fut>(
    client: &Client,
    config: &ClientConfig,
    call: F,
) -> Result<v1::ClusterStatus, Failure>
where
    F: Fn(v1::cluster_client::ClusterClient<corebank_client::AuthChannel>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<v1::ClusterStatus>, tonic::Status>>,
{
    match call(client.cluster_stub()).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => {
            let failure = status_failure(status);
            let Some(leader) = failure
                .leader
                .clone()
                .filter(|_| failure.code == "not_leader")
            else {
                return Err(failure);
            };
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let mut there = config.clone();
            there.endpoint = format!("{scheme}://{leader}");
            let leader_client = Client::connect(there).await?;
            call(leader_client.cluster_stub())
                .await
                .map(tonic::Response::into_inner)
                .map_err(status_failure)
        }
    }
}

fn cluster_output(status: &v1::ClusterStatus) -> Output {
    let members: Vec<Value> = status
        .members
        .iter()
        .map(|member| {
            json!({
                "node_id": member.node_id,
                "address": member.address,
                "voter": member.voter,
                "matched_index": member.matched_index,
            })
        })
        .collect();
    let json = json!({
        "branch": format!("{:04}", status.branch),
        "node_id": status.node_id,
        "role": status.role,
        "term": status.term,
        "leader_id": status.leader_id,
        "leader_address": non_empty(&status.leader_address),
        "last_log_index": status.last_log_index,
        "last_applied_index": status.last_applied_index,
        "state_digest": status.state_digest,
        "members": members,
    });
    let mut text = format!(
        "branch {:04}, replica {} ({}), term {}, leader {}\nlog index {}, applied {}, digest {}\n\n",
        status.branch,
        status.node_id,
        status.role,
        status.term,
        status.leader_id.map_or_else(
            || "unknown".to_owned(),
            |id| format!("{id} at {}", status.leader_address)
        ),
        status.last_log_index,
        status.last_applied_index,
        status.state_digest,
    );
    let mut table = Table::new(&[
        ("node", Align::Right),
        ("address", Align::Left),
        ("role", Align::Left),
        ("matched index", Align::Right),
    ]);
    for member in &status.members {
        table.row(vec![
            member.node_id.to_string(),
            member.address.clone(),
            if member.voter { "voter" } else { "learner" }.to_owned(),
            member
                .matched_index
                .map_or_else(|| "-".to_owned(), |index| index.to_string()),
        ]);
    }
    text.push_str(&table.render());
    Output { json, text }
}

fn key_or_new(key: Option<String>) -> String {
    key.unwrap_or_else(new_idempotency_key)
}

/// A decimal u128 id: not 0, not 2^128-1.
fn parse_id(text: &str, field: &str) -> Result<u128, Failure> {
    let invalid = |why: &str| {
        let mut failure = Failure::new("invalid_argument", format!("{field} {text:?} {why}"))
            .with_reason("invalid_id");
        field.clone_into(&mut failure.field);
        failure
    };
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("is not a decimal number"));
    }
    match text.parse::<u128>() {
        Ok(0) | Ok(u128::MAX) => Err(invalid("is not a valid id (0 and 2^128-1 are not)")),
        Ok(id) => Ok(id),
        Err(_) => Err(invalid("does not fit in 128 bits")),
    }
}

/// A decimal ledger id, or an account number (its digits are the id).
fn parse_account_id(text: &str) -> Result<u128, Failure> {
    if text.trim().bytes().all(|b| b.is_ascii_digit()) {
        return parse_id(text, "id");
    }
    AccountNumber::parse(text)
        .map(|number| number.account_id())
        .map_err(|error| {
            Failure::new("invalid_account_number", format!("{text:?}: {error}"))
                .with_reason(error.code())
        })
}

fn id_string(id: Option<&v1::U128>) -> String {
    u128_of(id).to_string()
}

/// The account number of a ledger account id, when it has one.
fn number_of(id: u128) -> Option<String> {
    AccountNumber::from_account_id(BankPrefix::default(), id)
        .ok()
        .map(|n| n.to_string())
}

fn non_empty(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        json!(text)
    }
}

fn time_json(ns: u64) -> Value {
    if ns == 0 {
        Value::Null
    } else {
        json!(rfc3339(ns))
    }
}

fn transfer_status(status: i32) -> &'static str {
    match v1::TransferStatus::try_from(status) {
        Ok(v1::TransferStatus::Posted) => "posted",
        Ok(v1::TransferStatus::Pending) => "pending",
        Ok(v1::TransferStatus::Voided) => "voided",
        Ok(v1::TransferStatus::Expired) => "expired",
        _ => "unspecified",
    }
}

fn hold_status(status: i32) -> &'static str {
    match v1::HoldStatus::try_from(status) {
        Ok(v1::HoldStatus::Active) => "active",
        Ok(v1::HoldStatus::Captured) => "captured",
        Ok(v1::HoldStatus::Released) => "released",
        Ok(v1::HoldStatus::Expired) => "expired",
        _ => "unspecified",
    }
}

fn product_name(product: i32) -> &'static str {
    match v1::Product::try_from(product) {
        Ok(v1::Product::Savings) => "savings",
        _ => "current",
    }
}

async fn open_account(client: &Client, args: OpenAccountArgs) -> Result<Output, Failure> {
    let product = match args.product {
        ProductArg::Current => v1::Product::Current,
        ProductArg::Savings => v1::Product::Savings,
    };
    let opened = client
        .open_account(&args.customer, &args.currency, product)
        .await?;
    Ok(Output {
        json: json!({
            "account": opened.account_number,
            "account_id": id_string(opened.account_id.as_ref()),
            "currency": opened.currency,
            "product": product_name(opened.product),
            "timestamp_ns": opened.timestamp_ns.to_string(),
            "time": time_json(opened.timestamp_ns),
        }),
        text: format!("{}\n", opened.account_number),
    })
}

fn transfer_receipt(receipt: &v1::TransferReceipt, key: &str) -> Output {
    let transfer_id = id_string(receipt.transfer_id.as_ref());
    let status = transfer_status(receipt.status);
    let json = json!({
        "transfer_id": transfer_id,
        "debit_account": non_empty(&receipt.debit_account),
        "credit_account": non_empty(&receipt.credit_account),
        "amount": receipt.amount,
        "fee": non_empty(&receipt.fee),
        "currency": receipt.currency,
        "status": status,
        "timestamp_ns": receipt.timestamp_ns.to_string(),
        "time": time_json(receipt.timestamp_ns),
        "reference": non_empty(&receipt.reference),
        "replayed": receipt.replayed,
        "idempotency_key": key,
        "held_for_review": receipt.held_for_review,
        "risk": risk::assessment_json(receipt.risk.as_ref()),
    });
    let side = |account: &str| {
        if account.is_empty() {
            "(branch)".to_owned()
        } else {
            account.to_owned()
        }
    };
    let mut rows = vec![
        ("transfer id", transfer_id),
        ("from", side(&receipt.debit_account)),
        ("to", side(&receipt.credit_account)),
        ("amount", format!("{} {}", receipt.amount, receipt.currency)),
    ];
    if !receipt.fee.is_empty() {
        rows.push(("fee", format!("{} {}", receipt.fee, receipt.currency)));
    }
    if !receipt.reference.is_empty() {
        rows.push(("reference", receipt.reference.clone()));
    }
    rows.push(("status", status.to_owned()));
    if receipt.held_for_review {
        rows.push((
            "fraud review",
            format!(
                "held: the money is reserved until an analyst releases or rejects it (score {}; {})",
                receipt.risk.as_ref().map_or(0, |r| r.score),
                risk::reasons_text(receipt.risk.as_ref())
            ),
        ));
    }
    rows.push(("time", rfc3339(receipt.timestamp_ns)));
    rows.push((
        "replayed",
        if receipt.replayed {
            "yes: this key was used before; nothing new happened".to_owned()
        } else {
            "no".to_owned()
        },
    ));
    rows.push(("idempotency key", key.to_owned()));
    Output {
        json,
        text: pairs(&rows),
    }
}

fn hold_receipt(receipt: &v1::HoldReceipt, key: Option<&str>) -> Output {
    let hold_id = id_string(receipt.hold_id.as_ref());
    let status = hold_status(receipt.status);
    let settled_by = u128_of(receipt.settled_by_transfer_id.as_ref());
    let settled_by_json = if settled_by == 0 {
        Value::Null
    } else {
        json!(settled_by.to_string())
    };
    let mut json = json!({
        "hold_id": hold_id,
        "account": receipt.account_number,
        "amount": receipt.amount,
        "currency": receipt.currency,
        "status": status,
        "placed_at_ns": receipt.placed_at_ns.to_string(),
        "placed_at": time_json(receipt.placed_at_ns),
        "expires_at_ns": receipt.expires_at_ns.to_string(),
        "expires_at": time_json(receipt.expires_at_ns),
        "captured_amount": non_empty(&receipt.captured_amount),
        "settled_by_transfer_id": settled_by_json,
        "reference": non_empty(&receipt.reference),
        "replayed": receipt.replayed,
    });
    if let (Some(key), Some(object)) = (key, json.as_object_mut()) {
        object.insert("idempotency_key".into(), json!(key));
    }
    let mut rows = vec![
        ("hold id", hold_id),
        ("account", receipt.account_number.clone()),
        ("amount", format!("{} {}", receipt.amount, receipt.currency)),
        ("status", status.to_owned()),
    ];
    if !receipt.captured_amount.is_empty() {
        rows.push((
            "captured",
            format!("{} {}", receipt.captured_amount, receipt.currency),
        ));
    }
    if settled_by != 0 {
        rows.push(("settled by", settled_by.to_string()));
    }
    if !receipt.reference.is_empty() {
        rows.push(("reference", receipt.reference.clone()));
    }
    if receipt.placed_at_ns != 0 {
        rows.push(("placed", rfc3339(receipt.placed_at_ns)));
    }
    if receipt.expires_at_ns != 0 {
        rows.push(("expires", rfc3339(receipt.expires_at_ns)));
    }
    rows.push((
        "replayed",
        if receipt.replayed { "yes" } else { "no" }.to_owned(),
    ));
    if let Some(key) = key {
        rows.push(("idempotency key", key.to_owned()));
    }
    Output {
        json,
        text: pairs(&rows),
    }
}

async fn balance(client: &Client, account: &str) -> Result<Output, Failure> {
    let balance = client.balance(account).await?;
    let number = if balance.account_number.is_empty() {
        account.to_owned()
    } else {
        balance.account_number.clone()
    };
    let json = json!({
        "account": number,
        "currency": balance.currency,
        "posted": balance.posted,
        "pending": balance.pending_debits,
        "available": balance.available,
        "pending_credits": balance.pending_credits,
        "closed": balance.closed,
        "as_of_ns": balance.as_of_ns.to_string(),
        "as_of": time_json(balance.as_of_ns),
    });
    let mut table = Table::new(&[
        ("ACCOUNT", Align::Left),
        ("CURRENCY", Align::Left),
        ("POSTED", Align::Right),
        ("PENDING (HOLDS)", Align::Right),
        ("AVAILABLE", Align::Right),
    ]);
    table.row(vec![
        number,
        balance.currency.clone(),
        balance.posted.clone(),
        balance.pending_debits.clone(),
        balance.available.clone(),
    ]);
    let mut text = table.render();
    if u128_of(balance.pending_credits_minor.as_ref()) != 0 {
        text.push_str(&format!(
            "incoming, not yet final: {} {}\n",
            balance.pending_credits, balance.currency
        ));
    }
    if balance.closed {
        text.push_str("the account is closed\n");
    }
    Ok(Output { json, text })
}

/// The most entries the node returns in one statement page.
const STATEMENT_PAGE_MAX: u32 = 1_000;

async fn history(client: &Client, args: HistoryArgs) -> Result<Output, Failure> {
    let mut entries: Vec<v1::StatementEntry> = Vec::new();
    let mut account = args.account.clone();
    let mut currency: String;
    let mut page_token = String::new();
    let wanted = usize::try_from(args.limit).unwrap_or(usize::MAX);
    loop {
        let remaining = u32::try_from(wanted - entries.len()).unwrap_or(STATEMENT_PAGE_MAX);
        let page = client
            .statement_with(v1::GetStatementRequest {
                account_number: args.account.clone(),
                from_ns: 0,
                to_ns: 0,
                limit: remaining.min(STATEMENT_PAGE_MAX),
                page_token: std::mem::take(&mut page_token),
                reversed: args.newest_first,
                consistency: v1::ReadConsistency::Linearizable.into(),
            })
            .await?;
        if !page.account_number.is_empty() {
            account = page.account_number;
        }
        currency = page.currency;
        entries.extend(page.entries);
        page_token = page.next_page_token;
        if page_token.is_empty() || entries.len() >= wanted {
            break;
        }
    }
    entries.truncate(wanted);
    let more = !page_token.is_empty();

    let json_entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            json!({
                "time": time_json(entry.timestamp_ns),
                "timestamp_ns": entry.timestamp_ns.to_string(),
                "direction": direction(entry.direction),
                "counterparty": non_empty(&entry.counterparty_account),
                "amount": entry.amount,
                "balance_after": non_empty(&entry.balance_after),
                "description": entry.description,
                "reference": non_empty(&entry.reference),
                "code": entry.code,
                "status": transfer_status(entry.status),
                "transfer_id": id_string(entry.transfer_id.as_ref()),
            })
        })
        .collect();
    let json = json!({
        "account": account,
        "currency": currency,
        "entries": json_entries,
        "more": more,
    });

    let mut table = Table::new(&[
        ("TIME", Align::Left),
        ("DIRECTION", Align::Left),
        ("COUNTERPARTY", Align::Left),
        ("AMOUNT", Align::Right),
        ("BALANCE AFTER", Align::Right),
        ("DESCRIPTION", Align::Left),
        ("TRANSFER ID", Align::Left),
    ]);
    for entry in &entries {
        let mut description = entry.description.clone();
        if !entry.reference.is_empty() {
            description.push_str(&format!(" ({})", entry.reference));
        }
        let status = transfer_status(entry.status);
        if status != "posted" {
            description.push_str(&format!(" [{status}]"));
        }
        table.row(vec![
            rfc3339_seconds(entry.timestamp_ns),
            direction(entry.direction).to_owned(),
            dash_if_empty(&entry.counterparty_account),
            entry.amount.clone(),
            dash_if_empty(&entry.balance_after),
            description,
            id_string(entry.transfer_id.as_ref()),
        ]);
    }
    let count = entries.len();
    let mut text = format!(
        "{account} ({currency}): {count} {}\n",
        if count == 1 { "entry" } else { "entries" }
    );
    if count > 0 {
        text.push_str(&table.render());
    }
    if more {
        text.push_str("(more entries: raise --limit)\n");
    }
    Ok(Output { json, text })
}

fn direction(direction: i32) -> &'static str {
    match v1::EntryDirection::try_from(direction) {
        Ok(v1::EntryDirection::Debit) => "debit",
        Ok(v1::EntryDirection::Credit) => "credit",
        _ => "unspecified",
    }
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

// ------------------------------------------------------------------ ledger lookups

/// An amount of minor units: the decimal string when the ledger is a known
/// currency, and the integer.
fn amount_fields(currency: Option<Currency>, minor: u128) -> (Value, String) {
    (
        currency.map_or(Value::Null, |c| json!(c.format_amount(minor))),
        minor.to_string(),
    )
}

fn amount_cell(currency: Option<Currency>, minor: u128) -> String {
    currency.map_or_else(|| minor.to_string(), |c| c.format_amount(minor))
}

fn flags_cell(names: Vec<&str>) -> String {
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(",")
    }
}

/// Which of the asked ids were not returned (as the user wrote them).
fn not_found(asked: &[(String, u128)], found: &HashSet<u128>) -> Vec<String> {
    asked
        .iter()
        .filter(|(_, id)| !found.contains(id))
        .map(|(text, _)| text.clone())
        .collect()
}

fn account_json(account: &Account) -> Value {
    let currency = Currency::from_numeric(account.ledger).ok();
    let mut object = serde_json::Map::new();
    object.insert("id".into(), json!(account.id.to_string()));
    object.insert(
        "account_number".into(),
        number_of(account.id).map_or(Value::Null, Value::from),
    );
    object.insert("ledger".into(), json!(account.ledger));
    object.insert(
        "currency".into(),
        currency.map_or(Value::Null, |c| json!(c.alpha)),
    );
    object.insert("code".into(), json!(account.code));
    object.insert(
        "flags".into(),
        json!(account.flags.names().collect::<Vec<_>>()),
    );
    for (name, minor) in [
        ("debits_pending", account.debits_pending),
        ("debits_posted", account.debits_posted),
        ("credits_pending", account.credits_pending),
        ("credits_posted", account.credits_posted),
    ] {
        let (decimal, integer) = amount_fields(currency, minor);
        object.insert(name.into(), decimal);
        object.insert(format!("{name}_minor"), json!(integer));
    }
    object.insert(
        "user_data_128".into(),
        json!(account.user_data_128.to_string()),
    );
    object.insert(
        "user_data_64".into(),
        json!(account.user_data_64.to_string()),
    );
    object.insert("user_data_32".into(), json!(account.user_data_32));
    object.insert("timestamp_ns".into(), json!(account.timestamp.to_string()));
    object.insert("time".into(), time_json(account.timestamp));
    Value::Object(object)
}

async fn lookup_accounts(client: &Client, texts: &[String]) -> Result<Output, Failure> {
    let asked = texts
        .iter()
        .map(|text| Ok((text.clone(), parse_account_id(text)?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    let ids: Vec<u128> = asked.iter().map(|(_, id)| *id).collect();
    let accounts = client.lookup_accounts(&ids).await?;
    let found: HashSet<u128> = accounts.iter().map(|a| a.id).collect();
    let missing = not_found(&asked, &found);
    let json = json!({
        "accounts": accounts.iter().map(account_json).collect::<Vec<_>>(),
        "not_found": missing,
    });
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("ACCOUNT NUMBER", Align::Left),
        ("CURRENCY", Align::Left),
        ("CODE", Align::Right),
        ("FLAGS", Align::Left),
        ("DEBITS PENDING", Align::Right),
        ("DEBITS POSTED", Align::Right),
        ("CREDITS PENDING", Align::Right),
        ("CREDITS POSTED", Align::Right),
    ]);
    for account in &accounts {
        let currency = Currency::from_numeric(account.ledger).ok();
        table.row(vec![
            account.id.to_string(),
            number_of(account.id).unwrap_or_else(|| "-".into()),
            currency.map_or_else(|| format!("ledger {}", account.ledger), |c| c.alpha.into()),
            account.code.to_string(),
            flags_cell(account.flags.names().collect()),
            amount_cell(currency, account.debits_pending),
            amount_cell(currency, account.debits_posted),
            amount_cell(currency, account.credits_pending),
            amount_cell(currency, account.credits_posted),
        ]);
    }
    Ok(Output {
        json,
        text: lookup_text(&table, accounts.len(), &missing),
    })
}

fn lookup_text(table: &Table, found: usize, missing: &[String]) -> String {
    let mut text = if found > 0 {
        table.render()
    } else {
        String::new()
    };
    for id in missing {
        text.push_str(&format!("not found: {id}\n"));
    }
    text
}

fn transfer_json(transfer: &Transfer) -> Value {
    let currency = Currency::from_numeric(transfer.ledger).ok();
    let (amount, amount_minor) = amount_fields(currency, transfer.amount);
    json!({
        "id": transfer.id.to_string(),
        "debit_account_id": transfer.debit_account_id.to_string(),
        "debit_account": number_of(transfer.debit_account_id),
        "credit_account_id": transfer.credit_account_id.to_string(),
        "credit_account": number_of(transfer.credit_account_id),
        "amount": amount,
        "amount_minor": amount_minor,
        "pending_id": if transfer.pending_id == 0 { Value::Null } else { json!(transfer.pending_id.to_string()) },
        "ledger": transfer.ledger,
        "currency": currency.map(|c| c.alpha),
        "code": transfer.code,
        "flags": transfer.flags.names().collect::<Vec<_>>(),
        "timeout": transfer.timeout,
        "user_data_128": transfer.user_data_128.to_string(),
        "user_data_64": transfer.user_data_64.to_string(),
        "user_data_32": transfer.user_data_32,
        "timestamp_ns": transfer.timestamp.to_string(),
        "time": time_json(transfer.timestamp),
    })
}

async fn lookup_transfers(client: &Client, texts: &[String]) -> Result<Output, Failure> {
    let asked = texts
        .iter()
        .map(|text| Ok((text.clone(), parse_id(text, "id")?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    let ids: Vec<u128> = asked.iter().map(|(_, id)| *id).collect();
    let transfers = client.lookup_transfers(&ids).await?;
    let found: HashSet<u128> = transfers.iter().map(|t| t.id).collect();
    let missing = not_found(&asked, &found);
    let json = json!({
        "transfers": transfers.iter().map(transfer_json).collect::<Vec<_>>(),
        "not_found": missing,
    });
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("TIME", Align::Left),
        ("DEBIT", Align::Left),
        ("CREDIT", Align::Left),
        ("AMOUNT", Align::Right),
        ("CURRENCY", Align::Left),
        ("CODE", Align::Right),
        ("FLAGS", Align::Left),
        ("PENDING ID", Align::Right),
    ]);
    for transfer in &transfers {
        let currency = Currency::from_numeric(transfer.ledger).ok();
        let side = |id: u128| number_of(id).unwrap_or_else(|| id.to_string());
        table.row(vec![
            transfer.id.to_string(),
            rfc3339_seconds(transfer.timestamp),
            side(transfer.debit_account_id),
            side(transfer.credit_account_id),
            amount_cell(currency, transfer.amount),
            currency.map_or_else(|| format!("ledger {}", transfer.ledger), |c| c.alpha.into()),
            transfer.code.to_string(),
            flags_cell(transfer.flags.names().collect()),
            if transfer.pending_id == 0 {
                "-".into()
            } else {
                transfer.pending_id.to_string()
            },
        ]);
    }
    Ok(Output {
        json,
        text: lookup_text(&table, transfers.len(), &missing),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_schemes() {
        assert_eq!(
            split_scheme("https://node:8080"),
            (Some("https"), "node:8080")
        );
        assert_eq!(split_scheme("HTTP://node:1"), (Some("http"), "node:1"));
        assert_eq!(split_scheme("node:8080"), (None, "node:8080"));
        assert!(host_is_ip("127.0.0.1:8080"));
        assert!(host_is_ip("[::1]:8080"));
        assert!(!host_is_ip("branch-0001.bank.example:8080"));
    }

    #[test]
    fn ids_are_decimal_and_valid() {
        assert_eq!(parse_id("42", "id").ok(), Some(42));
        for bad in ["0", "-1", "x1", "", &u128::MAX.to_string(), "1e3"] {
            let failure = parse_id(bad, "hold_id").err();
            assert_eq!(
                failure.map(|f| f.code.clone()),
                Some("invalid_argument".to_owned()),
                "{bad}"
            );
        }
        assert_eq!(
            parse_account_id("XC68 CORE 0001 0000 0010 00").ok(),
            Some(10_000_001_000)
        );
        let failure = parse_account_id("XC68CORE00010000001001").err();
        assert_eq!(
            failure.map(|f| (f.code.clone(), f.reason.clone())),
            Some((
                "invalid_account_number".to_owned(),
                "bad_check_digits".to_owned()
            ))
        );
    }

    #[test]
    fn a_tls_connection_needs_a_ca() {
        let args = ConnectionArgs {
            server: "127.0.0.1:8080".into(),
            insecure: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            server_name: None,
            api_key: Some(Secret::new("cbk_0123456789ab_hunter2".into())),
            timeout: None,
        };
        let failure = client_config(&args).err();
        let sentence = failure.map(|f| f.sentence()).unwrap_or_default();
        assert!(
            sentence.starts_with("invalid_config: TLS needs a CA"),
            "{sentence}"
        );
        assert!(!format!("{args:?}").contains("hunter2"));
    }
}
