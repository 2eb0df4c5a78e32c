//! The branches behind the gateway: found through the registry, one client each
//! (which follows its branch's leader by itself).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use corebank_account_number::{AccountNumber, split_account_id};
use corebank_client::{Client, ClientConfig};
use corebank_registry::{BranchView, RegistryClient};

use crate::problem::Problem;

/// How long the branch list is trusted before it is read again.
const DIRECTORY_TTL: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Known {
    read_at: Option<Instant>,
    views: Vec<BranchView>,
    clients: BTreeMap<u16, (String, Client)>,
}

/// The registry and the branch clients.
#[derive(Debug, Clone)]
pub struct Backend {
    pub registry: RegistryClient,
    connection: ClientConfig,
    known: Arc<Mutex<Known>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
}

fn endpoints_of(view: &BranchView) -> String {
    // The leader first, so that the first connection usually lands on it.
    let mut replicas: Vec<_> = view.replicas.iter().collect();
    replicas.sort_by_key(|replica| !replica.leader);
    replicas
        .iter()
        .map(|replica| replica.address.clone())
        .collect::<Vec<_>>()
        .join(",")
}

impl Backend {
    pub fn new(registry: RegistryClient, connection: ClientConfig) -> Self {
        Self {
            registry,
            connection,
            known: Arc::new(Mutex::new(Known {
                read_at: None,
                views: Vec::new(),
                clients: BTreeMap::new(),
            })),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The branches as the registry last described them (read again when stale).
    pub async fn branches(&self) -> Result<Vec<BranchView>, Problem> {
        {
            let known = self.known();
            if known.read_at.is_some_and(|at| at.elapsed() < DIRECTORY_TTL) {
                return Ok(known.views.clone());
            }
        }
        let _one_at_a_time = self.refresh.lock().await;
        {
            let known = self.known();
            if known.read_at.is_some_and(|at| at.elapsed() < DIRECTORY_TTL) {
                return Ok(known.views.clone());
            }
        }
        let views = self.registry.list_branches(None).await.map_err(|error| {
            tracing::warn!(%error, "cannot read the branches from the registry");
            Problem::unavailable("The registry cannot be reached; retry shortly.")
        })?;
        let mut known = self.known();
        // An empty directory (a bank still starting) is not kept: asked again next time.
        known.read_at = (!views.is_empty()).then(Instant::now);
        known.views.clone_from(&views);
        Ok(views)
    }

    /// The client of branch `code`, connected on first use.
    pub async fn branch(&self, code: u16) -> Result<Client, Problem> {
        let views = self.branches().await?;
        let Some(view) = views.iter().find(|view| view.code.get() == code) else {
            return Err(Problem::not_found(
                "account_not_found",
                format!("No branch {code:04} exists in this bank."),
            ));
        };
        let endpoints = endpoints_of(view);
        if let Some((known_endpoints, client)) = self.known().clients.get(&code)
            && *known_endpoints == endpoints
        {
            return Ok(client.clone());
        }
        let mut config = self.connection.clone();
        config.endpoint.clone_from(&endpoints);
        let client = Client::connect(config).await.map_err(|error| {
            tracing::warn!(branch = code, %error, "cannot reach the branch");
            Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "branch_unavailable",
                format!("Branch {code:04} cannot be reached; retry shortly."),
            )
            .with_retry_after(1)
        })?;
        self.known()
            .clients
            .insert(code, (endpoints, client.clone()));
        Ok(client)
    }

    /// The branch that owns `account` and its client; refuses malformed numbers.
    pub async fn for_account(&self, field: &str, account: &str) -> Result<(u16, Client), Problem> {
        let number = parse_account(field, account)?;
        let code = number.branch().get();
        Ok((code, self.branch(code).await?))
    }
}

/// An account number as customers write it (spaces between groups allowed).
pub fn parse_account(field: &str, text: &str) -> Result<AccountNumber, Problem> {
    if text.len() > 64 {
        return Err(Problem::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_account_number",
            "An account number has 22 characters.",
        )
        .with_field(field));
    }
    text.parse::<AccountNumber>().map_err(|error| {
        Problem::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_account_number",
            format!("{text:?} is not an account number of this bank: {error}."),
        )
        .with_field(field)
    })
}

/// The account number of a ledger account id, when it is a customer account
/// (internal accounts have none to show).
pub fn number_of(id: u128) -> Option<String> {
    let (_, serial) = split_account_id(id)?;
    if !corebank_banking::is_customer_serial(serial) {
        return None;
    }
    AccountNumber::from_account_id(corebank_account_number::BankPrefix::COREBANK, id)
        .ok()
        .map(|number| number.to_string())
}
