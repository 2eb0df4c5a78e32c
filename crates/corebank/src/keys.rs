//! `corebank keys`: make, list and revoke API keys in a key file (the format is in
//! the corebank-security README). The key file holds only SHA-256 hashes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use corebank_security::{ApiKeyFile, KeyStoreError, ScopeSet};

const KEY_FILE_HELP: &str = "The key file is JSON with mode 0600; it holds each key's id, name, scopes,\n\
    SHA-256 hash, creation time and revocation, never a key itself. A running node\n\
    picks up changes when it reloads its key file.\n\n\
    Callers send a key as the header (gRPC metadata) 'authorization: Bearer cbk_...'.\n\
    Scopes: read, transfer (includes read), admin (includes everything).";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = KEY_FILE_HELP)]
pub enum KeysCommand {
    /// Make a new API key, add it to the key file and print it (the only time it is shown).
    #[command(after_help = KEY_FILE_HELP)]
    Create(CreateArgs),
    /// List the keys in the key file: id, name, scopes, created, revoked (never secrets).
    List(ListArgs),
    /// Revoke a key by its id; it is refused from the next reload on.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The key file (created if missing).
    #[arg(long, value_name = "KEYS.json")]
    pub file: PathBuf,

    /// Who or what the key is for: letters, digits, '.', '_', '-'; at most 64.
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// Comma-separated scopes, e.g. read,transfer.
    #[arg(long, value_name = "SCOPES")]
    pub scopes: ScopeSet,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The key file.
    #[arg(long, value_name = "KEYS.json")]
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The key file.
    #[arg(long, value_name = "KEYS.json")]
    pub file: PathBuf,

    /// The key's id (the 12 hex digits after 'cbk_', as shown by 'keys list').
    #[arg(long, value_name = "ID")]
    pub id: String,
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create(args) => create(args),
        KeysCommand::List(args) => list(args),
        KeysCommand::Revoke(args) => revoke(args),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let mut file = ApiKeyFile::load_or_new(&args.file).map_err(|e| load_error(e, &args.file))?;
    let new = file
        .create(&args.name, args.scopes)
        .context("cannot make the key")?;
    file.save(&args.file)?;
    eprintln!(
        "made API key {} named {:?} with scopes {} in {}",
        new.record.id(),
        new.record.name(),
        new.record.scopes(),
        args.file.display()
    );
    eprintln!(
        "this is the only time the key is shown: store it in a secret manager now; \
         the key file keeps only its hash"
    );
    // The key alone on standard output, so that scripts can capture it.
    println!("{}", new.key.expose());
    Ok(ExitCode::SUCCESS)
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let file = ApiKeyFile::load(&args.file).map_err(|e| load_error(e, &args.file))?;
    let keys = file.records();
    if keys.is_empty() {
        println!("no keys in {}", args.file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let name_width = keys
        .iter()
        .map(|key| key.name().len())
        .max()
        .unwrap_or(0)
        .max(4);
    println!(
        "{:<12}  {:<name_width$}  {:<19}  {:<20}  REVOKED",
        "ID", "NAME", "SCOPES", "CREATED"
    );
    for key in keys {
        let revoked = match (key.is_revoked(), key.revoked_at_rfc3339()) {
            (false, _) => "no".to_string(),
            (true, Some(at)) => format!("yes, {at}"),
            (true, None) => "yes".to_string(),
        };
        println!(
            "{:<12}  {:<name_width$}  {:<19}  {:<20}  {revoked}",
            key.id(),
            key.name(),
            key.scopes().to_string(),
            key.created_at_rfc3339()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let mut file = ApiKeyFile::load(&args.file).map_err(|e| load_error(e, &args.file))?;
    let newly = file.revoke(&args.id).context("cannot revoke the key")?;
    let name = file
        .get(&args.id)
        .map(|key| key.name().to_owned())
        .unwrap_or_default();
    if newly {
        file.save(&args.file)?;
        println!(
            "revoked key {} ({name}); running nodes refuse it once they reload",
            args.id
        );
    } else {
        println!("key {} ({name}) was already revoked", args.id);
    }
    Ok(ExitCode::SUCCESS)
}

/// Errors about the file itself already name it; those about its contents do not.
fn load_error(error: KeyStoreError, path: &std::path::Path) -> anyhow::Error {
    match error {
        KeyStoreError::NotFound { .. }
        | KeyStoreError::Read { .. }
        | KeyStoreError::TooLarge { .. } => error.into(),
        other => anyhow::Error::new(other)
            .context(format!("{} is not a usable key file", path.display())),
    }
}
