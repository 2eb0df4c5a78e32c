// The operations dashboard: live numbers from /ops/overview every 2 s, the
// three server-rendered charts (SVG, fetched with the token, shown as data:
// URLs), volumes, branch and replica health, and the bank-wide transfer feed.

import {
  $, api, el, every, followStream, formatAccount, formatAmount, formatTime, loadSvg,
  showError, showStreamState, startPage, statusLabel,
} from './console.js';

const POLL_MS = 2000;
const FEED_SIZE = 20;
const CHARTS = ['throughput', 'latency', 'volumes'];

let lastHealth = null;
let updates = 0;

function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '—';
  return Number(value).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function renderStats(overview) {
  const tps = $('#stat-tps');
  tps.textContent = number(overview.transfers_per_second);
  updates += 1;
  tps.dataset.at = overview.at || String(Date.now());
  tps.dataset.updates = String(updates);
  // Latency of the payments made through this gateway in the last minute: none, no figure.
  const latency = overview.latency_ms || {};
  const measured = latency.count === undefined || Number(latency.count) > 0;
  $('#stat-p50').textContent = measured ? number(latency.p50, 1) : '—';
  $('#stat-p99').textContent = measured ? number(latency.p99, 1) : '—';
  $('#stat-queue').textContent = number(overview.queue_depth);
  const at = $('#overview-at');
  at.textContent = `Updated ${formatTime(overview.at)}`;
  at.dataset.at = overview.at || '';
}

function renderVolumes(volumes) {
  const rows = (volumes || []).map((v) => el('tr', { dataset: { testid: 'volume-row' } },
    el('th', { scope: 'row' }, String(v.branch)),
    el('td', {}, v.currency),
    el('td', { class: 'amount' }, number(v.transfers)),
    el('td', { class: 'amount' }, formatAmount(v.amount, v.currency))));
  $('#volumes-body').replaceChildren(...(rows.length
    ? rows
    : [el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'No transfers yet.'))]));
}

function renderBranches(branches) {
  const rows = [];
  const unhealthy = [];
  for (const branch of branches || []) {
    const replicas = branch.replicas || [];
    const label = () => el('th', { scope: 'row', rowspan: replicas.length > 1 ? replicas.length : null },
      `${branch.code}${branch.name ? ` · ${branch.name}` : ''}`,
      branch.region ? el('span', { class: 'sub muted' }, branch.region) : null,
      branch.streaming === false ? el('span', { class: 'sub unhealthy' }, 'events not followed') : null,
      branch.held_for_review ? el('span', { class: 'sub muted' }, `${number(branch.held_for_review)} held for review`) : null);
    if (branch.streaming === false) unhealthy.push(`the event stream of branch ${branch.code}`);
    if (!replicas.length) {
      rows.push(el('tr', {}, label(), el('td', { colspan: 6, class: 'muted' }, 'No replica reported.')));
      continue;
    }
    replicas.forEach((replica, index) => {
      if (!replica.healthy) unhealthy.push(`node ${replica.node_id} of branch ${branch.code}`);
      const heartbeat = replica.last_heartbeat_ms_ago === null || replica.last_heartbeat_ms_ago === undefined
        ? '—' : `${number(replica.last_heartbeat_ms_ago)} ms ago`;
      rows.push(el('tr', { dataset: { testid: 'replica-row', branch: branch.code, node: replica.node_id } },
        index === 0 ? label() : null,
        el('td', {}, String(replica.node_id)),
        el('td', { class: 'mono' }, replica.address || '—'),
        el('td', {}, replica.leader ? el('strong', {}, 'Leader') : 'Follower'),
        el('td', { class: replica.healthy ? 'healthy' : 'unhealthy' }, replica.healthy ? '✓ Healthy' : '✗ Unhealthy'),
        el('td', { class: 'amount' }, heartbeat),
        el('td', { class: 'amount' }, number(replica.applied_index))));
    });
  }
  $('#branches-body').replaceChildren(...(rows.length
    ? rows
    : [el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'No branches.'))]));
  // Announce health changes only, not every refresh.
  const health = unhealthy.length
    ? `Unhealthy: ${unhealthy.join(', ')}.`
    : rows.length === 1 ? 'The replica is healthy.' : `All ${rows.length} replicas are healthy.`;
  if (health !== lastHealth) {
    lastHealth = health;
    $('#health-status').textContent = health;
  }
}

async function refreshOverview() {
  try {
    const overview = await api('ops/overview');
    renderStats(overview);
    renderVolumes(overview.volumes);
    renderBranches(overview.branches);
    showError($('#page-error'), null);
  } catch (error) {
    showError($('#page-error'), error);
  }
}

async function refreshCharts() {
  await Promise.all(CHARTS.map(async (name) => {
    const img = $(`#chart-${name}`);
    try {
      await loadSvg(img, `/api/v1/ops/charts/${name}.svg`);
      img.dataset.loaded = String(Date.now());
    } catch (error) {
      img.dataset.error = error.message;
    }
  }));
}

// A busy bank sends thousands of events a second: they are gathered and the
// newest few drawn a few times a second.
let pending = [];
let flushTimer = null;
let seen = 0;

function queueFeedItem(event) {
  seen += 1;
  pending.push(event);
  if (pending.length > FEED_SIZE) pending = pending.slice(-FEED_SIZE);
  if (!flushTimer) flushTimer = setTimeout(flushFeed, 400);
}

function flushFeed() {
  flushTimer = null;
  const batch = pending;
  pending = [];
  for (const event of batch) addFeedItem(event);
  $('#feed').dataset.seen = String(seen);
}

function addFeedItem(event) {
  const feed = $('#feed');
  const none = feed.querySelector('[data-testid="feed-empty"]');
  if (none) none.remove();
  const from = event.debit_account ? formatAccount(event.debit_account) : 'bank';
  const to = event.credit_account ? formatAccount(event.credit_account) : 'bank';
  feed.prepend(el('li', { dataset: { testid: 'feed-item', transferId: event.transfer_id } },
    el('span', { class: 'nowrap' }, `Branch ${event.branch}`),
    el('span', { class: 'route mono' }, `${from} → ${to}`),
    el('span', { class: 'amount' }, formatAmount(event.amount, event.currency)),
    el('span', { class: 'time muted' }, `${formatTime(event.at)} · ${statusLabel(event.status)}`)));
  while (feed.children.length > FEED_SIZE) feed.lastElementChild.remove();
}

async function start() {
  const user = await startPage(['admin', 'analyst', 'auditor']);
  if (!user) return;
  $('#feed').append(el('li', { class: 'muted', dataset: { testid: 'feed-empty' } }, 'Waiting for transfers…'));
  every(POLL_MS, refreshOverview);
  every(POLL_MS, refreshCharts);
  followStream('streams/events', {
    onState: (s) => showStreamState($('#live'), s),
    onEvent: ({ event, data }) => {
      if (event === 'transfer') queueFeedItem(data);
    },
  });
}

start();
