// The console's shared module: the session (tokens in sessionStorage, refreshed
// before they expire), a fetch wrapper that speaks problem+json, a Server-Sent
// Events reader that can send the Authorization header, the navigation bar and
// formatting. No dependencies; every page imports what it needs from here.

const STORE = 'corebank.session';
const API = '/api/v1';

// Seconds before the access token expires when it is refreshed.
const REFRESH_MARGIN_S = 45;

// ---------------------------------------------------------------------------
// The session

export function session() {
  try {
    const text = sessionStorage.getItem(STORE);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function store(value) {
  if (value) {
    sessionStorage.setItem(STORE, JSON.stringify(value));
  } else {
    sessionStorage.removeItem(STORE);
  }
}

// Keeps the tokens of a sign-in, second-factor or refresh answer.
export function saveTokens(answer, user) {
  const previous = session() || {};
  const value = {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    expires_at: Date.now() + Number(answer.expires_in || 300) * 1000,
    lifetime_ms: Number(answer.expires_in || 300) * 1000,
    user: answer.user || user || previous.user || null,
  };
  store(value);
  scheduleRefresh();
  return value;
}

export function clearSession() {
  store(null);
  if (refreshTimer) {
    clearTimeout(refreshTimer);
    refreshTimer = null;
  }
}

// The page each role starts on.
export function homeFor(role) {
  switch (role) {
    case 'customer':
    case 'teller':
      return 'wallet.html';
    case 'analyst':
      return 'analyst.html';
    case 'auditor':
      return 'audit.html';
    case 'admin':
      return 'dashboard.html';
    default:
      return 'index.html';
  }
}

// Goes to the sign-in page (with a reason shown there).
export function toSignIn(reason) {
  clearSession();
  const query = reason ? `?reason=${encodeURIComponent(reason)}` : '';
  location.assign(`index.html${query}`);
}

let refreshTimer = null;
let refreshing = null;

// How long before the access token expires it is refreshed: 45 s, or a fifth
// of its life when it lives less than about 4 minutes.
function refreshLead(current) {
  return Math.min(REFRESH_MARGIN_S * 1000, (current.lifetime_ms || 300000) / 5);
}

function scheduleRefresh() {
  if (refreshTimer) clearTimeout(refreshTimer);
  const current = session();
  if (!current || !current.refresh_token) return;
  const wait = Math.max(1000, current.expires_at - Date.now() - refreshLead(current));
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refreshTokens().catch(() => toSignIn('expired'));
  }, wait);
}

// A tab opened from this one (a link opened in a new tab) starts with a copy of
// this tab's sessionStorage: the same refresh token. A refresh token works once,
// and a spent one presented again revokes the whole session, so the tabs of one
// session refresh one at a time (a Web Lock) and pass the new tokens on (a
// BroadcastChannel, to the tabs that hold the same, now spent, refresh token).
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('corebank.session') : null;
if (channel) {
  channel.addEventListener('message', ({ data }) => {
    const current = session();
    if (!data || !current || current.refresh_token !== data.old) return;
    if (data.type === 'rotated') {
      store({
        ...current, access_token: data.access_token, refresh_token: data.refresh_token,
        expires_at: data.expires_at, lifetime_ms: data.lifetime_ms,
      });
      scheduleRefresh();
    } else if (data.type === 'signed_out') {
      toSignIn('signed_out');
    }
  });
}

function withRefreshLock(task) {
  if (typeof navigator !== 'undefined' && navigator.locks && navigator.locks.request) {
    return navigator.locks.request('corebank.refresh', task);
  }
  return task();
}

// Trades the refresh token for new tokens. One refresh at a time: a refresh
// token works once, and presenting a spent one revokes the whole session.
export function refreshTokens() {
  if (refreshing) return refreshing;
  const wanted = session();
  refreshing = withRefreshLock(async () => {
    // Another tab of this session may have refreshed while this one waited.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const current = session();
    if (!current || !current.refresh_token) throw new ApiError(401, { code: 'signed_out', detail: 'You are signed out.' });
    if (wanted && wanted.refresh_token !== current.refresh_token && current.expires_at - Date.now() > refreshLead(current)) {
      return current;
    }
    const response = await fetch(`${API}/auth/refresh`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ refresh_token: current.refresh_token }),
      credentials: 'same-origin',
    });
    const body = await readBody(response);
    if (!response.ok) throw new ApiError(response.status, body);
    const saved = saveTokens(body, current.user);
    if (channel) {
      channel.postMessage({
        type: 'rotated', old: current.refresh_token,
        access_token: saved.access_token, refresh_token: saved.refresh_token,
        expires_at: saved.expires_at, lifetime_ms: saved.lifetime_ms,
      });
      // Let the other tabs take the new tokens before one of them gets the lock.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return saved;
  });
  refreshing.finally(() => {
    refreshing = null;
  }).catch(() => {});
  return refreshing;
}

// The signed-in user, or off to the sign-in page. With `roles`, a user of
// another role is sent to their own home page.
export function requireSession(roles) {
  const current = session();
  if (!current || !current.access_token) {
    toSignIn('signed_out');
    return null;
  }
  if (roles && current.user && !roles.includes(current.user.role)) {
    location.replace(homeFor(current.user.role));
    return null;
  }
  if (current.expires_at - Date.now() < refreshLead(current)) {
    refreshTokens().catch(() => toSignIn('expired'));
  } else {
    scheduleRefresh();
  }
  return current;
}

export async function signOut() {
  const current = session();
  if (channel && current && current.refresh_token) {
    channel.postMessage({ type: 'signed_out', old: current.refresh_token });
  }
  if (current && current.access_token) {
    try {
      await fetch(`${API}/auth/logout`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${current.access_token}`, Accept: 'application/json' },
      });
    } catch {
      // Signed out here anyway.
    }
  }
  toSignIn('signed_out');
}

// ---------------------------------------------------------------------------
// The API

// An answer that was not a success: `status`, the problem's `code` and `detail`.
export class ApiError extends Error {
  constructor(status, problem) {
    const body = problem && typeof problem === 'object' ? problem : {};
    super(body.detail || body.title || `The request failed (HTTP ${status}).`);
    this.status = status;
    this.code = body.code || `http_${status}`;
    this.problem = body;
  }
}

async function readBody(response) {
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  return response.text();
}

// Calls the API with the access token. `options`: method, body (sent as JSON),
// headers, text (answer the body as text). On 401 it refreshes the tokens once
// and tries again; a second 401 ends at the sign-in page.
export async function api(path, options = {}) {
  const url = path.startsWith('/') ? path : `${API}/${path}`;
  const send = async () => {
    const current = session();
    const headers = { Accept: options.text ? '*/*' : 'application/json', ...(options.headers || {}) };
    if (current && current.access_token) headers.Authorization = `Bearer ${current.access_token}`;
    const init = { method: options.method || 'GET', headers, credentials: 'same-origin', signal: options.signal };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    return fetch(url, init);
  };
  let response = await send();
  if (response.status === 401 && !options.noRetry) {
    try {
      await refreshTokens();
    } catch {
      toSignIn('expired');
      throw new ApiError(401, { code: 'signed_out', detail: 'Your session has ended; sign in again.' });
    }
    response = await send();
    if (response.status === 401) {
      toSignIn('expired');
      throw new ApiError(401, await readBody(response));
    }
  }
  if (!response.ok) throw new ApiError(response.status, await readBody(response));
  if (options.text) return response.text();
  return readBody(response);
}

// A new idempotency key.
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------
// Server-Sent Events over fetch (EventSource cannot send Authorization)

// Follows an SSE stream, reconnecting with `Last-Event-ID` after a
// disconnection. `onEvent({event, data, id})` gets each event (data parsed as
// JSON when it is JSON); `onState(state)` gets `connecting`, `live`,
// `reconnecting` or `closed`. Answers `{close()}`.
export function followStream(path, { onEvent, onState = () => {}, lastEventId = null } = {}) {
  let lastId = lastEventId;
  let closed = false;
  let controller = null;
  let retryMs = 1000;

  const dispatch = (frame) => {
    if (frame.id !== null) lastId = frame.id;
    if (frame.data === null && frame.event === null) return;
    let data = frame.data ?? '';
    try {
      data = JSON.parse(data);
    } catch {
      // Not JSON: given as text.
    }
    try {
      onEvent({ event: frame.event || 'message', data, id: frame.id ?? lastId });
    } catch (error) {
      console.error('stream handler', error);
    }
  };

  const run = async () => {
    let refreshed = false;
    while (!closed) {
      onState(lastId ? 'reconnecting' : 'connecting');
      controller = new AbortController();
      try {
        const current = session();
        const headers = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' };
        if (current && current.access_token) headers.Authorization = `Bearer ${current.access_token}`;
        if (lastId) headers['Last-Event-ID'] = lastId;
        const response = await fetch(`${API}/${path}`, { headers, signal: controller.signal, cache: 'no-store' });
        if (response.status === 401 && !refreshed) {
          refreshed = true;
          await refreshTokens();
          continue;
        }
        if (response.status === 401) {
          toSignIn('expired');
          return;
        }
        if (!response.ok || !response.body) throw new ApiError(response.status, await readBody(response));
        refreshed = false;
        retryMs = 1000;
        onState('live');
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        let frame = { id: null, event: null, data: null };
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
            const line = buffer.slice(0, end);
            buffer = buffer.slice(end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1));
            if (line === '') {
              dispatch(frame);
              frame = { id: null, event: null, data: null };
              continue;
            }
            if (line.startsWith(':')) continue; // a comment: keep-alive
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let text = colon < 0 ? '' : line.slice(colon + 1);
            if (text.startsWith(' ')) text = text.slice(1);
            if (field === 'data') frame.data = frame.data === null ? text : `${frame.data}\n${text}`;
            else if (field === 'event') frame.event = text;
            else if (field === 'id' && !text.includes('\0')) frame.id = text;
            else if (field === 'retry' && /^\d+$/.test(text)) retryMs = Number(text);
          }
        }
      } catch (error) {
        if (closed) return;
        if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
          onState('closed');
          return;
        }
        // An id the stream no longer accepts: start afresh (the page reloads its lists).
        if (error instanceof ApiError && error.status === 400 && lastId) {
          lastId = null;
          dispatch({ id: null, event: 'reset', data: '{}' });
        }
      }
      if (closed) return;
      onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, 15000);
    }
  };
  run();
  return {
    close() {
      closed = true;
      if (controller) controller.abort();
      onState('closed');
    },
  };
}

// Shows a stream's state in a live indicator element.
export function showStreamState(element, state) {
  const labels = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', closed: 'Not live' };
  element.dataset.state = state;
  element.textContent = labels[state] || state;
}

// ---------------------------------------------------------------------------
// Images (server-side SVG charts and the QR code) as data: URLs

export function svgDataUrl(svg) {
  const bytes = new TextEncoder().encode(svg);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return `data:image/svg+xml;base64,${btoa(binary)}`;
}

// Fetches an SVG with the token and shows it in `img`.
export async function loadSvg(img, path) {
  const svg = await api(path, { text: true });
  const url = svgDataUrl(svg);
  if (img.getAttribute('src') !== url) img.src = url;
}

// ---------------------------------------------------------------------------
// DOM helpers

// Builds an element: `el('td', {class: 'x', dataset: {testid: 'y'}}, 'text', child)`.
// Text is always set as text, never parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'dataset') {
      for (const [key, data] of Object.entries(value)) {
        if (data !== null && data !== undefined) node.dataset[key] = String(data);
      }
    }
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, '');
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

// Shows an error (an ApiError's detail) in an alert region; empty hides it.
export function showError(region, error) {
  if (!region) return;
  if (!error) {
    region.textContent = '';
    region.hidden = true;
    return;
  }
  const text = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  region.textContent = text;
  region.hidden = false;
}

// Shows a success or status message in a polite live region.
export function showMessage(region, text, kind = 'ok') {
  if (!region) return;
  region.textContent = text || '';
  region.dataset.kind = kind;
  region.hidden = !text;
}

// Runs `task` while `button` shows busy; errors go to `errorRegion`.
export async function busy(button, task, errorRegion) {
  if (button) {
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
  }
  showError(errorRegion, null);
  try {
    return await task();
  } catch (error) {
    showError(errorRegion, error);
    return undefined;
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }
}

// ---------------------------------------------------------------------------
// Formatting (amounts stay strings: never parsed into floats)

// `"1234567.50", "EUR"` → `"1,234,567.50 EUR"`.
export function formatAmount(amount, currency) {
  if (amount === null || amount === undefined || amount === '') return '—';
  const text = String(amount);
  const negative = text.startsWith('-');
  const unsigned = negative || text.startsWith('+') ? text.slice(1) : text;
  const [whole, fraction] = unsigned.split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const number = `${negative ? '−' : ''}${grouped}${fraction !== undefined ? `.${fraction}` : ''}`;
  return currency ? `${number} ${currency}` : number;
}

// A signed amount for a statement line: debits with a minus sign.
export function formatSigned(amount, currency, direction) {
  const sign = direction === 'debit' ? '−' : '+';
  return `${sign}${formatAmount(String(amount).replace(/^[-+]/, ''), currency)}`;
}

export function formatTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

// Groups a 22-character account number in fours for reading.
export function formatAccount(number) {
  if (!number) return '—';
  return String(number).replace(/(.{4})(?=.)/g, '$1 ');
}

// An account number as typed (spaces and dashes dropped, upper case).
export function cleanAccount(text) {
  return String(text || '').replace(/[\s-]/g, '').toUpperCase();
}

export function shortId(id) {
  const text = String(id || '');
  return text.length > 12 ? `…${text.slice(-10)}` : text;
}

export function statusLabel(status) {
  const labels = {
    posted: 'Posted',
    pending: 'Pending',
    post_pending: 'Posted',
    voided: 'Voided',
    held_for_review: 'Held for review',
    released: 'Released',
    rejected: 'Rejected',
  };
  return labels[status] || status || '—';
}

// ---------------------------------------------------------------------------
// The page frame: navigation and signing out

const PAGES = [
  { href: 'wallet.html', label: 'Wallet', roles: ['customer'] },
  { href: 'wallet.html', label: 'Accounts', roles: ['teller'] },
  { href: 'analyst.html', label: 'Fraud queue', roles: ['analyst', 'admin'] },
  { href: 'dashboard.html', label: 'Dashboard', roles: ['admin', 'analyst', 'auditor'] },
  { href: 'audit.html', label: 'Audit', roles: ['auditor', 'admin'] },
];

// Fills the page's `<nav>` for the user and wires the sign-out button.
export function renderNav(user) {
  const nav = document.querySelector('nav[data-testid="nav"]');
  if (!nav || !user) return;
  const here = location.pathname.split('/').pop() || 'index.html';
  const list = el('ul', { class: 'nav-links' });
  for (const page of PAGES.filter((p) => p.roles.includes(user.role))) {
    const link = el('a', { href: page.href }, page.label);
    if (page.href === here) link.setAttribute('aria-current', 'page');
    list.append(el('li', {}, link));
  }
  const who = el('span', { class: 'who', dataset: { testid: 'signed-in-user' } },
    el('span', { class: 'who-name' }, user.display_name || user.username),
    el('span', { class: 'role-badge' }, user.role));
  const out = el('button', { type: 'button', class: 'secondary', dataset: { testid: 'sign-out' } }, 'Sign out');
  out.addEventListener('click', () => signOut());
  nav.replaceChildren(list, el('div', { class: 'nav-user' }, who, out));
}

// The common start of a staff or customer page: the session (or off to sign
// in), the navigation, and the user refreshed from `/me`.
export async function startPage(roles) {
  const current = requireSession(roles);
  if (!current) return null;
  renderNav(current.user);
  try {
    const user = await api('me');
    const latest = session();
    if (latest) store({ ...latest, user });
    if (roles && !roles.includes(user.role)) {
      location.replace(homeFor(user.role));
      return null;
    }
    renderNav(user);
    return user;
  } catch (error) {
    if (error.status === 401) return null;
    return current.user;
  }
}

// Repeats `task` every `ms` (skipped while the page is hidden); answers a stop function.
export function every(ms, task) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await task();
      } catch (error) {
        console.error(error);
      }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
