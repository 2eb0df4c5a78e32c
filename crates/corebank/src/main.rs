//! The `corebank` binary: wires the libraries into subcommands. Nothing testable lives
//! here that could live in a library.

mod agent;
mod bench;
mod bench_node;
mod certs;
mod client;
mod demo;
mod gateway;
mod keys;
mod node;
mod reconcile;
mod registry;
mod replay;
mod risk;
mod serve;

use clap::{Parser, Subcommand};

/// corebank: a distributed core-banking system.
#[derive(Debug, Parser)]
#[command(name = "corebank", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole bank in one process with synthetic traffic.
    Demo(demo::DemoArgs),
    /// Run one branch replica (gRPC server with its Raft log on disk).
    Node(node::NodeArgs),
    /// Run one replica of the registry (the branch directory, a Raft group of its own).
    Registry(registry::RegistryArgs),
    /// Work with the ledger core directly.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Make a development CA, node and client certificates for TLS.
    Certs(certs::CertsArgs),
    /// Make, list and revoke API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Talk to a branch node: banking operations, ledger lookups, replicas.
    Client(client::ClientArgs),
    /// Check the clearing accounts between branches and the bank-wide balance.
    Reconcile(reconcile::ReconcileArgs),
    /// Fraud models: split labelled data, train, evaluate.
    #[command(subcommand)]
    Risk(risk::RiskCommand),
    /// Run the gateway: the REST API, sign-in, live streams and the web console.
    Gateway(gateway::GatewayArgs),
    /// Run the risk agent: follow every branch's events, raise alerts, retrain and
    /// promote fraud models.
    Agent(agent::AgentArgs),
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Apply JSON-lines commands to a fresh in-memory ledger and print one JSON line of
    /// output per input line (the format is described in the README).
    Replay(replay::ReplayArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Apply transfers to an in-memory ledger and report transfers per second.
    Ledger(bench::LedgerBenchArgs),
    /// Drive a branch node over gRPC with concurrent clients (durable).
    Node(bench_node::NodeBenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Node(args) => node::run(args),
        Command::Registry(args) => registry::run(args),
        Command::Ledger(LedgerCommand::Replay(args)) => replay::run(args),
        Command::Bench(BenchCommand::Ledger(args)) => bench::run_ledger(args),
        Command::Bench(BenchCommand::Node(args)) => bench_node::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Keys(command) => keys::run(command),
        Command::Client(args) => client::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Risk(command) => risk::run(command),
        Command::Agent(args) => agent::run(args),
        Command::Gateway(args) => gateway::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
