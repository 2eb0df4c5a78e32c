//! The risk agent's cross-branch findings (mule rings) in the analysts' alert feed.
//!
//! The branches' own verdicts (held, declined, frozen) already reach the hub from
//! their risk journals; what only `corebank agent` sees is the pattern across
//! accounts and branches. The gateway reads the agent's `GET /alerts?after=N` once
//! a second and adds the mule rings. Reading by id means nothing is missed while
//! the gateway runs: a slow or absent agent only delays the alerts.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::backend::number_of;
use crate::hub::{Alert, Hub, rfc3339};

/// How often the agent is asked.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Alerts per request (the agent's own maximum).
const PAGE: u64 = 1_000;
/// The largest answer read (1,000 alerts of a few hundred bytes each).
const ANSWER_BYTES_MAX: usize = 8 * 1024 * 1024;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An alert as the agent's `GET /alerts` describes it (the fields the feed uses).
#[derive(Debug, Clone, Deserialize)]
pub struct AgentAlert {
    pub id: u64,
    pub kind: String,
    #[serde(default)]
    pub branch: Option<u16>,
    pub timestamp_ns: u64,
    #[serde(default)]
    pub transfer_id: Option<String>,
    /// The payer, as a decimal ledger account id.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub score: Option<u32>,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub summary: String,
}

impl AgentAlert {
    /// The feed's alert, for the kinds only the agent finds (mule rings).
    pub fn into_feed(self) -> Option<Alert> {
        if self.kind != "mule_ring" {
            return None;
        }
        let account = self
            .account_id
            .as_deref()
            .and_then(|id| id.parse::<u128>().ok())
            .and_then(number_of)
            .unwrap_or_default();
        Some(Alert {
            id: format!("agent-{}", self.id),
            at: rfc3339(self.timestamp_ns),
            kind: self.kind,
            branch: self.branch.unwrap_or(0),
            account,
            transfer_id: self.transfer_id,
            score: self.score,
            reasons: self.reasons,
            amount: String::new(),
            currency: String::new(),
            detail: self.summary,
            seq: 0,
        })
    }
}

#[derive(Debug, Deserialize)]
struct AlertPage {
    alerts: Vec<AgentAlert>,
    last_id: u64,
}

/// Why the agent could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AgentFeedError {
    #[error("the agent address {0:?} is not of the form http://host:port")]
    Address(String),
    #[error("cannot connect to the agent: {0}")]
    Connect(std::io::Error),
    #[error("the agent did not answer in time")]
    Timeout,
    #[error("HTTP to the agent failed: {0}")]
    Http(String),
    #[error("the agent answered {0}")]
    Status(u16),
    #[error("the agent's answer is not the alert list: {0}")]
    Decode(serde_json::Error),
}

/// The agent's address, checked: `http://host:port` (the agent serves plain HTTP).
pub fn agent_uri(address: &str) -> Result<Uri, AgentFeedError> {
    let uri: Uri = address
        .trim_end_matches('/')
        .parse()
        .map_err(|_| AgentFeedError::Address(address.to_owned()))?;
    let ok = uri.scheme_str() == Some("http")
        && uri.authority().is_some_and(|a| a.port_u16().is_some())
        && uri.path().trim_end_matches('/').is_empty()
        && uri.query().is_none();
    if ok {
        Ok(uri)
    } else {
        Err(AgentFeedError::Address(address.to_owned()))
    }
}

async fn fetch_page(agent: &Uri, after: u64) -> Result<AlertPage, AgentFeedError> {
    let authority = agent
        .authority()
        .ok_or_else(|| AgentFeedError::Address(agent.to_string()))?
        .clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .map_err(AgentFeedError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| AgentFeedError::Http(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let request = Request::get(format!("/alerts?after={after}&limit={PAGE}"))
        .header(header::HOST, authority.as_str())
        .header(header::ACCEPT, "application/json")
        .body(axum::body::Body::empty())
        .map_err(|e| AgentFeedError::Http(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| AgentFeedError::Http(e.to_string()))?;
    let status = response.status();
    let body = axum::body::to_bytes(
        axum::body::Body::new(response.into_body()),
        ANSWER_BYTES_MAX,
    )
    .await
    .map_err(|e| AgentFeedError::Http(e.to_string()));
    driver.abort();
    if !status.is_success() {
        return Err(AgentFeedError::Status(status.as_u16()));
    }
    serde_json::from_slice(&body?).map_err(AgentFeedError::Decode)
}

/// Reads the agent's new alerts into the hub, forever (until the task is aborted).
pub async fn follow_agent(agent: Uri, hub: Arc<Hub>) {
    let mut after = 0u64;
    let mut failing = false;
    loop {
        match tokio::time::timeout(REQUEST_TIMEOUT, fetch_page(&agent, after)).await {
            Ok(Ok(page)) => {
                if failing {
                    tracing::info!(agent = %agent, "the risk agent answers again");
                    failing = false;
                }
                if page.last_id < after {
                    // The agent started afresh (its alerts live in memory): its ids
                    // begin again at 1.
                    tracing::info!(agent = %agent, "the risk agent restarted; reading its alerts from the start");
                    after = 0;
                    continue;
                }
                let full = page.alerts.len() as u64 >= PAGE;
                for alert in page.alerts {
                    after = after.max(alert.id);
                    if let Some(alert) = alert.into_feed() {
                        hub.agent_alert(alert);
                    }
                }
                if full {
                    continue;
                }
            }
            Ok(Err(error)) => {
                if !failing {
                    tracing::warn!(agent = %agent, %error, "cannot read the risk agent's alerts; retrying");
                    failing = true;
                }
            }
            Err(_) => {
                if !failing {
                    tracing::warn!(agent = %agent, error = %AgentFeedError::Timeout, "cannot read the risk agent's alerts; retrying");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_http_host_and_port_is_an_agent_address() {
        assert!(agent_uri("http://127.0.0.1:7070").is_ok());
        assert!(agent_uri("http://agent.internal:7070/").is_ok());
        for bad in [
            "127.0.0.1:7070",
            "https://127.0.0.1:7070",
            "http://127.0.0.1",
            "http://127.0.0.1:7070/alerts",
            "http://127.0.0.1:7070?x=1",
            "",
        ] {
            assert!(agent_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mule_rings_become_feed_alerts_and_branch_verdicts_do_not() {
        let page: AlertPage = serde_json::from_str(
            r#"{"alerts":[
                {"id":7,"kind":"mule_ring","severity":"high","branch":null,"timestamp_ns":1700000000000000000,
                 "account_id":"10000001000","reasons":["fan_in_fan_out"],"accounts":["1","2"],"summary":"3 payers into one account, out within 2 minutes"},
                {"id":8,"kind":"held","severity":"medium","branch":1,"timestamp_ns":1700000000000000000,
                 "transfer_id":"5","reasons":[],"summary":"held"}
            ],"last_id":8}"#,
        )
        .unwrap();
        assert_eq!(page.last_id, 8);
        let mut feed = page.alerts.into_iter().filter_map(AgentAlert::into_feed);
        let ring = feed.next().unwrap();
        assert_eq!(ring.id, "agent-7");
        assert_eq!(ring.kind, "mule_ring");
        assert_eq!(ring.reasons, vec!["fan_in_fan_out".to_owned()]);
        assert!(ring.detail.contains("3 payers"));
        assert!(ring.at.starts_with("2023-11-14T"));
        assert!(feed.next().is_none());
    }

    #[tokio::test]
    async fn a_missing_agent_is_an_error_not_a_panic() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let uri = agent_uri(&format!("http://{addr}")).unwrap();
        assert!(matches!(
            fetch_page(&uri, 0).await,
            Err(AgentFeedError::Connect(_))
        ));
    }
}
