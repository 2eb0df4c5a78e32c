//! `corebank gateway`: the REST API, sign-in, live streams and the web console.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use corebank_gateway::{GATEWAY_LISTEN_DEFAULT, GatewayConfig};

use crate::serve;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    COREBANK_ADMIN_PASSWORD='a long passphrase' corebank gateway --registry 127.0.0.1:9090 --insecure \\\n      \
    --data-dir ./data/gateway --bootstrap-admin admin\n  \
    COREBANK_API_KEY=cbk_... corebank gateway --registry 10.0.9.1:9090,10.0.9.2:9090 --listen 0.0.0.0:8443 \\\n      \
    --tls-cert certs/gateway.pem --tls-key certs/gateway-key.pem --backend-ca certs/ca.pem --data-dir /var/lib/corebank/gateway\n\n\
    The console is at /console/, the API under /api/v1 (docs/gateway.md), its OpenAPI document at\n\
    /openapi.json. The gateway reaches the registry and the branches with the API key in\n\
    COREBANK_API_KEY (admin scope) or the client certificate given; users and sessions live in the\n\
    registry. Logs are JSON lines on stderr (RUST_LOG sets the level).")]
pub struct GatewayArgs {
    /// Where the API and the console listen [default: 127.0.0.1:8443].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The registry's replicas, HOST:PORT, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub registry: Vec<String>,
    /// The gateway's audit trail and signing key live here.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Serve TLS 1.3 with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Plain TCP to a registry and branches started with --insecure (loopback development).
    #[arg(long, conflicts_with_all = ["backend_ca"])]
    pub insecure: bool,
    /// The CA (PEM) of the registry's and branches' certificates.
    #[arg(long, value_name = "FILE")]
    pub backend_ca: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS to the backends; needs --backend-key.
    #[arg(long, value_name = "FILE", requires = "backend_key")]
    pub backend_cert: Option<PathBuf>,
    /// The private key (PEM) of --backend-cert.
    #[arg(long, value_name = "FILE", requires = "backend_cert")]
    pub backend_key: Option<PathBuf>,
    /// The JWT signing key file (shared by gateways that accept each other's tokens)
    /// [default: DATA_DIR/jwt.key, made on first start].
    #[arg(long, value_name = "FILE")]
    pub jwt_key_file: Option<PathBuf>,
    /// An origin allowed to call the API from its pages (e.g. https://app.example.com); repeat.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Requests per second per client (user, key or address), burst twice as many.
    #[arg(long, default_value_t = 50)]
    pub rate_limit_client: u32,
    /// Payments per second debiting one account, burst twice as many.
    #[arg(long, default_value_t = 10)]
    pub rate_limit_account: u32,
    /// Sign-in attempts per minute per address.
    #[arg(long, default_value_t = 30)]
    pub rate_limit_logins: u32,
    /// Lifetime of access tokens, seconds.
    #[arg(long, default_value_t = 300)]
    pub access_token_ttl: u64,
    /// Lifetime of a session (its refresh tokens), seconds.
    #[arg(long, default_value_t = 43_200)]
    pub session_ttl: u64,
    /// The risk agent (`corebank agent`), e.g. http://127.0.0.1:7070: its mule-ring
    /// alerts join the analysts' feed. Without it the feed has the branches' verdicts.
    #[arg(long, value_name = "URL")]
    pub agent: Option<String>,
    /// Create this admin user at start if no user has the name, with the password in
    /// COREBANK_ADMIN_PASSWORD.
    #[arg(long, value_name = "USERNAME")]
    pub bootstrap_admin: Option<String>,
}

pub fn config(args: &GatewayArgs) -> anyhow::Result<GatewayConfig> {
    let mut config = GatewayConfig::new(
        args.listen.unwrap_or(GATEWAY_LISTEN_DEFAULT.parse()?),
        args.registry.clone(),
        args.data_dir.clone(),
    );
    config.tls_cert.clone_from(&args.tls_cert);
    config.tls_key.clone_from(&args.tls_key);
    config.jwt_key_file.clone_from(&args.jwt_key_file);
    config.cors_origins.clone_from(&args.cors_origins);
    config.agent.clone_from(&args.agent);
    config.limits.per_client_per_second = args.rate_limit_client;
    config.limits.per_account_per_second = args.rate_limit_account;
    config.limits.logins_per_minute = args.rate_limit_logins;
    config.tokens.access = Duration::from_secs(args.access_token_ttl);
    config.tokens.refresh = Duration::from_secs(args.session_ttl);
    let mut backend = corebank_client::ClientConfig::new(String::new());
    if !args.insecure {
        let ca = args
            .backend_ca
            .as_ref()
            .context("give --backend-ca (the CA of the registry's and branches' certificates), or --insecure")?;
        let mut tls = corebank_client::TlsSettings::new(ca);
        if let (Some(cert), Some(key)) = (&args.backend_cert, &args.backend_key) {
            tls = tls.with_client_cert(cert, key);
        }
        backend = backend.with_tls(tls);
    }
    if let Ok(key) = std::env::var("COREBANK_API_KEY")
        && !key.is_empty()
    {
        backend = backend.with_api_key(key);
    }
    config.backend = backend;
    config
        .validate()
        .context("the gateway's settings cannot run")?;
    Ok(config)
}

pub fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let bootstrap = match &args.bootstrap_admin {
        Some(name) => {
            let password = std::env::var("COREBANK_ADMIN_PASSWORD")
                .context("--bootstrap-admin needs the password in COREBANK_ADMIN_PASSWORD")?;
            Some((name.clone(), password))
        }
        None => None,
    };
    serve::init_logging();
    let runtime = serve::runtime()?;
    runtime.block_on(async move {
        let gateway = corebank_gateway::start(config).await?;
        if let Some((name, password)) = bootstrap {
            let created = corebank_gateway::bootstrap_user(
                gateway.app(),
                &name,
                &password,
                corebank_identity::Role::Admin,
                "Administrator",
            )
            .await
            .with_context(|| format!("creating the bootstrap admin {name:?}"))?;
            if created {
                println!("created admin user {name}");
            }
        }
        println!("corebank gateway: listening {}", gateway.url());
        println!("console {}/console/", gateway.url());
        println!("ready");
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping");
        gateway.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
