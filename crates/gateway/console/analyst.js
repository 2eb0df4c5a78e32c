// The fraud queue: held transfers with their score and reason codes, released
// or rejected with a comment; the alerts, live; freezing and unfreezing
// accounts and the list of frozen ones.

import {
  $, api, busy, cleanAccount, el, every, followStream, formatAccount, formatAmount, formatTime,
  showError, showMessage, showStreamState, startPage, statusLabel,
} from './console.js';

const MAX_ALERTS = 100;
let heldLoadedAt = 0;
const alertIds = new Set();

// ---------------------------------------------------------------------------
// Held transfers

function reasonList(reasons, testid) {
  const list = el('ul', { class: 'reasons', dataset: { testid } });
  for (const reason of reasons || []) list.append(el('li', {}, reason));
  if (!list.children.length) list.append(el('li', {}, 'none'));
  return list;
}

// The reasons in words, folded away (the codes are what analysts scan).
function explain(details) {
  if (!details || !details.length) return null;
  return el('details', { class: 'why' }, el('summary', {}, 'Why'),
    el('ul', { dataset: { testid: 'held-reason-details' } }, details.map((d) => el('li', {}, d))));
}

function scoreBadge(score) {
  if (score === null || score === undefined) return '—';
  // Scores run from 0 to 1000; the screen holds from about 600 and declines from about 900.
  const kind = score >= 900 ? 'danger' : score >= 600 ? 'warn' : 'ok';
  return el('span', { class: `badge ${kind}`, dataset: { testid: 'held-score' } }, String(score));
}

function heldRow(item) {
  const id = item.transfer_id;
  const commentId = `comment-${id}`;
  const comment = el('input', {
    id: commentId,
    type: 'text',
    maxlength: 500,
    autocomplete: 'off',
    dataset: { testid: 'review-comment' },
  });
  const release = el('button', { type: 'button', class: 'ok small', dataset: { testid: 'release-button' } }, 'Release');
  const reject = el('button', { type: 'button', class: 'danger small', dataset: { testid: 'reject-button' } }, 'Reject');
  release.setAttribute('aria-label', `Release transfer ${id}`);
  reject.setAttribute('aria-label', `Reject transfer ${id}`);
  release.addEventListener('click', () => review(item, 'release', comment, release));
  reject.addEventListener('click', () => review(item, 'reject', comment, reject));
  comment.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      release.focus();
    }
  });
  return el('tr', { dataset: { testid: 'held-row', transferId: id, branch: item.branch } },
    el('th', { scope: 'row' }, el('code', { class: 'transfer-id', dataset: { testid: 'held-id' } }, id)),
    el('td', { class: 'nowrap' }, formatTime(item.held_at)),
    el('td', { class: 'mono' }, formatAccount(item.debit_account), el('br'), '→ ', formatAccount(item.credit_account)),
    el('td', { class: 'amount' }, formatAmount(item.amount, item.currency)),
    el('td', {}, scoreBadge(item.score)),
    el('td', {}, reasonList(item.reasons, 'held-reasons'), explain(item.reason_details)),
    el('td', {}, el('div', { class: 'review-cell' },
      el('label', { for: commentId, class: 'visually-hidden' }, `Comment on transfer ${id}`),
      comment,
      el('div', { class: 'actions' }, release, reject))));
}

async function loadHeld() {
  const body = $('#held-body');
  const answer = await api('risk/held');
  const items = (answer && answer.items) || [];
  const wanted = new Set(items.map((item) => item.transfer_id));
  // Reconcile rather than redraw: typed comments and the focus stay put.
  for (const row of [...body.querySelectorAll('[data-testid="held-row"]')]) {
    if (!wanted.has(row.dataset.transferId)) row.remove();
  }
  const empty = body.querySelector('td.empty');
  if (empty) empty.parentElement.remove();
  const present = new Set([...body.querySelectorAll('[data-testid="held-row"]')].map((row) => row.dataset.transferId));
  let previous = null;
  for (const item of items) {
    let row = body.querySelector(`[data-testid="held-row"][data-transfer-id="${CSS.escape(item.transfer_id)}"]`);
    if (!present.has(item.transfer_id)) {
      row = heldRow(item);
      if (previous) previous.after(row);
      else body.prepend(row);
    }
    previous = row;
  }
  if (!items.length) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'Nothing is held. The queue is empty.')));
  }
  $('#held-count').textContent = items.length === 1 ? '1 transfer held.' : `${items.length} transfers held.`;
}

async function review(item, decision, comment, button) {
  const text = comment.value.trim();
  showMessage($('#review-result'), '');
  if (!text) {
    comment.setAttribute('aria-invalid', 'true');
    showError($('#review-error'), `Say why you ${decision} this transfer in the comment.`);
    comment.focus();
    return;
  }
  comment.removeAttribute('aria-invalid');
  await busy(button, async () => {
    const answer = await api(`risk/held/${encodeURIComponent(item.transfer_id)}/review`, {
      method: 'POST',
      body: { branch: item.branch, decision, comment: text },
    });
    const row = button.closest('tr');
    const next = row && (row.nextElementSibling || row.previousElementSibling);
    if (row) row.remove();
    const done = decision === 'release' ? 'Released' : 'Rejected';
    const result = $('#review-result');
    result.dataset.transferId = item.transfer_id;
    result.dataset.decision = decision;
    showMessage(result, `${done} transfer ${item.transfer_id} (${formatAmount(item.amount, item.currency)}): ${statusLabel(answer && (answer.status || answer.outcome))}.`,
      decision === 'release' ? 'ok' : 'warn');
    const focusTarget = next && next.querySelector('[data-testid="review-comment"]');
    if (focusTarget) {
      focusTarget.focus();
    } else {
      $('#held-heading').setAttribute('tabindex', '-1');
      $('#held-heading').focus();
    }
    await loadHeld().catch(() => {});
  }, $('#review-error'));
}

// ---------------------------------------------------------------------------
// Alerts

const kindBadges = {
  held: 'warn', declined: 'danger', frozen: 'danger', unfrozen: 'ok', released: 'ok', rejected: 'danger',
  reviewed: 'ok', mule_ring: 'danger',
};

function alertItem(alert) {
  const facts = [
    alert.amount && alert.currency ? formatAmount(alert.amount, alert.currency) : null,
    alert.score !== undefined && alert.score !== null ? `score ${alert.score}` : null,
    alert.branch ? `branch ${alert.branch}` : null,
  ].filter(Boolean).join(' · ');
  return el('li', { dataset: { testid: 'alert', alertId: alert.id, kind: alert.kind, transferId: alert.transfer_id } },
    el('span', { class: `badge ${kindBadges[alert.kind] || 'warn'}` }, alert.kind.replace('_', ' ')),
    el('div', { class: 'route' },
      alert.account ? el('span', { class: 'mono' }, formatAccount(alert.account)) : null,
      alert.account && facts ? ' · ' : null,
      facts,
      alert.detail ? el('span', { class: 'muted' }, ` — ${alert.detail}`) : null,
      (alert.reasons || []).length ? reasonList(alert.reasons, 'alert-reasons') : null),
    el('span', { class: 'time muted nowrap' }, formatTime(alert.at)));
}

function addAlert(alert, atTop) {
  if (!alert || !alert.id || alertIds.has(alert.id)) return;
  alertIds.add(alert.id);
  const list = $('#alerts');
  const item = alertItem(alert);
  if (atTop) list.prepend(item);
  else list.append(item);
  while (list.children.length > MAX_ALERTS) {
    const last = list.lastElementChild;
    alertIds.delete(last.dataset.alertId);
    last.remove();
  }
}

async function loadAlerts() {
  try {
    const answer = await api('risk/alerts?limit=50');
    for (const alert of (answer && answer.items) || []) addAlert(alert, false);
    if (!$('#alerts').children.length) {
      $('#alerts').append(el('li', { class: 'muted', dataset: { testid: 'no-alerts' } }, 'No alerts yet.'));
    }
  } catch (error) {
    showError($('#alerts-error'), error);
  }
}

// ---------------------------------------------------------------------------
// Freezing

async function loadFrozen() {
  const answer = await api('risk/frozen');
  const items = (answer && answer.items) || [];
  $('#frozen-body').replaceChildren(...(items.length
    ? items.map((item) => el('tr', { dataset: { testid: 'frozen-row', account: item.account } },
      el('th', { scope: 'row', class: 'mono' }, formatAccount(item.account)),
      el('td', {}, String(item.branch)),
      el('td', {}, item.reason || ''),
      el('td', { class: 'nowrap' }, formatTime(item.frozen_at))))
    : [el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'No account is frozen.'))]));
}

async function submitFreeze(event) {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === 'unfreeze' ? 'unfreeze' : 'freeze';
  const account = cleanAccount($('#freeze-account').value);
  const reason = $('#freeze-reason').value.trim();
  showMessage($('#freeze-result'), '');
  if (!account) {
    showError($('#freeze-error'), 'Enter the account number.');
    $('#freeze-account').focus();
    return;
  }
  if (!reason) {
    showError($('#freeze-error'), 'Say why.');
    $('#freeze-reason').focus();
    return;
  }
  await busy(event.submitter, async () => {
    const answer = await api(`accounts/${encodeURIComponent(account)}/${action}`, { method: 'POST', body: { reason } });
    const frozen = answer && typeof answer.frozen === 'boolean' ? answer.frozen : action === 'freeze';
    showMessage($('#freeze-result'), `Account ${formatAccount(account)} is ${frozen ? 'frozen' : 'no longer frozen'}.`, frozen ? 'warn' : 'ok');
    $('#freeze-reason').value = '';
    await loadFrozen().catch(() => {});
  }, $('#freeze-error'));
}

// ---------------------------------------------------------------------------

async function start() {
  const user = await startPage(['analyst', 'admin']);
  if (!user) return;

  $('#freeze-form').addEventListener('submit', submitFreeze);
  $('#held-refresh').addEventListener('click', (event) => busy(event.currentTarget, loadHeld, $('#page-error')));

  await Promise.all([
    loadAlerts(),
    loadFrozen().catch((error) => showError($('#freeze-error'), error)),
  ]);

  // The queue changes with alerts; polled as well in case the stream is down.
  every(15000, async () => {
    try {
      await loadHeld();
      showError($('#page-error'), null);
    } catch (error) {
      showError($('#page-error'), error);
    }
  });

  // Alerts can come in bursts: drawn (and the lists reloaded) a few times a second at most.
  let pending = [];
  let timer = null;
  const flush = () => {
    timer = null;
    const batch = pending.slice(-MAX_ALERTS);
    pending = [];
    const none = $('[data-testid="no-alerts"]');
    if (none && batch.length) none.remove();
    for (const alert of batch) addAlert(alert, true);
    if (batch.some((a) => ['held', 'released', 'rejected', 'reviewed'].includes(a.kind)) && Date.now() - heldLoadedAt > 2000) {
      heldLoadedAt = Date.now();
      loadHeld().catch(() => {});
    }
    if (batch.some((a) => ['frozen', 'unfrozen'].includes(a.kind))) loadFrozen().catch(() => {});
  };
  followStream('streams/alerts', {
    onState: (s) => showStreamState($('#live'), s),
    onEvent: ({ event, data }) => {
      if (event !== 'alert' || !data || typeof data !== 'object') return;
      pending.push(data);
      if (!timer) timer = setTimeout(flush, 500);
    },
  });
}

start();
