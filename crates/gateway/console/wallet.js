// The wallet: a customer's accounts and balances, the transfer form, the
// history of the selected account with paging, live updates from the account
// stream, and second-factor enrolment. Tellers get a staff view instead: an
// account lookup and a deposit form.

import {
  $, api, busy, cleanAccount, el, followStream, formatAccount, formatAmount, formatSigned, formatTime,
  newKey, showError, showMessage, showStreamState, startPage, statusLabel, svgDataUrl,
} from './console.js';

const PAGE_SIZE = 10;
const AMOUNT = /^[0-9]+(\.[0-9]+)?$/;

const state = {
  user: null,
  accounts: new Map(), // number → account (with balance)
  selected: null,
  pages: [null], // cursors of the pages seen: pages[i] fetches page i
  page: 0,
  nextCursor: null,
  pendingTransfer: null, // {fingerprint, key}: the key is kept for retries of the same payment
  pendingDeposit: null,
  references: new Map(), // transfer id → reference, for payments made here (the stream has none)
};

const productLabels = { current: 'Current account', savings: 'Savings account' };
const kindOf = (account) => productLabels[account.product] || account.product || 'Account';

// ---------------------------------------------------------------------------
// Accounts

async function loadAccounts() {
  const list = await api('accounts');
  const items = (list && list.items) || [];
  const detailed = await Promise.all(items.map(async (account) => {
    if (account.balance) return account;
    try {
      return await api(`accounts/${encodeURIComponent(account.number)}`);
    } catch {
      return account;
    }
  }));
  state.accounts = new Map(detailed.map((a) => [a.number, a]));
  if (!state.selected || !state.accounts.has(state.selected)) {
    state.selected = detailed.length ? detailed[0].number : null;
  }
  renderAccounts();
  renderFromOptions();
}

function balanceOf(account) {
  return account.balance || {};
}

function renderAccounts() {
  const list = $('#accounts');
  // Keep the keyboard focus on the same button across a redraw.
  const focused = document.activeElement && list.contains(document.activeElement)
    ? document.activeElement.closest('[data-account]')?.dataset.account : null;
  const cards = [];
  for (const account of state.accounts.values()) {
    const balance = balanceOf(account);
    const selected = account.number === state.selected;
    const show = el('button', {
      type: 'button',
      class: 'small',
      'aria-pressed': selected ? 'true' : 'false',
      'aria-label': `Show the history of account ${formatAccount(account.number)}`,
      dataset: { testid: 'show-history' },
    }, selected ? 'Showing history' : 'Show history');
    show.addEventListener('click', () => selectAccount(account.number));
    cards.push(el('li', {
      class: 'account-card',
      'aria-current': selected ? 'true' : null,
      dataset: { testid: 'account-card', account: account.number },
    },
    el('h3', {}, `${kindOf(account)} · ${account.currency}`),
    el('span', { class: 'number mono', dataset: { testid: 'account-number' } }, formatAccount(account.number)),
    el('span', { class: 'visually-hidden' }, 'Available balance:'),
    el('span', { class: 'balance', dataset: { testid: 'balance' } }, formatAmount(balance.available, account.currency)),
    el('span', { class: 'balance-detail', dataset: { testid: 'balance-detail' } },
      `Posted ${formatAmount(balance.posted, account.currency)}`,
      balance.pending_debits && !/^0*(\.0*)?$/.test(balance.pending_debits)
        ? ` · outgoing pending ${formatAmount(balance.pending_debits, account.currency)}` : '',
      balance.pending_credits && !/^0*(\.0*)?$/.test(balance.pending_credits)
        ? ` · incoming pending ${formatAmount(balance.pending_credits, account.currency)}` : ''),
    account.frozen || account.closed ? el('span', { class: 'flags' },
      account.frozen ? el('span', { class: 'badge danger', dataset: { testid: 'frozen-badge' } }, 'Frozen') : null,
      account.closed ? el('span', { class: 'badge warn' }, 'Closed') : null) : null,
    el('div', { class: 'actions' }, show)));
  }
  list.replaceChildren(...cards);
  if (focused) {
    const again = list.querySelector(`[data-account="${CSS.escape(focused)}"] button`);
    if (again) again.focus();
  }
  $('#no-accounts').hidden = state.accounts.size > 0;
}

function renderFromOptions() {
  const select = $('#transfer-from');
  const keep = select.value || state.selected;
  select.replaceChildren(...[...state.accounts.values()].map((account) => el('option', {
    value: account.number,
    selected: account.number === keep,
  }, `${formatAccount(account.number)} · ${formatAmount(balanceOf(account).available, account.currency)}`)));
}

function updateBalance(event) {
  const account = state.accounts.get(event.account);
  if (!account) {
    // A new account (opened elsewhere): reload the list.
    loadAccounts().catch((error) => showError($('#page-error'), error));
    return;
  }
  const previous = balanceOf(account).available;
  account.balance = {
    ...balanceOf(account),
    posted: event.posted,
    available: event.available,
    pending_debits: event.pending_debits,
    pending_credits: event.pending_credits,
  };
  renderAccounts();
  renderFromOptions();
  const card = document.querySelector(`[data-testid="account-card"][data-account="${CSS.escape(event.account)}"]`);
  if (card) card.classList.add('flash');
  if (previous !== undefined && previous !== event.available) {
    $('#balance-status').textContent =
      `Account ${formatAccount(event.account)}: ${formatAmount(event.available, account.currency)} available.`;
  }
}

async function selectAccount(number) {
  state.selected = number;
  state.pages = [null];
  state.page = 0;
  renderAccounts();
  const from = $('#transfer-from');
  if (from.value !== number && [...from.options].some((o) => o.value === number)) from.value = number;
  await loadHistory();
}

// ---------------------------------------------------------------------------
// History

function historyRow(entry, live = false) {
  const counterparty = entry.description || (entry.counterparty ? formatAccount(entry.counterparty) : '—');
  return el('tr', {
    class: live ? 'new-row' : null,
    dataset: { testid: 'history-row', transferId: entry.transfer_id, live: live ? 'true' : null },
  },
  el('td', { class: 'nowrap date' }, formatTime(entry.at)),
  el('td', {}, counterparty),
  el('td', { class: `amount ${entry.direction === 'credit' ? 'credit' : 'debit'}`, dataset: { testid: 'history-amount' } },
    formatSigned(entry.amount, entry.currency, entry.direction)),
  el('td', { dataset: { testid: 'history-status' } }, statusLabel(entry.status)),
  el('td', { dataset: { testid: 'history-reference' } }, entry.reference || ''),
  el('td', { class: 'amount' }, entry.balance_after ? formatAmount(entry.balance_after, entry.currency) : '—'));
}

async function loadHistory() {
  const body = $('#history-body');
  const number = state.selected;
  $('#history-account').textContent = number ? formatAccount(number) : '';
  showError($('#history-error'), null);
  if (!number) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No account selected.')));
    updatePager();
    return;
  }
  const cursor = state.pages[state.page];
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (cursor) query.set('cursor', cursor);
  try {
    const page = await api(`accounts/${encodeURIComponent(number)}/transactions?${query}`);
    if (state.selected !== number) return; // another account was chosen meanwhile
    const items = (page && page.items) || [];
    state.nextCursor = page ? page.next_cursor || null : null;
    body.replaceChildren(...(items.length
      ? items.map((entry) => historyRow(entry))
      : [el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No transactions yet.'))]));
  } catch (error) {
    showError($('#history-error'), error);
  }
  updatePager();
}

function updatePager() {
  $('#history-newer').disabled = state.page === 0;
  $('#history-older').disabled = !state.nextCursor;
  $('#history-page').textContent = state.selected ? `Page ${state.page + 1}` : '';
}

// A transfer from the stream: prepended to the history when it touches the
// selected account and the newest page is shown; a known one is updated.
function onTransfer(event) {
  const number = state.selected;
  if (!number || (event.debit_account !== number && event.credit_account !== number)) return;
  const body = $('#history-body');
  const existing = [...body.querySelectorAll('[data-testid="history-row"]')]
    .find((row) => row.dataset.transferId === event.transfer_id);
  if (existing) {
    const status = existing.querySelector('[data-testid="history-status"]');
    if (status) status.textContent = statusLabel(event.status);
    return;
  }
  if (state.page !== 0) return;
  const debit = event.debit_account === number;
  const row = historyRow({
    transfer_id: event.transfer_id,
    at: event.at,
    direction: debit ? 'debit' : 'credit',
    amount: event.amount,
    currency: event.currency,
    counterparty: debit ? event.credit_account : event.debit_account,
    description: '',
    reference: state.references.get(event.transfer_id) || '',
    status: event.status,
    balance_after: null,
  }, true);
  const empty = body.querySelector('td.empty');
  if (empty) empty.parentElement.remove();
  body.prepend(row);
}

// ---------------------------------------------------------------------------
// Sending money

function transferMessage(receipt) {
  const what = `${formatAmount(receipt.amount, receipt.currency)} to ${formatAccount(receipt.credit_account)}`;
  const again = receipt.replayed ? ' (this payment was already made; nothing moved twice)' : '';
  const fee = receipt.fee && !/^0*(\.0*)?$/.test(receipt.fee) ? ` Fee: ${formatAmount(receipt.fee, receipt.currency)}.` : '';
  switch (receipt.status) {
    case 'held_for_review':
      return { kind: 'warn', text: `Held for review: ${what} waits for a check by the bank before it is sent${again}.` };
    case 'pending':
      return { kind: 'info', text: `Accepted: ${what} is pending${again}.${fee}` };
    default:
      return { kind: 'ok', text: `Sent ${what}${again}.${fee}` };
  }
}

async function submitTransfer(event) {
  event.preventDefault();
  const error = $('#transfer-error');
  const result = $('#transfer-result');
  const form = event.currentTarget;
  const from = $('#transfer-from').value;
  const to = cleanAccount($('#transfer-to').value);
  const amount = $('#transfer-amount').value.trim();
  const reference = $('#transfer-reference').value.trim();
  for (const input of form.querySelectorAll('input')) input.removeAttribute('aria-invalid');
  showMessage(result, '');
  const invalid = (input, text) => {
    input.setAttribute('aria-invalid', 'true');
    showError(error, text);
    input.focus();
  };
  if (!from) return invalid($('#transfer-from'), 'Choose the account to send from.');
  if (!to) return invalid($('#transfer-to'), 'Enter the account number to send to.');
  if (!AMOUNT.test(amount) || /^[0.]+$/.test(amount)) {
    return invalid($('#transfer-amount'), 'Enter an amount such as 12.50 (digits and a point).');
  }
  // The same payment tried again (after a network failure) keeps its key, so
  // that it cannot be made twice.
  const fingerprint = JSON.stringify([from, to, amount, reference]);
  if (!state.pendingTransfer || state.pendingTransfer.fingerprint !== fingerprint) {
    state.pendingTransfer = { fingerprint, key: newKey() };
  }
  const key = state.pendingTransfer.key;
  await busy($('[data-testid="transfer-submit"]'), async () => {
    try {
      const body = { from_account: from, to_account: to, amount };
      if (reference) body.reference = reference;
      const receipt = await api('transfers', { method: 'POST', body, headers: { 'Idempotency-Key': key } });
      state.pendingTransfer = null;
      if (receipt.reference) {
        state.references.set(receipt.transfer_id, receipt.reference);
        // The stream may have been quicker than the answer.
        const row = document.querySelector(`[data-testid="history-row"][data-transfer-id="${CSS.escape(receipt.transfer_id)}"]`);
        const cell = row && row.querySelector('[data-testid="history-reference"]');
        if (cell && !cell.textContent) cell.textContent = receipt.reference;
      }
      const message = transferMessage(receipt);
      result.dataset.status = receipt.status;
      result.dataset.transferId = receipt.transfer_id;
      showMessage(result, message.text, message.kind);
      $('#transfer-amount').value = '';
      $('#transfer-reference').value = '';
    } catch (failure) {
      // A definite refusal: a new attempt is a new payment. A network failure
      // or a server error keeps the key for the retry.
      if (failure.status && failure.status < 500 && failure.status !== 429 && failure.status !== 409) {
        state.pendingTransfer = null;
      }
      if (!failure.status) failure.message = 'The bank could not be reached. Try again: the payment will not be made twice.';
      throw failure;
    }
  }, error);
}

async function openAccount(event) {
  event.preventDefault();
  const currency = $('#open-currency').value.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency)) {
    showError($('#open-error'), 'The currency is a 3-letter code such as EUR.');
    $('#open-currency').focus();
    return;
  }
  await busy(event.submitter || null, async () => {
    const account = await api('accounts', { method: 'POST', body: { currency, product: $('#open-product').value } });
    await loadAccounts();
    await selectAccount(account.number);
    event.target.closest('details').open = false;
  }, $('#open-error'));
}

// ---------------------------------------------------------------------------
// Second factor

function renderTotpStatus(enabled) {
  $('#totp-status').textContent = enabled
    ? 'Your sign-in is protected by a second factor (an authenticator app).'
    : 'Your sign-in is protected by your password only. Add an authenticator app for a second factor.';
  $('#totp-status').dataset.enabled = enabled ? 'true' : 'false';
  $('#totp-start').hidden = enabled;
}

async function startTotp() {
  await busy($('#totp-start'), async () => {
    const enrolment = await api('me/totp', { method: 'POST', body: {} });
    $('#totp-qr').src = svgDataUrl(enrolment.qr_svg);
    $('#totp-secret').textContent = enrolment.secret;
    $('#totp-enrol').hidden = false;
    $('#totp-recovery').hidden = true;
    $('#totp-start').hidden = true;
    $('#totp-code').focus();
  }, $('#totp-error'));
}

async function confirmTotp(event) {
  event.preventDefault();
  const code = $('#totp-code').value.replace(/\s/g, '');
  if (!/^[0-9]{6}$/.test(code)) {
    showError($('#totp-error'), 'The code is 6 digits.');
    $('#totp-code').focus();
    return;
  }
  await busy($('[data-testid="totp-confirm"]'), async () => {
    const answer = await api('me/totp/confirm', { method: 'POST', body: { code } });
    $('#recovery-codes').replaceChildren(...(answer.recovery_codes || []).map((c) => el('li', {}, c)));
    $('#totp-enrol').hidden = true;
    $('#totp-qr').removeAttribute('src');
    $('#totp-secret').textContent = '';
    $('#totp-code').value = '';
    $('#totp-recovery').hidden = false;
    renderTotpStatus(true);
  }, $('#totp-error'));
}

// ---------------------------------------------------------------------------
// Tellers

function accountDetails(account) {
  const balance = balanceOf(account);
  const row = (label, value, testid) => [el('dt', {}, label), el('dd', { dataset: { testid } }, value)];
  return el('dl', { class: 'details', dataset: { testid: 'lookup-details', account: account.number } },
    row('Account', formatAccount(account.number), 'lookup-account'),
    row('Kind', `${kindOf(account)} · ${account.currency}`, 'lookup-kind'),
    row('Owner', account.owner_id ? `customer ${account.owner_id}` : '—', 'lookup-owner'),
    row('Branch', String(account.branch), 'lookup-branch'),
    row('Available', formatAmount(balance.available, account.currency), 'lookup-available'),
    row('Posted', formatAmount(balance.posted, account.currency), 'lookup-posted'),
    row('State', account.closed ? 'Closed' : account.frozen ? 'Frozen' : 'Open', 'lookup-state'));
}

async function lookup(number) {
  const account = await api(`accounts/${encodeURIComponent(number)}`);
  $('#lookup-result').replaceChildren(accountDetails(account));
  return account;
}

function startTeller() {
  $('#page-heading').textContent = 'Accounts';
  document.title = 'Accounts · corebank console';
  $('#live').hidden = true;
  $('#teller-view').hidden = false;

  $('#lookup-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const number = cleanAccount($('#lookup-number').value);
    if (!number) {
      showError($('#lookup-error'), 'Enter an account number.');
      $('#lookup-number').focus();
      return;
    }
    await busy($('[data-testid="lookup-submit"]'), async () => {
      $('#lookup-result').replaceChildren();
      await lookup(number);
      $('#deposit-account').value = number;
    }, $('#lookup-error'));
  });

  $('#deposit-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const account = cleanAccount($('#deposit-account').value);
    const amount = $('#deposit-amount').value.trim();
    const reference = $('#deposit-reference').value.trim();
    showMessage($('#deposit-result'), '');
    if (!account) {
      showError($('#deposit-error'), 'Enter the account number.');
      $('#deposit-account').focus();
      return;
    }
    if (!AMOUNT.test(amount) || /^[0.]+$/.test(amount)) {
      showError($('#deposit-error'), 'Enter an amount such as 100.00.');
      $('#deposit-amount').focus();
      return;
    }
    const fingerprint = JSON.stringify([account, amount, reference]);
    if (!state.pendingDeposit || state.pendingDeposit.fingerprint !== fingerprint) {
      state.pendingDeposit = { fingerprint, key: newKey() };
    }
    const key = state.pendingDeposit.key;
    await busy($('[data-testid="deposit-submit"]'), async () => {
      try {
        const body = { account, amount };
        if (reference) body.reference = reference;
        const receipt = await api('deposits', { method: 'POST', body, headers: { 'Idempotency-Key': key } });
        state.pendingDeposit = null;
        const again = receipt.replayed ? ' (already done; nothing moved twice)' : '';
        showMessage($('#deposit-result'),
          `Deposited ${formatAmount(receipt.amount, receipt.currency)} to ${formatAccount(receipt.credit_account || account)}${again}.`, 'ok');
        $('#deposit-amount').value = '';
        $('#deposit-reference').value = '';
        if (cleanAccount($('#lookup-number').value) === account) await lookup(account).catch(() => {});
      } catch (failure) {
        if (failure.status && failure.status < 500 && failure.status !== 429 && failure.status !== 409) state.pendingDeposit = null;
        throw failure;
      }
    }, $('#deposit-error'));
  });
}

// ---------------------------------------------------------------------------

async function startCustomer() {
  $('#customer-view').hidden = false;
  renderTotpStatus(Boolean(state.user.totp_enabled));

  $('#transfer-form').addEventListener('submit', submitTransfer);
  $('#open-form').addEventListener('submit', openAccount);
  $('#transfer-from').addEventListener('change', (event) => {
    if (event.target.value !== state.selected) selectAccount(event.target.value);
  });
  $('#history-older').addEventListener('click', async () => {
    if (!state.nextCursor) return;
    state.pages = state.pages.slice(0, state.page + 1);
    state.pages.push(state.nextCursor);
    state.page += 1;
    await loadHistory();
  });
  $('#history-newer').addEventListener('click', async () => {
    if (state.page === 0) return;
    state.page -= 1;
    await loadHistory();
  });
  $('#totp-start').addEventListener('click', startTotp);
  $('#totp-confirm-form').addEventListener('submit', confirmTotp);

  try {
    await loadAccounts();
    await loadHistory();
  } catch (error) {
    showError($('#page-error'), error);
  }

  followStream('streams/accounts', {
    onState: (s) => showStreamState($('#live'), s),
    onEvent: ({ event, data }) => {
      if (event === 'transfer') onTransfer(data);
      else if (event === 'balance') updateBalance(data);
      else if (event === 'reset') {
        loadAccounts().then(loadHistory).catch((error) => showError($('#page-error'), error));
      }
    },
  });
}

async function start() {
  const user = await startPage(['customer', 'teller']);
  if (!user) return;
  state.user = user;
  if (user.role === 'teller') startTeller();
  else await startCustomer();
}

start();
