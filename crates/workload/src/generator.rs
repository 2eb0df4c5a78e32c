//! The traffic generator: a bank of branches and customers, and a stream of transfer
//! batches that looks like a day at a retail bank.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;

use corebank_ledger::{
    Account, AccountFlags, BATCH_EVENTS_MAX, CreateTransfersResult, Transfer, TransferFlags,
};

use crate::bank::{
    BRANCH_CODE_MAX, Currency, FIRST_CUSTOMER_SERIAL, InternalAccount, SERIAL_MAX, account_code,
    account_id, split_account_id, transfer_code,
};
use crate::rng::Rng;

/// How often each customer action is chosen, as relative weights (0 turns one off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Cash paid in (cash → current account).
    pub deposit: u32,
    /// A salary paid in (cash → current account), the customer's own fixed amount.
    pub salary: u32,
    /// Cash taken out in round amounts (current account → cash).
    pub withdrawal: u32,
    /// A person-to-person payment to a customer with the same currency.
    pub payment: u32,
    /// A payment plus its fee, as a two-event linked chain: both apply or neither.
    pub payment_with_fee: u32,
    /// A bill paid to an outside biller (current account → bill payables).
    pub bill_payment: u32,
    /// A card authorisation hold (pending), later captured, partly captured, released
    /// or left to expire (see [`HoldFates`]).
    pub card_hold: u32,
    /// A transfer between a customer's current and savings accounts.
    pub own_accounts: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            deposit: 80,
            salary: 40,
            withdrawal: 100,
            payment: 250,
            payment_with_fee: 80,
            bill_payment: 100,
            card_hold: 150,
            own_accounts: 50,
        }
    }
}

impl Mix {
    fn weights(&self) -> [u32; Action::ALL.len()] {
        [
            self.deposit,
            self.salary,
            self.withdrawal,
            self.payment,
            self.payment_with_fee,
            self.bill_payment,
            self.card_hold,
            self.own_accounts,
        ]
    }
}

/// What becomes of card holds, as relative weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldFates {
    /// Captured in full (`post_pending_transfer` with the held amount).
    pub capture_full: u32,
    /// Captured for less than was held (the rest is released by the post).
    pub capture_partial: u32,
    /// Released (`void_pending_transfer`).
    pub release: u32,
    /// Never touched again: the ledger expires them after their timeout.
    pub expire: u32,
}

impl Default for HoldFates {
    fn default() -> Self {
        Self {
            capture_full: 60,
            capture_partial: 15,
            release: 15,
            expire: 10,
        }
    }
}

/// Everything that shapes a workload. Equal configs give equal workloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Fixes every random choice.
    pub seed: u64,
    /// The code of the first branch; branches are numbered from it.
    pub first_branch: u16,
    /// How many branches.
    pub branches: u16,
    /// Customers per branch; each has a current account and maybe a savings account.
    pub customers_per_branch: u32,
    /// The currencies (ledgers). Branch `i`'s home currency is `currencies[i % n]`;
    /// most of its customers bank in it.
    pub currencies: Vec<Currency>,
    /// Customers (per thousand) who also have a savings account.
    pub savings_per_mille: u32,
    /// Customers (per thousand) whose accounts keep balance history.
    pub history_per_mille: u32,
    /// The action mix.
    pub mix: Mix,
    /// What becomes of card holds.
    pub hold_fates: HoldFates,
    /// Timeout of card holds, in seconds (the ledger expires them after it).
    pub hold_timeout_secs: RangeInclusive<u32>,
    /// How many batches after a hold its capture or release is sent.
    pub hold_resolve_after_batches: RangeInclusive<u32>,
    /// Spending attempts (per thousand) that ask for more than the customer has, and
    /// so fail with `exceeds_credits`.
    pub overdraw_per_mille: u32,
    /// Events (per thousand) that resend an earlier transfer unchanged, as a client
    /// retrying would: `exists` when it had succeeded, `id_already_failed` when it had
    /// failed for lack of funds.
    pub resubmit_per_mille: u32,
    /// The id of the first transfer; ids then count up by one.
    pub first_transfer_id: u128,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            first_branch: 1,
            branches: 3,
            customers_per_branch: 1_000,
            currencies: vec![Currency::EUR, Currency::USD, Currency::GBP],
            savings_per_mille: 300,
            history_per_mille: 100,
            mix: Mix::default(),
            hold_fates: HoldFates::default(),
            hold_timeout_secs: 2..=10,
            hold_resolve_after_batches: 1..=20,
            overdraw_per_mille: 40,
            resubmit_per_mille: 10,
            first_transfer_id: 1,
        }
    }
}

/// Why a [`WorkloadConfig`] cannot make a workload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("there must be at least one branch")]
    NoBranches,
    #[error("branch codes {first}..{first}+{count} run past {max}", max = BRANCH_CODE_MAX)]
    BranchCodesOutOfRange { first: u16, count: u16 },
    #[error("there must be at least one customer per branch")]
    NoCustomers,
    #[error("at most {max} customers per branch fit the account numbering")]
    TooManyCustomers { max: u64 },
    #[error("there must be at least one currency")]
    NoCurrencies,
    #[error("at most {max} currencies are supported", max = InternalAccount::CURRENCIES_MAX)]
    TooManyCurrencies,
    #[error("currency ledger {0} is invalid (0) or listed twice")]
    BadCurrency(u32),
    #[error("currency {0} has an exponent above 18")]
    ExponentTooLarge(&'static str),
    #[error("{0}: every weight is 0")]
    NoWeight(&'static str),
    #[error("{0}: the range is empty or starts at 0")]
    BadRange(&'static str),
    #[error("{0}: a per-mille value must be at most 1000")]
    PerMilleTooLarge(&'static str),
    #[error("the first transfer id must not be 0")]
    FirstTransferIdZero,
}

/// The kind of one generated event, for the generator's own counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Deposit,
    Salary,
    Withdrawal,
    Payment,
    /// The fee leg of a payment with a fee (the payment leg counts as `Payment`).
    Fee,
    BillPayment,
    CardHold,
    HoldCapture,
    HoldPartialCapture,
    HoldRelease,
    OwnAccounts,
    /// An earlier transfer sent again unchanged.
    Resubmission,
}

impl EventKind {
    pub const ALL: [Self; 12] = [
        Self::Deposit,
        Self::Salary,
        Self::Withdrawal,
        Self::Payment,
        Self::Fee,
        Self::BillPayment,
        Self::CardHold,
        Self::HoldCapture,
        Self::HoldPartialCapture,
        Self::HoldRelease,
        Self::OwnAccounts,
        Self::Resubmission,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Salary => "salary",
            Self::Withdrawal => "withdrawal",
            Self::Payment => "payment",
            Self::Fee => "fee",
            Self::BillPayment => "bill_payment",
            Self::CardHold => "card_hold",
            Self::HoldCapture => "hold_capture",
            Self::HoldPartialCapture => "hold_partial_capture",
            Self::HoldRelease => "hold_release",
            Self::OwnAccounts => "own_accounts",
            Self::Resubmission => "resubmission",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// How many events of one kind were sent, and how many of them failed (failures are
/// known only for batches whose results were passed to [`Workload::observe`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindStats {
    pub sent: u64,
    pub failed: u64,
}

impl KindStats {
    pub const fn succeeded(&self) -> u64 {
        self.sent.saturating_sub(self.failed)
    }
}

/// The customer actions, in the order of [`Mix::weights`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Deposit,
    Salary,
    Withdrawal,
    Payment,
    PaymentWithFee,
    BillPayment,
    CardHold,
    OwnAccounts,
}

impl Action {
    const ALL: [Self; 8] = [
        Self::Deposit,
        Self::Salary,
        Self::Withdrawal,
        Self::Payment,
        Self::PaymentWithFee,
        Self::BillPayment,
        Self::CardHold,
        Self::OwnAccounts,
    ];
}

/// What will become of a hold that the generator will capture or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    CaptureFull,
    CapturePartial,
    Release,
}

/// A hold waiting for its capture or release.
#[derive(Clone, Copy, Debug)]
struct Hold {
    slot: u32,
    debit: u128,
    credit: u128,
    amount: u128,
    resolution: Resolution,
}

/// A customer: a current account, maybe a savings account, one currency, one branch.
#[derive(Clone, Copy, Debug)]
struct Customer {
    branch: u16,
    currency: u32,
    current: u32,
    savings: Option<u32>,
    salary: u128,
    history: bool,
}

/// What the generator believes about one customer account.
#[derive(Clone, Copy, Debug)]
struct Slot {
    id: u128,
    /// credits posted minus debits posted and pending, as far as the generator knows:
    /// never above the ledger's figure when every batch was observed.
    available: u128,
    /// Money that may have come back without the generator knowing (holds that expire
    /// or whose capture failed): the ledger's figure is at most `available + hidden`.
    hidden: u128,
}

/// How the generator's beliefs change if one event applies, to be undone if it fails.
#[derive(Clone, Copy, Debug)]
struct Effect {
    kind: EventKind,
    /// A slot whose available balance went down.
    take: Option<(u32, u128)>,
    /// A slot whose available balance went up.
    give: Option<(u32, u128)>,
    hold: HoldEffect,
}

#[derive(Clone, Copy, Debug)]
enum HoldEffect {
    None,
    /// A hold queued for resolution under this key.
    Placed {
        key: (u64, u128),
    },
    /// A capture or release of a hold of `amount` on `slot`.
    Resolves {
        slot: u32,
        amount: u128,
    },
}

impl Effect {
    const fn none(kind: EventKind) -> Self {
        Self {
            kind,
            take: None,
            give: None,
            hold: HoldEffect::None,
        }
    }
}

/// How many recent events are kept to be resent.
const RECENT_MAX: usize = 4_096;

/// A seeded generator of synthetic bank traffic: see the crate documentation.
#[derive(Clone, Debug)]
pub struct Workload {
    config: WorkloadConfig,
    rng: Rng,
    customers: Vec<Customer>,
    slots: Vec<Slot>,
    /// Customer indexes per currency.
    by_currency: Vec<Vec<u32>>,
    /// Minor units per major unit, per currency.
    units: Vec<u128>,
    mix: [u32; Action::ALL.len()],
    fates: [u32; 4],
    next_id: u128,
    batches: u64,
    /// Holds to capture or release, by (due batch, id).
    holds: BTreeMap<(u64, u128), Hold>,
    /// Recent standalone events of earlier batches, to resend.
    recent: VecDeque<Transfer>,
    /// One per event of the last batch.
    effects: Vec<Effect>,
    kinds: [KindStats; EventKind::ALL.len()],
    overdraws: u64,
}

impl Workload {
    /// Builds the bank described by `config` (its accounts are not created anywhere
    /// yet: see [`Workload::setup_batches`]).
    pub fn new(config: WorkloadConfig) -> Result<Self, ConfigError> {
        validate(&config)?;
        let currency_count = config.currencies.len();
        let units = config
            .currencies
            .iter()
            .map(|c| c.minor_per_major())
            .collect();
        let mut rng = Rng::with_stream(config.seed, 0xBA4C);
        let mut customers = Vec::new();
        let mut slots = Vec::new();
        let mut by_currency = vec![Vec::new(); currency_count];
        let currency_count_u32 = u32::try_from(currency_count).unwrap_or(1);
        for b in 0..config.branches {
            let branch = config.first_branch + b;
            let home = u32::from(b) % currency_count_u32;
            for c in 0..config.customers_per_branch {
                let currency = if rng.chance(800) {
                    home
                } else {
                    u32::try_from(rng.below(u64::from(currency_count_u32))).unwrap_or(0)
                };
                let serial = FIRST_CUSTOMER_SERIAL + 2 * u64::from(c);
                let index =
                    u32::try_from(customers.len()).map_err(|_| ConfigError::TooManyCustomers {
                        max: u64::from(u32::MAX / 2),
                    })?;
                let current = push_slot(&mut slots, branch, serial)?;
                let savings = if rng.chance(config.savings_per_mille) {
                    Some(push_slot(&mut slots, branch, serial + 1)?)
                } else {
                    None
                };
                let unit = config.currencies[currency as usize].minor_per_major();
                let salary = u128::from(rng.between(1_500, 6_000)) * unit;
                let history = rng.chance(config.history_per_mille);
                customers.push(Customer {
                    branch,
                    currency,
                    current,
                    savings,
                    salary,
                    history,
                });
                by_currency[currency as usize].push(index);
            }
        }
        Ok(Self {
            rng: Rng::with_stream(config.seed, 0x7AFF1C),
            mix: config.mix.weights(),
            fates: [
                config.hold_fates.capture_full,
                config.hold_fates.capture_partial,
                config.hold_fates.release,
                config.hold_fates.expire,
            ],
            next_id: config.first_transfer_id,
            config,
            customers,
            slots,
            by_currency,
            units,
            batches: 0,
            holds: BTreeMap::new(),
            recent: VecDeque::with_capacity(RECENT_MAX),
            effects: Vec::new(),
            kinds: [KindStats::default(); EventKind::ALL.len()],
            overdraws: 0,
        })
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// How many customers the bank has.
    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    /// How many accounts [`Workload::accounts`] creates (internal and customer).
    pub fn account_count(&self) -> usize {
        usize::from(self.config.branches)
            * self.config.currencies.len()
            * InternalAccount::ALL.len()
            + self.slots.len()
    }

    /// Every account of the bank, in creation order: per branch, its internal accounts
    /// (cash, fee income, card settlement, bill payables; one per currency), then its
    /// customers' current and savings accounts.
    pub fn accounts(&self) -> Vec<Account> {
        let mut accounts = Vec::with_capacity(self.account_count());
        let mut customers = self.customers.iter().peekable();
        for b in 0..self.config.branches {
            let branch = self.config.first_branch + b;
            for kind in InternalAccount::ALL {
                for currency in &self.config.currencies {
                    // Numbered by the currency's slot, with no user data: the very
                    // accounts a corebank branch server opens (corebank-banking), so the
                    // workload runs against a real branch too.
                    if let Some(id) = kind.id(branch, usize::from(currency.slot)) {
                        accounts.push(Account {
                            id,
                            ledger: currency.numeric,
                            code: kind.code(),
                            ..Account::default()
                        });
                    }
                }
            }
            while let Some(customer) = customers.next_if(|c| c.branch == branch) {
                let ledger = self.config.currencies[customer.currency as usize].numeric;
                let mut flags = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
                if customer.history {
                    flags.insert(AccountFlags::HISTORY);
                }
                let number = self.slots[customer.current as usize].id;
                let account = |id, code| Account {
                    id,
                    ledger,
                    code,
                    flags,
                    user_data_128: number,
                    user_data_32: u32::from(branch),
                    ..Account::default()
                };
                accounts.push(account(number, account_code::CURRENT));
                if let Some(savings) = customer.savings {
                    accounts.push(account(
                        self.slots[savings as usize].id,
                        account_code::SAVINGS,
                    ));
                }
            }
        }
        accounts
    }

    /// The account-creation events, in batches of at most [`BATCH_EVENTS_MAX`].
    pub fn setup_batches(&self) -> Vec<Vec<Account>> {
        self.accounts()
            .chunks(BATCH_EVENTS_MAX)
            .map(<[Account]>::to_vec)
            .collect()
    }

    /// The next batch of at most `max_events` transfers (capped at
    /// [`BATCH_EVENTS_MAX`]; 0 gives an empty batch). A batch always holds exactly that
    /// many events, and no linked chain is left open at its end.
    ///
    /// Pass the ledger's results for the batch to [`Workload::observe`] before asking
    /// for the next one, so that the generator knows what each customer can spend.
    pub fn next_batch(&mut self, max_events: usize) -> Vec<Transfer> {
        let max = max_events.min(BATCH_EVENTS_MAX);
        self.effects.clear();
        let mut batch = Vec::with_capacity(max);
        if max == 0 {
            return batch;
        }
        self.batches += 1;
        while batch.len() < max {
            let Some(entry) = self.holds.first_entry() else {
                break;
            };
            if entry.key().0 > self.batches {
                break;
            }
            let pending_id = entry.key().1;
            let hold = entry.remove();
            self.push_resolution(&mut batch, pending_id, hold);
        }
        while batch.len() < max {
            if !self.recent.is_empty() && self.rng.chance(self.config.resubmit_per_mille) {
                let event = self.recent[self.rng.index(self.recent.len())];
                self.push(&mut batch, event, Effect::none(EventKind::Resubmission));
                continue;
            }
            let room = max - batch.len();
            self.push_action(&mut batch, room);
        }
        self.remember(&batch);
        batch
    }

    /// Tells the generator how its last batch went: `results` are what
    /// `Ledger::create_transfers` returned for it (the failed events only). The
    /// generator undoes what it assumed of each failed event, stops tracking holds
    /// that were never placed, and counts failures per kind.
    pub fn observe(&mut self, results: &[CreateTransfersResult]) {
        for result in results {
            let Some(effect) = usize::try_from(result.index)
                .ok()
                .and_then(|i| self.effects.get(i))
                .copied()
            else {
                continue;
            };
            self.kinds[effect.kind.index()].failed += 1;
            if let Some((slot, amount)) = effect.take {
                let slot = &mut self.slots[slot as usize];
                slot.available = slot.available.saturating_add(amount);
            }
            if let Some((slot, amount)) = effect.give {
                let slot = &mut self.slots[slot as usize];
                slot.available = slot.available.saturating_sub(amount);
            }
            match effect.hold {
                HoldEffect::None => {}
                HoldEffect::Placed { key } => {
                    self.holds.remove(&key);
                }
                HoldEffect::Resolves { slot, amount } => {
                    let slot = &mut self.slots[slot as usize];
                    slot.hidden = slot.hidden.saturating_add(amount);
                }
            }
        }
        self.effects.clear();
    }

    /// Events sent and failed per kind, in [`EventKind::ALL`] order.
    pub fn kind_stats(&self) -> impl Iterator<Item = (EventKind, KindStats)> + '_ {
        EventKind::ALL
            .iter()
            .map(|kind| (*kind, self.kinds[kind.index()]))
    }

    /// Events sent and failed of one kind.
    pub fn stats_of(&self, kind: EventKind) -> KindStats {
        self.kinds[kind.index()]
    }

    /// How many spending attempts were sent on purpose beyond the customer's funds.
    pub fn overdraw_attempts(&self) -> u64 {
        self.overdraws
    }

    /// Holds placed and still waiting for their capture or release.
    pub fn holds_awaiting_resolution(&self) -> usize {
        self.holds.len()
    }

    /// How many batches were made.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The id the next new transfer will get.
    pub fn next_transfer_id(&self) -> u128 {
        self.next_id
    }

    /// What the generator believes customer account `id` can spend (credits posted
    /// minus debits posted and pending). When every batch was observed, the ledger's
    /// figure is at least this. `None` for ids that are not customer accounts.
    pub fn expected_available(&self, id: u128) -> Option<u128> {
        self.slot_of(id).map(|slot| self.slots[slot].available)
    }

    fn slot_of(&self, id: u128) -> Option<usize> {
        let (branch, serial) = split_account_id(id)?;
        let b = branch.checked_sub(self.config.first_branch)?;
        if b >= self.config.branches {
            return None;
        }
        let offset = serial.checked_sub(FIRST_CUSTOMER_SERIAL)?;
        let index = u64::from(b) * u64::from(self.config.customers_per_branch) + offset / 2;
        let customer = self.customers.get(usize::try_from(index).ok()?)?;
        if customer.branch != branch || offset / 2 >= u64::from(self.config.customers_per_branch) {
            return None;
        }
        let slot = if offset % 2 == 0 {
            Some(customer.current)
        } else {
            customer.savings
        };
        slot.map(|s| s as usize)
    }

    // ------------------------------------------------------------------ events

    fn take_id(&mut self) -> u128 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn push(&mut self, batch: &mut Vec<Transfer>, event: Transfer, effect: Effect) {
        self.kinds[effect.kind.index()].sent += 1;
        if let Some((slot, amount)) = effect.take {
            let slot = &mut self.slots[slot as usize];
            slot.available = slot.available.saturating_sub(amount);
        }
        if let Some((slot, amount)) = effect.give {
            let slot = &mut self.slots[slot as usize];
            slot.available = slot.available.saturating_add(amount);
        }
        batch.push(event);
        self.effects.push(effect);
    }

    /// A new transfer between two accounts.
    fn transfer(
        &mut self,
        debit: u128,
        credit: u128,
        amount: u128,
        currency: u32,
        code: u16,
    ) -> Transfer {
        Transfer {
            id: self.take_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            ledger: self.config.currencies[currency as usize].numeric,
            code,
            ..Transfer::default()
        }
    }

    fn internal(&self, kind: InternalAccount, customer: &Customer) -> u128 {
        // Validated in `new`: every branch code and currency index fits.
        let slot = self.config.currencies[customer.currency as usize].slot;
        kind.id(customer.branch, usize::from(slot))
            .unwrap_or(u128::MAX)
    }

    fn unit(&self, customer: &Customer) -> u128 {
        self.units[customer.currency as usize]
    }

    /// How much a customer spends from `slot`: usually within `lo..=hi` and what the
    /// slot has (keeping `reserve` back), `None` when it has less than `lo + reserve`;
    /// sometimes (an overdraw) more than the slot can possibly hold. The flag tells
    /// which.
    fn spend(
        &mut self,
        slot: u32,
        unit: u128,
        lo: u128,
        hi: u128,
        reserve: u128,
    ) -> Option<(u128, bool)> {
        let Slot {
            available, hidden, ..
        } = self.slots[slot as usize];
        if self.rng.chance(self.config.overdraw_per_mille) {
            self.overdraws += 1;
            let extra = self.rng.amount_between(1, 100 * unit);
            return Some((available.saturating_add(hidden).saturating_add(extra), true));
        }
        let spendable = available.checked_sub(reserve)?;
        if spendable < lo {
            return None;
        }
        Some((self.rng.amount_between(lo, hi.min(spendable)), false))
    }

    fn push_action(&mut self, batch: &mut Vec<Transfer>, room: usize) {
        let action = self
            .rng
            .weighted(&self.mix)
            .map_or(Action::Deposit, |i| Action::ALL[i]);
        let index = self.rng.index(self.customers.len());
        let customer = self.customers[index];
        let done = match action {
            Action::Deposit => {
                self.deposit(batch, &customer, false);
                true
            }
            Action::Salary => {
                self.deposit(batch, &customer, true);
                true
            }
            Action::Withdrawal => self.withdrawal(batch, &customer),
            Action::Payment => self.payment(batch, &customer, false),
            Action::PaymentWithFee => self.payment(batch, &customer, room >= 2),
            Action::BillPayment => self.bill_payment(batch, &customer),
            Action::CardHold => self.card_hold(batch, &customer),
            Action::OwnAccounts => self.own_accounts(batch, &customer),
        };
        if !done {
            // Not enough money for what the customer wanted: they pay some in instead.
            self.deposit(batch, &customer, false);
        }
    }

    fn deposit(&mut self, batch: &mut Vec<Transfer>, customer: &Customer, salary: bool) {
        let unit = self.unit(customer);
        let (amount, code, kind) = if salary {
            (customer.salary, transfer_code::SALARY, EventKind::Salary)
        } else {
            (
                self.rng.amount_between(20 * unit, 2_000 * unit),
                transfer_code::DEPOSIT,
                EventKind::Deposit,
            )
        };
        let cash = self.internal(InternalAccount::Cash, customer);
        let slot = customer.current;
        let event = self.transfer(
            cash,
            self.slots[slot as usize].id,
            amount,
            customer.currency,
            code,
        );
        self.push(
            batch,
            event,
            Effect {
                give: Some((slot, amount)),
                ..Effect::none(kind)
            },
        );
    }

    /// Pushes a spend from `slot` to `credit`; an overdraw carries no effect (it is
    /// meant to fail, and must not inflate the payee's balance meanwhile).
    #[allow(clippy::too_many_arguments)]
    fn push_spend(
        &mut self,
        batch: &mut Vec<Transfer>,
        mut event: Transfer,
        kind: EventKind,
        slot: u32,
        credit_slot: Option<u32>,
        overdraw: bool,
        linked: bool,
    ) {
        if linked {
            event.flags.insert(TransferFlags::LINKED);
        }
        let amount = event.amount;
        let effect = if overdraw {
            Effect::none(kind)
        } else {
            Effect {
                take: Some((slot, amount)),
                give: credit_slot.map(|s| (s, amount)),
                ..Effect::none(kind)
            }
        };
        self.push(batch, event, effect);
    }

    fn withdrawal(&mut self, batch: &mut Vec<Transfer>, customer: &Customer) -> bool {
        let unit = self.unit(customer);
        let step = 10 * unit;
        let Some((amount, overdraw)) = self.spend(customer.current, unit, 2 * step, 40 * step, 0)
        else {
            return false;
        };
        // Cash comes in notes: round down to whole tens (up, for an overdraw).
        let amount = if overdraw {
            amount.div_ceil(step).saturating_mul(step)
        } else {
            amount / step * step
        };
        let cash = self.internal(InternalAccount::Cash, customer);
        let event = self.transfer(
            self.slots[customer.current as usize].id,
            cash,
            amount,
            customer.currency,
            transfer_code::WITHDRAWAL,
        );
        self.push_spend(
            batch,
            event,
            EventKind::Withdrawal,
            customer.current,
            None,
            overdraw,
            false,
        );
        true
    }

    fn payment(&mut self, batch: &mut Vec<Transfer>, payer: &Customer, with_fee: bool) -> bool {
        let peers = &self.by_currency[payer.currency as usize];
        if peers.len() < 2 {
            return false;
        }
        let payer_slot = payer.current;
        let mut payee = None;
        for _ in 0..8 {
            let candidate = self.customers[peers[self.rng.index(peers.len())] as usize];
            if candidate.current != payer_slot {
                payee = Some(candidate);
                break;
            }
        }
        let Some(payee) = payee else { return false };
        let unit = self.unit(payer);
        let fee = if with_fee {
            (unit / 4 * u128::from(self.rng.between(2, 8))).max(1)
        } else {
            0
        };
        let Some((amount, overdraw)) = self.spend(payer_slot, unit, unit, 500 * unit, fee) else {
            return false;
        };
        let payer_id = self.slots[payer_slot as usize].id;
        let event = self.transfer(
            payer_id,
            self.slots[payee.current as usize].id,
            amount,
            payer.currency,
            transfer_code::PAYMENT,
        );
        self.push_spend(
            batch,
            event,
            EventKind::Payment,
            payer_slot,
            Some(payee.current),
            overdraw,
            with_fee,
        );
        if with_fee {
            let income = self.internal(InternalAccount::FeeIncome, payer);
            let event = self.transfer(payer_id, income, fee, payer.currency, transfer_code::FEE);
            self.push_spend(
                batch,
                event,
                EventKind::Fee,
                payer_slot,
                None,
                overdraw,
                false,
            );
        }
        true
    }

    fn bill_payment(&mut self, batch: &mut Vec<Transfer>, customer: &Customer) -> bool {
        let unit = self.unit(customer);
        let Some((amount, overdraw)) = self.spend(customer.current, unit, 30 * unit, 300 * unit, 0)
        else {
            return false;
        };
        let biller = self.internal(InternalAccount::BillPayables, customer);
        let event = self.transfer(
            self.slots[customer.current as usize].id,
            biller,
            amount,
            customer.currency,
            transfer_code::BILL_PAYMENT,
        );
        self.push_spend(
            batch,
            event,
            EventKind::BillPayment,
            customer.current,
            None,
            overdraw,
            false,
        );
        true
    }

    fn card_hold(&mut self, batch: &mut Vec<Transfer>, customer: &Customer) -> bool {
        let unit = self.unit(customer);
        let slot = customer.current;
        let Some((amount, overdraw)) = self.spend(slot, unit, 5 * unit, 250 * unit, 0) else {
            return false;
        };
        let settlement = self.internal(InternalAccount::CardSettlement, customer);
        let debit = self.slots[slot as usize].id;
        let mut event = self.transfer(
            debit,
            settlement,
            amount,
            customer.currency,
            transfer_code::CARD_HOLD,
        );
        event.flags = TransferFlags::PENDING;
        let timeouts = &self.config.hold_timeout_secs;
        event.timeout = u32::try_from(
            self.rng
                .between(u64::from(*timeouts.start()), u64::from(*timeouts.end())),
        )
        .unwrap_or(*timeouts.end());
        if overdraw {
            // A declined authorisation: nothing to capture later.
            self.push(batch, event, Effect::none(EventKind::CardHold));
            return true;
        }
        let resolution = match self.rng.weighted(&self.fates) {
            Some(0) => Some(Resolution::CaptureFull),
            Some(1) => Some(Resolution::CapturePartial),
            Some(2) => Some(Resolution::Release),
            _ => None,
        };
        let hold = match resolution {
            Some(resolution) => {
                let delays = &self.config.hold_resolve_after_batches;
                let due = self.batches
                    + self
                        .rng
                        .between(u64::from(*delays.start()), u64::from(*delays.end()));
                let key = (due, event.id);
                self.holds.insert(
                    key,
                    Hold {
                        slot,
                        debit,
                        credit: settlement,
                        amount,
                        resolution,
                    },
                );
                HoldEffect::Placed { key }
            }
            None => {
                // Left to expire: the money comes back when the ledger expires it.
                let s = &mut self.slots[slot as usize];
                s.hidden = s.hidden.saturating_add(amount);
                HoldEffect::None
            }
        };
        self.push(
            batch,
            event,
            Effect {
                take: Some((slot, amount)),
                give: None,
                hold,
                kind: EventKind::CardHold,
            },
        );
        true
    }

    fn push_resolution(&mut self, batch: &mut Vec<Transfer>, pending_id: u128, hold: Hold) {
        let (flags, amount, kind) = match hold.resolution {
            Resolution::CaptureFull => (
                TransferFlags::POST_PENDING_TRANSFER,
                hold.amount,
                EventKind::HoldCapture,
            ),
            Resolution::CapturePartial => {
                let amount = self.rng.amount_between(
                    (hold.amount / 2).max(1),
                    hold.amount.saturating_sub(1).max(1),
                );
                (
                    TransferFlags::POST_PENDING_TRANSFER,
                    amount,
                    EventKind::HoldPartialCapture,
                )
            }
            // 0 releases the full held amount.
            Resolution::Release => (
                TransferFlags::VOID_PENDING_TRANSFER,
                0,
                EventKind::HoldRelease,
            ),
        };
        let released = match hold.resolution {
            Resolution::Release => hold.amount,
            _ => hold.amount - amount,
        };
        let event = Transfer {
            id: self.take_id(),
            debit_account_id: hold.debit,
            credit_account_id: hold.credit,
            amount,
            pending_id,
            // Ledger and code 0: the post or void takes them from the hold.
            flags,
            ..Transfer::default()
        };
        let effect = Effect {
            kind,
            take: None,
            give: (released > 0).then_some((hold.slot, released)),
            hold: HoldEffect::Resolves {
                slot: hold.slot,
                amount: hold.amount,
            },
        };
        self.push(batch, event, effect);
    }

    fn own_accounts(&mut self, batch: &mut Vec<Transfer>, customer: &Customer) -> bool {
        let Some(savings) = customer.savings else {
            return self.payment(batch, customer, false);
        };
        let unit = self.unit(customer);
        let (from, to) = if self.rng.chance(700) {
            (customer.current, savings)
        } else {
            (savings, customer.current)
        };
        let available = self.slots[from as usize].available;
        let Some((amount, overdraw)) = self.spend(from, unit, unit, (available / 2).max(unit), 0)
        else {
            return false;
        };
        let event = self.transfer(
            self.slots[from as usize].id,
            self.slots[to as usize].id,
            amount,
            customer.currency,
            transfer_code::OWN_ACCOUNTS,
        );
        self.push_spend(
            batch,
            event,
            EventKind::OwnAccounts,
            from,
            Some(to),
            overdraw,
            false,
        );
        true
    }

    /// Keeps the batch's standalone first-time events to resend later.
    fn remember(&mut self, batch: &[Transfer]) {
        for (event, effect) in batch.iter().zip(&self.effects) {
            let standalone =
                !event.flags.contains(TransferFlags::LINKED) && effect.kind != EventKind::Fee;
            if standalone && effect.kind != EventKind::Resubmission {
                if self.recent.len() == RECENT_MAX {
                    self.recent.pop_front();
                }
                self.recent.push_back(*event);
            }
        }
    }
}

fn push_slot(slots: &mut Vec<Slot>, branch: u16, serial: u64) -> Result<u32, ConfigError> {
    let too_many = || ConfigError::TooManyCustomers {
        max: u64::from(u32::MAX / 2),
    };
    let index = u32::try_from(slots.len()).map_err(|_| too_many())?;
    let id = account_id(branch, serial).ok_or_else(too_many)?;
    slots.push(Slot {
        id,
        available: 0,
        hidden: 0,
    });
    Ok(index)
}

fn validate(config: &WorkloadConfig) -> Result<(), ConfigError> {
    if config.branches == 0 {
        return Err(ConfigError::NoBranches);
    }
    let last = u32::from(config.first_branch) + u32::from(config.branches) - 1;
    if last > u32::from(BRANCH_CODE_MAX) {
        return Err(ConfigError::BranchCodesOutOfRange {
            first: config.first_branch,
            count: config.branches,
        });
    }
    if config.customers_per_branch == 0 {
        return Err(ConfigError::NoCustomers);
    }
    let max_customers = (SERIAL_MAX - FIRST_CUSTOMER_SERIAL) / 2;
    let total = u64::from(config.customers_per_branch) * u64::from(config.branches);
    if u64::from(config.customers_per_branch) > max_customers || total > u64::from(u32::MAX / 2) {
        return Err(ConfigError::TooManyCustomers {
            max: max_customers.min(u64::from(u32::MAX / 2)),
        });
    }
    if config.currencies.is_empty() {
        return Err(ConfigError::NoCurrencies);
    }
    if config.currencies.len() > InternalAccount::CURRENCIES_MAX {
        return Err(ConfigError::TooManyCurrencies);
    }
    for (i, currency) in config.currencies.iter().enumerate() {
        if currency.numeric == 0
            || config.currencies[..i]
                .iter()
                .any(|c| c.numeric == currency.numeric)
        {
            return Err(ConfigError::BadCurrency(currency.numeric));
        }
        if currency.exponent > 18 {
            return Err(ConfigError::ExponentTooLarge(currency.alpha));
        }
    }
    if config.mix.weights().iter().all(|w| *w == 0) {
        return Err(ConfigError::NoWeight("mix"));
    }
    let fates = &config.hold_fates;
    if [
        fates.capture_full,
        fates.capture_partial,
        fates.release,
        fates.expire,
    ]
    .iter()
    .all(|w| *w == 0)
    {
        return Err(ConfigError::NoWeight("hold_fates"));
    }
    for (name, range) in [
        ("hold_timeout_secs", &config.hold_timeout_secs),
        (
            "hold_resolve_after_batches",
            &config.hold_resolve_after_batches,
        ),
    ] {
        if range.is_empty() || *range.start() == 0 {
            return Err(ConfigError::BadRange(name));
        }
    }
    for (name, value) in [
        ("savings_per_mille", config.savings_per_mille),
        ("history_per_mille", config.history_per_mille),
        ("overdraw_per_mille", config.overdraw_per_mille),
        ("resubmit_per_mille", config.resubmit_per_mille),
    ] {
        if value > 1_000 {
            return Err(ConfigError::PerMilleTooLarge(name));
        }
    }
    if config.first_transfer_id == 0 {
        return Err(ConfigError::FirstTransferIdZero);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn small(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            branches: 2,
            customers_per_branch: 40,
            ..WorkloadConfig::default()
        }
    }

    fn batches(
        config: WorkloadConfig,
        count: usize,
        size: usize,
    ) -> (Workload, Vec<Vec<Transfer>>) {
        let mut workload = Workload::new(config).unwrap();
        let batches = (0..count).map(|_| workload.next_batch(size)).collect();
        (workload, batches)
    }

    #[test]
    fn same_seed_same_bank_and_batches() {
        let (a, xs) = batches(small(11), 50, 200);
        let (b, ys) = batches(small(11), 50, 200);
        assert_eq!(a.accounts(), b.accounts());
        assert_eq!(xs, ys);
        let (c, zs) = batches(small(12), 50, 200);
        assert_ne!(xs, zs);
        assert_ne!(a.accounts(), c.accounts());
    }

    #[test]
    fn batches_are_full_and_capped() {
        let mut workload = Workload::new(small(1)).unwrap();
        for size in [1, 2, 3, 7, 100, 1_000] {
            assert_eq!(workload.next_batch(size).len(), size);
        }
        assert_eq!(workload.next_batch(100_000).len(), BATCH_EVENTS_MAX);
        assert!(workload.next_batch(0).is_empty());
    }

    #[test]
    fn ids_are_unique_except_resubmissions() {
        let (workload, batches) = batches(small(3), 200, 300);
        let mut seen: HashMap<u128, (usize, Transfer)> = HashMap::new();
        let mut resent = 0;
        for (b, batch) in batches.iter().enumerate() {
            for event in batch {
                assert_ne!(event.id, 0);
                match seen.get(&event.id) {
                    None => {
                        seen.insert(event.id, (b, *event));
                    }
                    Some((first_batch, first)) => {
                        // A resubmission: identical, from an earlier batch.
                        assert_eq!(first, event);
                        assert!(*first_batch < b);
                        assert!(!event.flags.contains(TransferFlags::LINKED));
                        resent += 1;
                    }
                }
            }
        }
        assert!(resent > 0);
        assert_eq!(resent, workload.stats_of(EventKind::Resubmission).sent);
        let new_ids = seen.len() as u128;
        assert_eq!(workload.next_transfer_id(), 1 + new_ids);
    }

    #[test]
    fn amounts_and_fields_are_well_formed() {
        let (workload, batches) = batches(small(5), 200, 250);
        let ledgers: Vec<u32> = workload
            .config()
            .currencies
            .iter()
            .map(|c| c.numeric)
            .collect();
        for event in batches.iter().flatten() {
            let resolves = event.flags.intersects(
                TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER,
            );
            if resolves {
                assert_ne!(event.pending_id, 0);
                assert_eq!(event.timeout, 0);
                // A void may say 0 ("the full amount"); a capture names its amount.
                if event.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
                    assert_ne!(event.amount, 0);
                }
            } else {
                assert_ne!(event.amount, 0, "{event:?}");
                assert_eq!(event.pending_id, 0);
                assert!(ledgers.contains(&event.ledger));
                assert_ne!(event.code, 0);
                assert_ne!(event.debit_account_id, event.credit_account_id);
                assert_eq!(
                    event.timeout != 0,
                    event.flags.contains(TransferFlags::PENDING)
                );
            }
            assert_eq!(event.timestamp, 0);
            assert!(!event.flags.has_reserved_bits());
        }
    }

    #[test]
    fn linked_chains_close_within_their_batch() {
        let config = WorkloadConfig {
            mix: Mix {
                payment_with_fee: 1_000,
                ..Mix::default()
            },
            ..small(9)
        };
        let mut workload = Workload::new(config).unwrap();
        let mut chains = 0;
        for size in (1..=40).chain([2, 3, 5, 101, 1_000]) {
            let batch = workload.next_batch(size);
            assert!(
                batch
                    .last()
                    .is_some_and(|e| !e.flags.contains(TransferFlags::LINKED)),
                "open chain"
            );
            let mut open = false;
            for event in &batch {
                let linked = event.flags.contains(TransferFlags::LINKED);
                if linked {
                    // Chains are payment + fee: a linked event is always a payment,
                    // followed by its fee on the same debit account.
                    assert!(!open);
                    assert_eq!(event.code, transfer_code::PAYMENT);
                    chains += 1;
                } else if open {
                    assert_eq!(event.code, transfer_code::FEE);
                }
                open = linked;
            }
            assert!(!open);
        }
        assert!(chains > 100);
    }

    #[test]
    fn accounts_follow_the_numbering_plan() {
        let workload = Workload::new(WorkloadConfig {
            first_branch: 17,
            ..small(2)
        })
        .unwrap();
        let accounts = workload.accounts();
        assert_eq!(accounts.len(), workload.account_count());
        let mut ids = std::collections::HashSet::new();
        for account in &accounts {
            assert!(ids.insert(account.id));
            let (branch, serial) = split_account_id(account.id).unwrap();
            assert!((17..19).contains(&branch));
            let customer = matches!(account.code, account_code::CURRENT | account_code::SAVINGS);
            assert_eq!(customer, serial >= FIRST_CUSTOMER_SERIAL);
            assert_eq!(
                customer,
                account
                    .flags
                    .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            );
            // Customers carry their branch; internal accounts are a branch server's own.
            let branch_tag = if customer { u32::from(branch) } else { 0 };
            assert_eq!(account.user_data_32, branch_tag);
            if customer {
                assert!(workload.expected_available(account.id).is_some());
            } else {
                assert!(workload.expected_available(account.id).is_none());
            }
        }
        let batches = workload.setup_batches();
        assert_eq!(batches.concat(), accounts);
        assert!(
            accounts
                .iter()
                .any(|a| a.flags.contains(AccountFlags::HISTORY))
        );
        assert!(accounts.iter().any(|a| a.code == account_code::SAVINGS));
        let big = Workload::new(WorkloadConfig {
            customers_per_branch: 5_000,
            ..small(2)
        })
        .unwrap();
        assert!(
            big.setup_batches()
                .iter()
                .all(|b| b.len() <= BATCH_EVENTS_MAX)
        );
        assert!(big.setup_batches().len() > 1);
    }

    #[test]
    fn bad_configs_are_refused() {
        let refuse = |config: WorkloadConfig| Workload::new(config).unwrap_err();
        assert_eq!(
            refuse(WorkloadConfig {
                branches: 0,
                ..small(1)
            }),
            ConfigError::NoBranches
        );
        assert!(matches!(
            refuse(WorkloadConfig {
                first_branch: 9_999,
                branches: 2,
                ..small(1)
            }),
            ConfigError::BranchCodesOutOfRange { .. }
        ));
        assert_eq!(
            refuse(WorkloadConfig {
                customers_per_branch: 0,
                ..small(1)
            }),
            ConfigError::NoCustomers
        );
        assert_eq!(
            refuse(WorkloadConfig {
                currencies: vec![],
                ..small(1)
            }),
            ConfigError::NoCurrencies
        );
        assert_eq!(
            refuse(WorkloadConfig {
                currencies: vec![Currency::EUR, Currency::EUR],
                ..small(1)
            }),
            ConfigError::BadCurrency(978)
        );
        assert_eq!(
            refuse(WorkloadConfig {
                mix: Mix {
                    deposit: 0,
                    salary: 0,
                    withdrawal: 0,
                    payment: 0,
                    payment_with_fee: 0,
                    bill_payment: 0,
                    card_hold: 0,
                    own_accounts: 0
                },
                ..small(1)
            }),
            ConfigError::NoWeight("mix")
        );
        #[allow(clippy::reversed_empty_ranges)]
        let empty = 5..=1;
        assert_eq!(
            refuse(WorkloadConfig {
                hold_timeout_secs: empty,
                ..small(1)
            }),
            ConfigError::BadRange("hold_timeout_secs")
        );
        assert_eq!(
            refuse(WorkloadConfig {
                overdraw_per_mille: 1_001,
                ..small(1)
            }),
            ConfigError::PerMilleTooLarge("overdraw_per_mille")
        );
        assert_eq!(
            refuse(WorkloadConfig {
                first_transfer_id: 0,
                ..small(1)
            }),
            ConfigError::FirstTransferIdZero
        );
        assert!(
            Workload::new(WorkloadConfig {
                first_branch: 0,
                ..small(1)
            })
            .is_ok()
        );
    }

    #[test]
    fn single_currency_single_customer_still_works() {
        let config = WorkloadConfig {
            branches: 1,
            customers_per_branch: 1,
            currencies: vec![Currency::JPY],
            ..WorkloadConfig::default()
        };
        let mut workload = Workload::new(config).unwrap();
        for _ in 0..20 {
            let batch = workload.next_batch(50);
            assert_eq!(batch.len(), 50);
            assert!(batch.iter().all(|e| e.code != transfer_code::PAYMENT));
        }
    }
}
