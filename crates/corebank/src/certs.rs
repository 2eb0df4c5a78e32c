//! `corebank certs`: a development CA, a node certificate and client certificates
//! (the conventions are in the corebank-security README).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use corebank_security::certs::{
    self, CaOrigin, ClientSpec, DevCertsRequest, NodeCertRequest, write_dev_certs,
};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Files written into DIR (PEM; private keys with mode 0600):\n  \
    ca.pem, ca-key.pem            the development CA (made once, then reused)\n  \
    node.pem, node-key.pem        the node's certificate (serverAuth and clientAuth)\n  \
    client-NAME.pem, -key.pem     one per --client: CN=NAME, URI SAN urn:corebank:scopes:SCOPES\n\n\
    Existing files are never overwritten without --force. If DIR already holds ca.pem and\n\
    ca-key.pem, that CA signs the new certificates, so clients can be added later:\n  \
    corebank certs --out certs --no-node --client auditor:read\n\n\
    Scopes: read, transfer (includes read), admin (includes everything).\n\
    Servers use node.pem + node-key.pem and trust ca.pem for client certificates;\n\
    clients trust ca.pem. These are development certificates: use your own PKI in production."
)]
pub struct CertsArgs {
    /// Directory to write into (created with mode 0700 if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// A DNS name (or IP address) the node certificate is valid for; repeat for several.
    /// Default: localhost.
    #[arg(long = "node-name", value_name = "NAME")]
    pub node_names: Vec<String>,

    /// An IP address the node certificate is valid for; repeat for several.
    /// Default: 127.0.0.1 and ::1.
    #[arg(long = "ip", value_name = "IP")]
    pub ips: Vec<IpAddr>,

    /// Make a client certificate for mutual TLS, e.g. --client teller:read,transfer;
    /// repeat for several.
    #[arg(long = "client", value_name = "NAME:SCOPES")]
    pub clients: Vec<ClientSpec>,

    /// Make no node certificate (e.g. to add client certificates from an existing CA).
    #[arg(long, conflicts_with_all = ["node_names", "ips"])]
    pub no_node: bool,

    /// File name stem of the node certificate: STEM.pem and STEM-key.pem (one per
    /// replica, e.g. node1, node2, node3).
    #[arg(long, value_name = "STEM", default_value = certs::NODE_FILE_STEM)]
    pub node_file: String,

    /// How many days node and client certificates are valid (1 to 3650).
    #[arg(long, value_name = "DAYS", default_value_t = certs::LEAF_VALIDITY_DAYS)]
    pub days: u32,

    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,

    /// Make a new CA even if DIR holds one (needs --force to replace it). Certificates
    /// signed by the old CA are then no longer trusted by anything using the new ca.pem.
    #[arg(long)]
    pub new_ca: bool,
}

pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let request = DevCertsRequest {
        out_dir: args.out.clone(),
        node: (!args.no_node).then(|| NodeCertRequest::from_names(&args.node_names, &args.ips)),
        node_file_stem: args.node_file,
        clients: args.clients,
        validity_days: args.days,
        force: args.force,
        new_ca: args.new_ca,
    };
    let report = write_dev_certs(&request)
        .with_context(|| format!("cannot make certificates in {}", args.out.display()))?;
    match report.ca {
        CaOrigin::Generated => println!("made a new development CA"),
        CaOrigin::Reused => println!("reused the CA in {}", report.ca_cert.display()),
    }
    for file in &report.written {
        let mode = if file.private { " (mode 0600)" } else { "" };
        println!("wrote {}: {}{mode}", file.path.display(), file.description);
    }
    if report.written.is_empty() {
        println!("nothing to write: ask for a node certificate or --client NAME:SCOPES");
    }
    Ok(ExitCode::SUCCESS)
}
