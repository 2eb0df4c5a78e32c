// The sign-in page: password, then the second factor when the user has one,
// then the home page of the user's role.

import { ApiError, $, busy, homeFor, saveTokens, session, showError, showMessage } from './console.js';

const notices = {
  signed_out: 'You are signed out.',
  expired: 'Your session has ended. Sign in again.',
};

let mfaToken = null;
let useRecovery = false;

async function post(path, body) {
  const response = await fetch(`/api/v1/auth/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, answer);
    const retry = response.headers.get('Retry-After');
    if (retry && (error.code === 'login_locked' || error.code === 'rate_limited')) {
      error.message = `${error.message} Try again in ${retry} s.`;
    }
    throw error;
  }
  return answer;
}

function finish(answer) {
  const saved = saveTokens(answer);
  const role = saved.user ? saved.user.role : null;
  location.assign(homeFor(role));
}

function showMfa(show) {
  $('#password-form').hidden = show;
  $('#mfa-form').hidden = !show;
  if (show) {
    setRecovery(false);
    $('#mfa-code').value = '';
    $('#mfa-code').focus();
  } else {
    mfaToken = null;
    $('#password').value = '';
    $('#username').focus();
  }
}

function setRecovery(on) {
  useRecovery = on;
  $('#code-field').hidden = on;
  $('#recovery-field').hidden = !on;
  $('#toggle-recovery').textContent = on ? 'Use an authentication code' : 'Use a recovery code';
  $('#mfa-help').textContent = on
    ? 'Enter one of the recovery codes you saved when you set up your second factor. Each works once.'
    : 'Enter the 6-digit code from your authenticator app.';
  (on ? $('#recovery-code') : $('#mfa-code')).focus();
}

function start() {
  const params = new URLSearchParams(location.search);
  const reason = params.get('reason');
  if (reason && notices[reason]) showMessage($('#signin-notice'), notices[reason], 'info');

  // Already signed in (and not just sent here to sign in again): go home.
  const current = session();
  if (current && current.user && current.expires_at > Date.now() && !reason) {
    location.replace(homeFor(current.user.role));
    return;
  }

  const error = $('#signin-error');

  $('#password-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const username = $('#username').value.trim();
    const password = $('#password').value;
    if (!username || !password) {
      showError(error, 'Enter your username and password.');
      (username ? $('#password') : $('#username')).focus();
      return;
    }
    await busy($('[data-testid="signin-submit"]'), async () => {
      const answer = await post('login', { username, password });
      if (answer.status === 'mfa_required') {
        mfaToken = answer.mfa_token;
        showMessage($('#signin-notice'), '', 'info');
        showMfa(true);
      } else {
        finish(answer);
      }
    }, error);
  });

  $('#mfa-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { mfa_token: mfaToken };
    if (useRecovery) {
      const code = $('#recovery-code').value.trim();
      if (!code) {
        showError(error, 'Enter a recovery code.');
        $('#recovery-code').focus();
        return;
      }
      body.recovery_code = code;
    } else {
      const code = $('#mfa-code').value.replace(/\s/g, '');
      if (!/^[0-9]{6}$/.test(code)) {
        showError(error, 'The code is 6 digits.');
        $('#mfa-code').focus();
        return;
      }
      body.code = code;
    }
    await busy($('[data-testid="mfa-submit"]'), async () => {
      try {
        finish(await post('mfa', body));
      } catch (failure) {
        // An expired or spent sign-in step: back to the password.
        if (failure.status === 401 && /mfa|token|expired/.test(failure.code)) showMfa(false);
        throw failure;
      }
    }, error);
  });

  $('#toggle-recovery').addEventListener('click', () => setRecovery(!useRecovery));
  $('#mfa-cancel').addEventListener('click', () => {
    showError(error, null);
    showMfa(false);
  });

  $('#username').focus();
}

start();
