// The audit explorer: search the gateway's audit trail (newest first, older
// pages by cursor) and verify its hash chain. Read-only.

import { $, api, busy, el, formatTime, showError, showMessage, startPage } from './console.js';

const PAGE_SIZE = 50;
let filters = new URLSearchParams();
let nextCursor = null;
let shown = 0;

const outcomeBadges = { granted: 'ok', denied: 'danger', failed: 'warn' };

// The form's filters as query parameters; times as milliseconds since the
// epoch (datetime-local is the browser's local time, without a zone).
function readFilters() {
  const params = new URLSearchParams();
  for (const name of ['actor', 'action', 'outcome', 'resource', 'q']) {
    const value = $(`#audit-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  for (const name of ['since', 'until']) {
    const value = $(`#audit-${name}`).value;
    if (!value) continue;
    const ms = new Date(value).getTime();
    if (Number.isNaN(ms)) throw new Error(`The ${name} time is not a valid date and time.`);
    params.set(name, String(ms));
  }
  return params;
}

function recordRow(record) {
  return el('tr', { dataset: { testid: 'audit-row', seq: record.seq, outcome: record.outcome } },
    el('th', { scope: 'row', class: 'nowrap' }, String(record.seq)),
    el('td', { class: 'nowrap' }, formatTime(record.at)),
    el('td', { class: 'mono' }, record.actor),
    el('td', {}, record.role || ''),
    el('td', { class: 'mono' }, record.action),
    el('td', { class: 'mono' }, record.resource || ''),
    el('td', {}, el('span', { class: `badge ${outcomeBadges[record.outcome] || 'warn'}` }, record.outcome)),
    el('td', { class: 'mono' }, record.code || ''),
    el('td', { class: 'detail' }, record.detail || ''),
    el('td', { class: 'mono' }, record.client || ''),
    el('td', { class: 'mono' }, record.request_id || ''));
}

async function search(cursor) {
  const params = new URLSearchParams(filters);
  params.set('limit', String(PAGE_SIZE));
  if (cursor) params.set('cursor', cursor);
  const page = await api(`audit?${params}`);
  const items = (page && page.items) || [];
  const body = $('#audit-body');
  if (!cursor) {
    shown = 0;
    body.replaceChildren();
  }
  shown += items.length;
  body.append(...items.map(recordRow));
  if (!shown) body.append(el('tr', {}, el('td', { colspan: 11, class: 'empty' }, 'No record matches.')));
  nextCursor = page ? page.next_cursor || null : null;
  $('#audit-older').disabled = !nextCursor;
  $('#audit-newest').disabled = !cursor;
  $('#results-count').textContent = `${shown} record${shown === 1 ? '' : 's'} shown${nextCursor ? '; older ones remain' : ''}.`;
}

async function verify() {
  showMessage($('#verify-result'), '');
  await busy($('#verify'), async () => {
    const answer = await api('audit/verify');
    const result = $('#verify-result');
    result.dataset.ok = answer.ok ? 'true' : 'false';
    if (answer.ok) {
      showMessage(result, `The chain is intact: ${answer.records} records, the newest #${answer.head_seq} with hash ${String(answer.head_hash || '').slice(0, 16)}….`, 'ok');
    } else {
      showMessage(result, `The chain is BROKEN at record #${answer.first_broken} (of ${answer.records}). The trail was changed after it was written.`, 'warn');
    }
  }, $('#verify-error'));
}

async function start() {
  const user = await startPage(['auditor', 'admin']);
  if (!user) return;

  $('#search-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    await busy($('[data-testid="audit-submit"]'), async () => {
      filters = readFilters();
      await search(null);
    }, $('#page-error'));
  });
  $('#search-form').addEventListener('reset', () => {
    setTimeout(() => {
      filters = new URLSearchParams();
      busy(null, () => search(null), $('#page-error'));
    }, 0);
  });
  $('#audit-older').addEventListener('click', (event) => busy(event.currentTarget, () => search(nextCursor), $('#page-error')));
  $('#audit-newest').addEventListener('click', (event) => busy(event.currentTarget, () => search(null), $('#page-error')));
  $('#verify').addEventListener('click', verify);

  await busy(null, () => search(null), $('#page-error'));
}

start();
