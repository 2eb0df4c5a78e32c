//! A single-process stand-in for a branch node, for the client's tests: the
//! Ledger service over an in-memory ledger, a little of Banking (open, deposit
//! with idempotency keys), and Events; with scripted faults, a gate that holds
//! CreateTransfers requests, request counters, an optional API key, and TLS.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use corebank_ledger::Ledger;
use corebank_proto::convert::{self, u128_field};
use corebank_proto::v1::banking_server::{self, BankingServer};
use corebank_proto::v1::events_server::{self, EventsServer};
use corebank_proto::v1::ledger_server::{self, LedgerServer};
use corebank_proto::{ApiError, ErrorCode, v1};
use corebank_security::rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tonic::codegen::tokio_stream::{self, Stream, StreamExt as _};
use tonic::transport::Server;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

/// What the next request (of any kind) suffers.
#[derive(Debug)]
pub enum Fault {
    /// `busy_retry`, nothing done.
    Busy,
    /// Carried out, then the answer is lost (a transport-level UNAVAILABLE).
    ApplyThenLose,
    /// Refused with this error.
    Refuse(ApiError),
    /// Never answered.
    Hang,
}

/// Everything the test can see and steer.
pub struct ToyState {
    ledger: Mutex<(Ledger, u64)>,
    faults: Mutex<VecDeque<Fault>>,
    /// The API key required, if any.
    api_key: Option<String>,
    /// Every request received (after the credential check).
    pub requests: AtomicUsize,
    /// Calls turned away for their credential.
    pub refused_credentials: AtomicUsize,
    /// The size of every CreateTransfers request received, attempts included.
    pub transfer_batches: Mutex<Vec<usize>>,
    /// How many CreateTransfers requests have arrived.
    pub transfer_arrivals: watch::Sender<usize>,
    /// While false, CreateTransfers requests wait.
    pub gate: watch::Sender<bool>,
    /// The client certificate names seen on calls.
    pub peer_names: Mutex<Vec<String>>,
    /// The idempotency key of every Deposit attempt.
    pub deposit_keys: Mutex<Vec<String>>,
    deposits: Mutex<HashMap<String, v1::TransferReceipt>>,
    /// Accounts opened through Banking.
    pub opened: AtomicUsize,
    /// The `from_position` of every subscription.
    pub subscriptions: Mutex<Vec<u64>>,
    /// End the first subscription with `subscriber_too_slow` after two events.
    pub too_slow_once: AtomicBool,
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ToyState {
    pub fn new(api_key: Option<&str>) -> Arc<Self> {
        Arc::new(Self {
            ledger: Mutex::new((Ledger::new(), 0)),
            faults: Mutex::new(VecDeque::new()),
            api_key: api_key.map(str::to_owned),
            requests: AtomicUsize::new(0),
            refused_credentials: AtomicUsize::new(0),
            transfer_batches: Mutex::new(Vec::new()),
            transfer_arrivals: watch::channel(0).0,
            gate: watch::channel(true).0,
            peer_names: Mutex::new(Vec::new()),
            deposit_keys: Mutex::new(Vec::new()),
            deposits: Mutex::new(HashMap::new()),
            opened: AtomicUsize::new(0),
            subscriptions: Mutex::new(Vec::new()),
            too_slow_once: AtomicBool::new(false),
        })
    }

    /// Scripts the faults of the next requests, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.faults).extend(faults);
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn transfer_requests(&self) -> usize {
        lock(&self.transfer_batches).len()
    }

    /// Direct access to the ledger, for checks.
    pub fn ledger<T>(&self, f: impl FnOnce(&Ledger) -> T) -> T {
        f(&lock(&self.ledger).0)
    }

    /// The credential check, the peer's certificate, and the scripted fault.
    async fn enter<T>(&self, request: &Request<T>) -> Result<Option<Fault>, Status> {
        if let Some(key) = &self.api_key {
            let expected = format!("Bearer {key}");
            let given = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok());
            if given != Some(expected.as_str()) {
                self.refused_credentials.fetch_add(1, Ordering::SeqCst);
                return Err(ApiError::new(ErrorCode::Unauthenticated, "unknown API key").into());
            }
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(PeerName(Some(name))) = request.extensions().get::<PeerName>() {
            lock(&self.peer_names).push(name.clone());
        }
        let fault = lock(&self.faults).pop_front();
        match fault {
            Some(Fault::Busy) => Err(ApiError::from_code(ErrorCode::BusyRetry).into()),
            Some(Fault::Refuse(error)) => Err(error.into()),
            Some(Fault::Hang) => std::future::pending().await,
            other => Ok(other),
        }
    }

    fn with_ledger<T>(&self, f: impl FnOnce(&mut Ledger, u64) -> T) -> T {
        let mut state = lock(&self.ledger);
        let (ledger, clock) = &mut *state;
        *clock += 1_000_000;
        f(ledger, *clock)
    }
}

fn lost_answer() -> Status {
    Status::unavailable("connection reset by peer")
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the toy"))
}

#[derive(Clone)]
pub struct Toy(pub Arc<ToyState>);

#[tonic::async_trait]
impl ledger_server::Ledger for Toy {
    async fn create_accounts(
        &self,
        request: Request<v1::CreateAccountsRequest>,
    ) -> Result<Response<v1::CreateAccountsResponse>, Status> {
        let fault = self.0.enter(&request).await?;
        let accounts = convert::accounts_from_request(request.get_ref())?;
        let response = self.0.with_ledger(|ledger, clock| {
            ledger
                .create_accounts(clock, &accounts)
                .map(|results| convert::create_accounts_response(clock, &results))
                .map_err(ApiError::from)
        })?;
        match fault {
            Some(Fault::ApplyThenLose) => Err(lost_answer()),
            _ => Ok(Response::new(response)),
        }
    }

    async fn create_transfers(
        &self,
        request: Request<v1::CreateTransfersRequest>,
    ) -> Result<Response<v1::CreateTransfersResponse>, Status> {
        let fault = self.0.enter(&request).await?;
        let events = request.get_ref().transfers.len()
            + request.get_ref().packed_transfers.len() / corebank_ledger::RECORD_BYTES;
        lock(&self.0.transfer_batches).push(events);
        self.0.transfer_arrivals.send_modify(|count| *count += 1);
        let mut gate = self.0.gate.subscribe();
        gate.wait_for(|open| *open)
            .await
            .map_err(|_| Status::internal("gate gone"))?;
        let transfers = convert::transfers_from_request(request.get_ref())?;
        let response = self.0.with_ledger(|ledger, clock| {
            ledger
                .create_transfers(clock, &transfers)
                .map(|results| convert::create_transfers_response(clock, &results))
                .map_err(ApiError::from)
        })?;
        match fault {
            Some(Fault::ApplyThenLose) => Err(lost_answer()),
            _ => Ok(Response::new(response)),
        }
    }

    async fn lookup_accounts(
        &self,
        request: Request<v1::LookupAccountsRequest>,
    ) -> Result<Response<v1::LookupAccountsResponse>, Status> {
        self.0.enter(&request).await?;
        let ids = convert::ids_from_request(&request.get_ref().ids)?;
        let accounts = self
            .0
            .ledger(|ledger| ledger.lookup_accounts(&ids))
            .map_err(ApiError::from)?;
        Ok(Response::new(v1::LookupAccountsResponse {
            accounts: accounts.into_iter().map(Into::into).collect(),
        }))
    }

    async fn lookup_transfers(
        &self,
        request: Request<v1::LookupTransfersRequest>,
    ) -> Result<Response<v1::LookupTransfersResponse>, Status> {
        self.0.enter(&request).await?;
        let ids = convert::ids_from_request(&request.get_ref().ids)?;
        let transfers = self
            .0
            .ledger(|ledger| ledger.lookup_transfers(&ids))
            .map_err(ApiError::from)?;
        Ok(Response::new(v1::LookupTransfersResponse {
            transfers: transfers.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_account_transfers(
        &self,
        request: Request<v1::GetAccountTransfersRequest>,
    ) -> Result<Response<v1::GetAccountTransfersResponse>, Status> {
        self.0.enter(&request).await?;
        let filter = convert::account_filter_from_request(request.get_ref().filter.as_ref())?;
        let transfers = self
            .0
            .ledger(|ledger| ledger.get_account_transfers(&filter))
            .map_err(ApiError::from)?;
        Ok(Response::new(v1::GetAccountTransfersResponse {
            transfers: transfers.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_account_balances(
        &self,
        request: Request<v1::GetAccountBalancesRequest>,
    ) -> Result<Response<v1::GetAccountBalancesResponse>, Status> {
        self.0.enter(&request).await?;
        let filter = convert::account_filter_from_request(request.get_ref().filter.as_ref())?;
        let balances = self
            .0
            .ledger(|ledger| ledger.get_account_balances(&filter))
            .map_err(ApiError::from)?;
        Ok(Response::new(v1::GetAccountBalancesResponse {
            balances: balances.into_iter().map(Into::into).collect(),
        }))
    }

    async fn query_accounts(
        &self,
        request: Request<v1::QueryAccountsRequest>,
    ) -> Result<Response<v1::QueryAccountsResponse>, Status> {
        self.0.enter(&request).await?;
        let filter = convert::query_filter_from_request(request.get_ref().filter.as_ref())?;
        let accounts = self
            .0
            .ledger(|ledger| ledger.query_accounts(&filter))
            .map_err(ApiError::from)?;
        Ok(Response::new(v1::QueryAccountsResponse {
            accounts: accounts.into_iter().map(Into::into).collect(),
        }))
    }

    async fn query_transfers(
        &self,
        request: Request<v1::QueryTransfersRequest>,
    ) -> Result<Response<v1::QueryTransfersResponse>, Status> {
        self.0.enter(&request).await?;
        let filter = convert::query_filter_from_request(request.get_ref().filter.as_ref())?;
        let transfers = self
            .0
            .ledger(|ledger| ledger.query_transfers(&filter))
            .map_err(ApiError::from)?;
        Ok(Response::new(v1::QueryTransfersResponse {
            transfers: transfers.into_iter().map(Into::into).collect(),
        }))
    }
}

#[tonic::async_trait]
impl banking_server::Banking for Toy {
    async fn open_account(
        &self,
        request: Request<v1::OpenAccountRequest>,
    ) -> Result<Response<v1::OpenAccountResponse>, Status> {
        let fault = self.0.enter(&request).await?;
        let serial = self.0.opened.fetch_add(1, Ordering::SeqCst) + 1000;
        if matches!(fault, Some(Fault::ApplyThenLose)) {
            return Err(lost_answer());
        }
        let request = request.into_inner();
        Ok(Response::new(v1::OpenAccountResponse {
            account_number: format!("XC00CORE0001{serial:010}"),
            account_id: u128_field(10_000_000_000 + u128::try_from(serial).unwrap_or(0)),
            currency: request.currency,
            product: request.product,
            timestamp_ns: 1,
        }))
    }

    async fn deposit(
        &self,
        request: Request<v1::DepositRequest>,
    ) -> Result<Response<v1::TransferReceipt>, Status> {
        let fault = self.0.enter(&request).await?;
        let request = request.into_inner();
        lock(&self.0.deposit_keys).push(request.idempotency_key.clone());
        if request.idempotency_key.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "an idempotency key is required",
            )
            .with_field("idempotency_key")
            .with_reason("missing_field")
            .into());
        }
        let mut deposits = lock(&self.0.deposits);
        if let Some(first) = deposits.get(&request.idempotency_key) {
            return Ok(Response::new(v1::TransferReceipt {
                replayed: true,
                ..first.clone()
            }));
        }
        let receipt = v1::TransferReceipt {
            transfer_id: u128_field(u128::try_from(deposits.len()).unwrap_or(0) + 1),
            credit_account: request.account_number,
            amount: request.amount,
            currency: "EUR".into(),
            timestamp_ns: 1,
            status: v1::TransferStatus::Posted.into(),
            reference: request.reference,
            ..Default::default()
        };
        deposits.insert(request.idempotency_key, receipt.clone());
        match fault {
            Some(Fault::ApplyThenLose) => Err(lost_answer()),
            _ => Ok(Response::new(receipt)),
        }
    }

    async fn withdraw(
        &self,
        _: Request<v1::WithdrawRequest>,
    ) -> Result<Response<v1::TransferReceipt>, Status> {
        unimplemented()
    }

    async fn transfer(
        &self,
        _: Request<v1::TransferRequest>,
    ) -> Result<Response<v1::TransferReceipt>, Status> {
        unimplemented()
    }

    async fn get_balance(
        &self,
        _: Request<v1::GetBalanceRequest>,
    ) -> Result<Response<v1::GetBalanceResponse>, Status> {
        unimplemented()
    }

    async fn get_statement(
        &self,
        _: Request<v1::GetStatementRequest>,
    ) -> Result<Response<v1::GetStatementResponse>, Status> {
        unimplemented()
    }

    async fn place_hold(
        &self,
        _: Request<v1::PlaceHoldRequest>,
    ) -> Result<Response<v1::HoldReceipt>, Status> {
        unimplemented()
    }

    async fn release_hold(
        &self,
        _: Request<v1::ReleaseHoldRequest>,
    ) -> Result<Response<v1::HoldReceipt>, Status> {
        unimplemented()
    }

    async fn capture_hold(
        &self,
        _: Request<v1::CaptureHoldRequest>,
    ) -> Result<Response<v1::HoldReceipt>, Status> {
        unimplemented()
    }
}

type EventResults = Pin<Box<dyn Stream<Item = Result<v1::Event, Status>> + Send>>;

/// The toy branch's history: five heartbeats at positions 1 to 5.
pub const EVENT_POSITIONS: [u64; 5] = [1, 2, 3, 4, 5];

#[tonic::async_trait]
impl events_server::Events for Toy {
    type SubscribeStream = EventResults;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<EventResults>, Status> {
        self.0.enter(&request).await?;
        let from = request.get_ref().from_position;
        lock(&self.0.subscriptions).push(from);
        let events: Vec<Result<v1::Event, Status>> = EVENT_POSITIONS
            .iter()
            .filter(|&&position| position > from)
            .map(|&position| {
                Ok(v1::Event {
                    position,
                    branch: 1,
                    kind: Some(v1::event::Kind::Heartbeat(v1::Heartbeat {})),
                })
            })
            .collect();
        let stream: EventResults = if self.0.too_slow_once.swap(false, Ordering::SeqCst) {
            let mut first_two: Vec<_> = events.into_iter().take(2).collect();
            first_two.push(Err(ApiError::from_code(ErrorCode::SubscriberTooSlow).into()));
            Box::pin(tokio_stream::iter(first_two))
        } else {
            // The history, then nothing more for as long as the subscriber stays.
            Box::pin(tokio_stream::iter(events).chain(tokio_stream::pending()))
        };
        Ok(Response::new(stream))
    }
}

/// Serves the three services on 127.0.0.1 (an ephemeral port), over TLS when a
/// configuration is given. Returns the address.
pub async fn serve(
    state: Arc<ToyState>,
    tls: Option<ServerConfig>,
) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let toy = Toy(state);
    let router = Server::builder()
        .add_service(LedgerServer::new(toy.clone()))
        .add_service(BankingServer::new(toy.clone()))
        .add_service(EventsServer::new(toy));
    match tls {
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let (sender, receiver) = mpsc::channel(16);
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let sender = sender.clone();
                    tokio::spawn(async move {
                        // A failed handshake drops that connection only.
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            let _ = sender.send(Ok::<_, std::io::Error>(TlsConn(tls))).await;
                        }
                    });
                }
            });
            let incoming = tokio_stream::wrappers::ReceiverStream::new(receiver);
            tokio::spawn(router.serve_with_incoming(incoming));
        }
    }
    Ok(address)
}

/// The name in the client certificate of a connection, if it presented one.
#[derive(Clone, Debug)]
pub struct PeerName(pub Option<String>);

/// A server-side TLS connection that tells tonic its client certificate's name.
pub struct TlsConn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = PeerName;

    fn connect_info(&self) -> PeerName {
        let (_, session) = self.0.get_ref();
        PeerName(
            session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| corebank_security::tls::peer_identity_from_certificate(cert).ok())
                .map(|identity| identity.name),
        )
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
