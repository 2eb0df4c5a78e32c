//! `corebank bench` (owned by the workload helper; placeholder until it lands).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LedgerBenchArgs {
    #[arg(long, default_value_t = 10_000)]
    pub accounts: u64,
}

pub fn run_ledger(_args: LedgerBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet built")
}
