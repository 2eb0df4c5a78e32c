//! The demo's front door: the gateway with its console, and one demo user per role
//! (customers with funded accounts), whose passwords are made for this run and
//! printed once.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use corebank_client::{Client, ClientConfig, v1};
use corebank_gateway::{GatewayConfig, RunningGateway};
use corebank_identity::{IdentityCommand, Role};

use super::BranchRun;

/// A demo user and the password made for this run.
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    /// Account numbers, for customers.
    pub accounts: Vec<String>,
}

pub async fn start(
    registry: SocketAddr,
    port: u16,
    data_dir: &Path,
) -> anyhow::Result<RunningGateway> {
    let mut config = GatewayConfig::new(
        SocketAddr::from(([127, 0, 0, 1], port)),
        vec![registry.to_string()],
        data_dir.join("gateway"),
    );
    // The demo's own browser sessions and scripts come from one address: roomier
    // limits than a bank's defaults, still limits.
    config.limits.per_client_per_second = 200;
    config.limits.logins_per_minute = 120;
    corebank_gateway::start(config)
        .await
        .context("starting the gateway")
}

fn password() -> String {
    // 16 characters from an alphabet without look-alikes: about 80 bits.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return "change-me-demo-password".to_owned();
    }
    let len = ALPHABET.len();
    bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(*b) % len).copied().unwrap_or(b'x')))
        .collect()
}

/// Creates the demo users (or, with a data directory from an earlier run, leaves
/// the existing ones alone and says so).
pub async fn demo_users(
    gateway: &RunningGateway,
    branches: &[BranchRun],
) -> anyhow::Result<Vec<DemoUser>> {
    let app = gateway.app();
    let mut users = Vec::new();
    let staff = [
        ("admin", Role::Admin, "Ada Admin"),
        ("teller", Role::Teller, "Tom Teller"),
        ("analyst", Role::Analyst, "Ana Analyst"),
        ("auditor", Role::Auditor, "Aud Auditor"),
    ];
    for (name, role, display) in staff {
        let password = password();
        if corebank_gateway::bootstrap_user(app, name, &password, role, display)
            .await
            .map_err(|p| anyhow::anyhow!("{p}"))?
        {
            users.push(DemoUser {
                username: name.to_owned(),
                password,
                role,
                accounts: Vec::new(),
            });
        }
    }
    let customers = [("alice", "Alice Martin"), ("bob", "Bob Okafor")];
    for (index, (name, display)) in customers.iter().enumerate() {
        let password = password();
        if !corebank_gateway::bootstrap_user(app, name, &password, Role::Customer, display)
            .await
            .map_err(|p| anyhow::anyhow!("{p}"))?
        {
            continue;
        }
        let branch = branches
            .get(index % branches.len().max(1))
            .context("the demo has no branch")?;
        let leader = branch.leader().context("a branch lost its leader")?;
        let client = Client::connect(ClientConfig::new(format!("http://{}", leader.grpc_addr())))
            .await
            .context("connecting to a branch")?;
        let user = corebank_gateway::identity::user_by_name(&app.backend.registry, name)
            .await
            .map_err(|p| anyhow::anyhow!("{p}"))?
            .context("the demo user just created is missing")?;
        let mut accounts = Vec::new();
        for (currency, deposit) in [("EUR", "2500.00"), ("USD", "800.00")] {
            let opened = client
                .open_account(&user.id.to_string(), currency, v1::Product::Current)
                .await
                .context("opening a demo account")?;
            client
                .deposit(&opened.account_number, deposit, None)
                .await
                .context("funding a demo account")?;
            app.identity_execute(IdentityCommand::LinkAccount {
                user_id: user.id,
                account_number: opened.account_number.clone(),
                at_ms: corebank_gateway::app::now_ms(),
            })
            .await
            .map_err(|p| anyhow::anyhow!("{p}"))?;
            accounts.push(opened.account_number);
        }
        users.push(DemoUser {
            username: (*name).to_owned(),
            password,
            role: Role::Customer,
            accounts,
        });
    }
    Ok(users)
}

/// Copies the agent's mule-ring alerts into the gateway's alert feed, once a second
/// (what `corebank gateway --agent` does over HTTP, here in-process).
pub async fn bridge_agent_alerts(
    agent: std::sync::Arc<corebank_agent::RunningAgent>,
    hub: std::sync::Arc<corebank_gateway::hub::Hub>,
) {
    let mut after = 0;
    loop {
        for alert in agent.alerts(after, 1_000) {
            after = after.max(alert.id);
            let feed = serde_json::to_value(&alert)
                .and_then(serde_json::from_value::<corebank_gateway::agent_feed::AgentAlert>);
            if let Some(alert) = feed.ok().and_then(|alert| alert.into_feed()) {
                hub.agent_alert(alert);
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The lines printed once at start.
pub fn announce(gateway: &RunningGateway, users: &[DemoUser]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "console     {}/console/  (API {}/api/v1, OpenAPI {}/openapi.json)\n",
        gateway.url(),
        gateway.url(),
        gateway.url()
    ));
    if users.is_empty() {
        out.push_str("  demo users  kept from the earlier run in this data directory (passwords as printed then)\n");
    } else {
        out.push_str("  demo users  (passwords made for this run, shown only now)\n");
        for user in users {
            let accounts = if user.accounts.is_empty() {
                String::new()
            } else {
                format!("  accounts {}", user.accounts.join(", "))
            };
            out.push_str(&format!(
                "    {:<8} {:<9} password {}{}\n",
                user.role.as_str(),
                user.username,
                user.password,
                accounts
            ));
        }
    }
    out
}
