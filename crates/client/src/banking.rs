//! The typed Banking calls: account numbers, decimal amounts, idempotency keys.
//!
//! Every call that moves money carries an idempotency key: the caller's, or, when
//! none is given, a fresh random one that the client reuses for every retry of
//! that call. The node derives the ledger transfer id from it, so a retry after a
//! lost answer reaches the same transfer and returns the first attempt's receipt
//! (`replayed = true`): these calls are retried like ledger creates. Give your own
//! key to be able to repeat a call yourself (after a restart, or after the
//! client's retries ran out) without moving the money twice.

use corebank_proto::v1;

use crate::client::Client;
use crate::error::ClientError;
use crate::retry::{Repeat, new_idempotency_key};

/// The caller's key, or a fresh one.
fn key_or_new(key: &str) -> String {
    if key.is_empty() {
        new_idempotency_key()
    } else {
        key.to_owned()
    }
}

impl Client {
    /// Opens a `PRODUCT_CURRENT` or `PRODUCT_SAVINGS` account in `currency`
    /// (`"EUR"`) for a customer.
    ///
    /// Opening is not idempotent (each call opens a new account), so it is retried
    /// only when the node said that it did nothing (`busy_retry`, `unavailable`),
    /// never after a lost answer: then [`ClientError::outcome_unknown`] is true and
    /// an account may have been opened.
    pub async fn open_account(
        &self,
        customer_id: &str,
        currency: &str,
        product: v1::Product,
    ) -> Result<v1::OpenAccountResponse, ClientError> {
        let request = v1::OpenAccountRequest {
            customer_id: customer_id.to_owned(),
            currency: currency.to_owned(),
            product: product.into(),
        };
        let core = self.core();
        Ok(core
            .unary(
                "OpenAccount",
                Repeat::Unsafe,
                &request,
                core.banking(),
                |mut c, r| async move { c.open_account(r).await },
            )
            .await?
            .value)
    }

    /// Money paid in: branch cash → `account`. `amount` is a decimal string in the
    /// account's currency (`"250.00"`).
    pub async fn deposit(
        &self,
        account: &str,
        amount: &str,
        idempotency_key: Option<&str>,
    ) -> Result<v1::TransferReceipt, ClientError> {
        self.deposit_with(v1::DepositRequest {
            account_number: account.to_owned(),
            amount: amount.to_owned(),
            idempotency_key: idempotency_key.unwrap_or_default().to_owned(),
            reference: String::new(),
            ..Default::default()
        })
        .await
    }

    /// [`deposit`](Self::deposit) with every field of the request (a reference).
    /// An empty `idempotency_key` is replaced by a fresh one.
    pub async fn deposit_with(
        &self,
        mut request: v1::DepositRequest,
    ) -> Result<v1::TransferReceipt, ClientError> {
        request.idempotency_key = key_or_new(&request.idempotency_key);
        let core = self.core();
        Ok(core
            .unary(
                "Deposit",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.deposit(r).await },
            )
            .await?
            .value)
    }

    /// Money paid out: `account` → branch cash.
    pub async fn withdraw(
        &self,
        account: &str,
        amount: &str,
        idempotency_key: Option<&str>,
    ) -> Result<v1::TransferReceipt, ClientError> {
        self.withdraw_with(v1::WithdrawRequest {
            account_number: account.to_owned(),
            amount: amount.to_owned(),
            idempotency_key: idempotency_key.unwrap_or_default().to_owned(),
            reference: String::new(),
            ..Default::default()
        })
        .await
    }

    /// [`withdraw`](Self::withdraw) with every field of the request.
    pub async fn withdraw_with(
        &self,
        mut request: v1::WithdrawRequest,
    ) -> Result<v1::TransferReceipt, ClientError> {
        request.idempotency_key = key_or_new(&request.idempotency_key);
        let core = self.core();
        Ok(core
            .unary(
                "Withdraw",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.withdraw(r).await },
            )
            .await?
            .value)
    }

    /// A payment between two accounts of the branch, without a fee (see
    /// [`transfer_with`](Self::transfer_with) for one).
    pub async fn transfer(
        &self,
        from: &str,
        to: &str,
        amount: &str,
        idempotency_key: Option<&str>,
        reference: &str,
    ) -> Result<v1::TransferReceipt, ClientError> {
        self.transfer_with(v1::TransferRequest {
            from_account: from.to_owned(),
            to_account: to.to_owned(),
            amount: amount.to_owned(),
            idempotency_key: idempotency_key.unwrap_or_default().to_owned(),
            reference: reference.to_owned(),
            fee: String::new(),
            ..Default::default()
        })
        .await
    }

    /// [`transfer`](Self::transfer) with every field of the request (a fee).
    pub async fn transfer_with(
        &self,
        mut request: v1::TransferRequest,
    ) -> Result<v1::TransferReceipt, ClientError> {
        request.idempotency_key = key_or_new(&request.idempotency_key);
        let core = self.core();
        Ok(core
            .unary(
                "Transfer",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.transfer(r).await },
            )
            .await?
            .value)
    }

    /// The account's balances, with the configured read consistency.
    pub async fn balance(&self, account: &str) -> Result<v1::GetBalanceResponse, ClientError> {
        let core = self.core();
        let request = v1::GetBalanceRequest {
            account_number: account.to_owned(),
            consistency: core.consistency.into(),
        };
        Ok(core
            .unary(
                "GetBalance",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.get_balance(r).await },
            )
            .await?
            .value)
    }

    /// The first page of the account's movements in `[from_ns, to_ns]` (0 =
    /// unbounded), at most `limit` entries (1 to 1,000; 0 = 100). For the next
    /// pages, pass `next_page_token` to [`statement_with`](Self::statement_with).
    pub async fn statement(
        &self,
        account: &str,
        from_ns: u64,
        to_ns: u64,
        limit: u32,
    ) -> Result<v1::GetStatementResponse, ClientError> {
        self.statement_with(v1::GetStatementRequest {
            account_number: account.to_owned(),
            from_ns,
            to_ns,
            limit,
            page_token: String::new(),
            reversed: false,
            consistency: self.core().consistency.into(),
        })
        .await
    }

    /// [`statement`](Self::statement) with every field of the request (page
    /// token, order, consistency).
    pub async fn statement_with(
        &self,
        request: v1::GetStatementRequest,
    ) -> Result<v1::GetStatementResponse, ClientError> {
        let core = self.core();
        Ok(core
            .unary(
                "GetStatement",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.get_statement(r).await },
            )
            .await?
            .value)
    }

    /// Reserves `amount` on the account (a pending transfer to the branch's
    /// settlement account) for `timeout_seconds` (0 = the branch's default).
    pub async fn place_hold(
        &self,
        account: &str,
        amount: &str,
        idempotency_key: Option<&str>,
        timeout_seconds: u32,
    ) -> Result<v1::HoldReceipt, ClientError> {
        self.place_hold_with(v1::PlaceHoldRequest {
            account_number: account.to_owned(),
            amount: amount.to_owned(),
            idempotency_key: idempotency_key.unwrap_or_default().to_owned(),
            timeout_seconds,
            reference: String::new(),
            to_account: String::new(),
        })
        .await
    }

    /// [`place_hold`](Self::place_hold) with every field of the request
    /// (reference, beneficiary account).
    pub async fn place_hold_with(
        &self,
        mut request: v1::PlaceHoldRequest,
    ) -> Result<v1::HoldReceipt, ClientError> {
        request.idempotency_key = key_or_new(&request.idempotency_key);
        let core = self.core();
        Ok(core
            .unary(
                "PlaceHold",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.place_hold(r).await },
            )
            .await?
            .value)
    }

    /// Posts the hold: all of it (`None`) or part (the rest is released). Its
    /// transfer id derives from the hold id, so retries are safe.
    pub async fn capture_hold(
        &self,
        hold_id: u128,
        amount: Option<&str>,
    ) -> Result<v1::HoldReceipt, ClientError> {
        let request = v1::CaptureHoldRequest {
            hold_id: Some(hold_id.into()),
            amount: amount.unwrap_or_default().to_owned(),
        };
        let core = self.core();
        Ok(core
            .unary(
                "CaptureHold",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.capture_hold(r).await },
            )
            .await?
            .value)
    }

    /// Voids the hold: the money is available again. Retries are safe.
    pub async fn release_hold(&self, hold_id: u128) -> Result<v1::HoldReceipt, ClientError> {
        let request = v1::ReleaseHoldRequest {
            hold_id: Some(hold_id.into()),
        };
        let core = self.core();
        Ok(core
            .unary(
                "ReleaseHold",
                Repeat::Safe,
                &request,
                core.banking(),
                |mut c, r| async move { c.release_hold(r).await },
            )
            .await?
            .value)
    }
}
