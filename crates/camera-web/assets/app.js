// Camera HTTPS certificate UI. Plain ES2020, no dependencies; served under a strict CSP
// (no inline scripts or styles), so every element is built with the DOM API.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { session: null, cert: null, csrf: null, sansTouched: false, dot1x: null, tab: 'certificate', en: {} };
// The two automatic enrollments by the id prefix of their part of the page: the HTTPS certificate's and 802.1X's (SCEP).
const ENROLL = { enroll: '/api/v1/enrollment', 'dot1x-en': '/api/v1/dot1x/enrollment' };

const SOURCE = {
  device: 'Made by this camera',
  uploaded: 'Uploaded by an installer',
  enrolled: 'Issued by the site\'s CA (automatic enrollment)',
};
const TLS = {
  standard: 'Standard (TLS 1.2 and TLS 1.3)',
  'high-security': 'High security (TLS 1.3 only)',
};


function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function show(id, on) { $(id).hidden = !on; }

function setText(id, text) { $(id).textContent = text === undefined || text === null || text === '' ? '—' : text; }

// Fingerprints break only after a colon (<wbr> is not copied with the text).
function fill(node, fp) {
  node.replaceChildren();
  if (!fp) { node.textContent = '—'; return node; }
  String(fp).split(':').forEach((part, i, all) => {
    node.append(part + (i < all.length - 1 ? ':' : ''));
    if (i < all.length - 1) node.append(document.createElement('wbr'));
  });
  return node;
}
function setFingerprint(id, fp) { fill($(id), fp); }

function plural(n, word) { return `${n} ${word}${n === 1 ? '' : 's'}`; }

function when(unix) {
  if (unix === undefined || unix === null) return '—';
  return new Date(unix * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function whenIso(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? (iso || '—') : when(t / 1000);
}

function relative(unix) {
  const ms = unix * 1000 - Date.now();
  if (ms < 0) {
    const days = Math.floor(-ms / 86400000);
    return days === 0 ? 'expired today' : `expired ${plural(days, 'day')} ago`;
  }
  const days = Math.floor(ms / 86400000);
  if (days === 0) {
    const hours = Math.floor(ms / 3600000);
    return hours === 0 ? 'expires within the hour' : `expires in ${plural(hours, 'hour')}`;
  }
  return `expires in ${plural(days, 'day')}`;
}

// Puts one message into a .msg container: role="status" for news, role="alert" for failures.
function say(box, text, kind = 'ok', list) {
  if (typeof box === 'string') box = $(box);
  if (!box) return;
  box.replaceChildren();
  if (!text) return;
  const p = el('div', null, `box ${kind === 'error' ? 'error' : kind === 'warn' ? 'warn' : kind === 'busy' ? 'busy' : 'ok'}`);
  p.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  p.append(el('p', text));
  if (list && list.length) {
    const ul = el('ul');
    for (const item of list) ul.append(el('li', item));
    p.append(ul);
  }
  box.append(p);
}

function msgOf(node) { return node.querySelector('.msg') || node.parentElement.querySelector('.msg'); }

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// fetch wrapper: JSON errors become ApiError with the server's sentence, shown verbatim.
async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: {}, cache: 'no-store' };
  if (body instanceof FormData) {
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const open = path === '/api/v1/setup' || path === '/api/v1/login';
  if (method !== 'GET' && !open && state.csrf) opts.headers['X-CSRF-Token'] = state.csrf;
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'network', 'The camera did not answer. Check the network connection and try again.');
  }
  if (!res.ok) {
    let code = 'http_' + res.status;
    let message = '';
    try {
      const j = await res.json();
      code = j.error || code;
      message = j.message || '';
    } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, code, message || `The camera refused the request (HTTP ${res.status}).`);
  }
  return res;
}

async function withBusy(button, fn) {
  say('status', '');
  button.disabled = true;
  try { return await fn(); } finally { button.disabled = false; }
}

// A 401 on a change means the session ended: show the login form again.
async function handleError(box, e) {
  say(box, e.message, 'error');
  if (e.status === 401 && state.session && state.session.logged_in) {
    await loadSession();
    render();
    say('status', 'Your session has ended. Log in again to continue.', 'error');
  }
}


async function loadSession() {
  try {
    const res = await api('GET', '/api/v1/session');
    state.session = await res.json();
    state.csrf = state.session.csrf_token || null;
  } catch (e) {
    state.session = null;
    say('status', e.message, 'error');
  }
}

async function loadCertificate() {
  try {
    const res = await api('GET', '/api/v1/certificate');
    state.cert = await res.json();
    say('cert-msg', '');
  } catch (e) {
    state.cert = null;
    say('cert-msg', e.message, 'error');
  }
}

async function loadEnrollment(p = 'enroll') {
  try {
    state.en[p] = state.session && state.session.logged_in ? await (await api('GET', ENROLL[p])).json() : null;
  } catch (e) {
    state.en[p] = null;
    if (e.status !== 401) say(msgOf($(p + '-form')), e.message, 'error');
  }
}

async function loadDot1x() {
  if (!(state.session && state.session.logged_in)) { state.dot1x = null; return; }
  try {
    const res = await api('GET', '/api/v1/dot1x');
    state.dot1x = await res.json();
  } catch (e) {
    state.dot1x = null;
    if (e.status !== 401) say(msgOf($('dot1x-form')), e.message, 'error');
  }
}

async function refresh() {
  await Promise.all([loadSession(), loadCertificate()]);
  await Promise.all([loadEnrollment(), loadEnrollment('dot1x-en'), loadDot1x()]);
  render();
}

// One panel at a time, named by the URL fragment (#dot1x), so links and the back button work.
// Logged out, only the certificate panel exists.
const TABS = ['certificate', 'request', 'enrollment', 'dot1x', 'events'];

function renderTab(loggedIn) {
  const want = location.hash.slice(1);
  state.tab = loggedIn && TABS.includes(want) ? want : 'certificate';
  show('nav', loggedIn);
  for (const p of document.querySelectorAll('.panel')) p.hidden = p.dataset.tab !== state.tab;
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.hash === '#' + state.tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function onTab() {
  say('status', '');
  render();
  window.scrollTo(0, 0);
  if (state.tab === 'dot1x') {
    await Promise.all([loadDot1x(), loadEnrollment('dot1x-en')]);
    render();
    if ((state.en['dot1x-en'] || {}).state === 'working') pollEnrollment('dot1x-en');
  }
}


function render() {
  const s = state.session;
  const c = state.cert;
  show('loading', false);
  const needsSetup = !!s && !s.password_set;
  const loggedIn = !!s && s.password_set && s.logged_in;
  show('setup', needsSetup);
  show('login', !!s && s.password_set && !s.logged_in);
  show('account', loggedIn);
  show('cert', true);
  show('ca', !!c);
  show('csr', loggedIn);
  show('upload', loggedIn);
  const installer = !!c && (c.source !== 'device' || (c.expiry || []).some((e) => e.what === 'installer'));
  show('restore', loggedIn && installer);
  if (!(loggedIn && installer)) show('restore-confirm', false);
  show('enroll', loggedIn);
  show('events', loggedIn);
  show('dot1x', loggedIn);
  renderTab(loggedIn);
  if (c) {
    renderCertificate(c);
    renderCa(c);
    renderCsr(c);
    renderExpiry(c);
  }
  if (loggedIn) {
    renderEnrollment();
    renderDot1x(state.dot1x);
    renderEnrollState('dot1x-en');
  }
}

const WHAT = { served: 'The certificate in use', installer: 'The installer\'s certificate', camera_ca: 'The camera\'s CA certificate' };

// A banner for every certificate inside the warning window or expired (the server decides which).
function renderExpiry(c) {
  const items = (c.expiry || []).filter((e) => e.state !== 'ok');
  const banner = $('expiry-banner');
  banner.replaceChildren(...items.map((e) => el('p', e.state === 'expired'
    ? `${WHAT[e.what] || e.what} (${e.subject}) expired on ${whenIso(e.not_after)}.`
    : `${WHAT[e.what] || e.what} (${e.subject}) expires in ${plural(e.days_left, 'day')}, on ${whenIso(e.not_after)}.`)));
  banner.className = `box ${items.some((e) => e.state === 'expired') ? 'error' : 'warn'}`;
  banner.hidden = items.length === 0;
}

// The state box of either enrollment (ids p-state, p-summary, p-last, p-next, p-stop); the settings, or null when off.
function renderEnrollState(p) {
  const en = state.en[p];
  const on = !!en && en.state !== 'off';
  show(p + '-stop', on);
  $(p + '-state').hidden = !on && !(en && (en.last_attempt || en.stopped));
  const last = en && en.last_attempt;
  $(p + '-last').textContent = last ? `${when(last.at_unix)}: ${last.message}` : '';
  $(p + '-last').className = last && !last.ok ? 'bad' : '';
  $(p + '-next').textContent = '';
  if (!on) {
    if (en) setText(p + '-summary', en.stopped || 'Automatic enrollment is off.');
    return null;
  }
  const st = en.settings || {};
  const doing = en.state === 'working' ? (en.progress || 'Enrolling…')
    : en.state === 'stopped' ? `Stopped: ${en.stopped}` : 'Waiting.';
  setText(p + '-summary', `Enrolling with ${String(st.protocol || '').toUpperCase()} at ${st.url}. ${doing}`);
  const cert = en.certificate;
  const next = en.next_attempt_unix ? `Next: ${when(en.next_attempt_unix)}.` : '';
  setText(p + '-next', cert ? `The enrolled certificate is valid until ${when(cert.not_after_unix)}; renewal from ${when(cert.renew_at_unix)}${cert.renewal_source === 'ari' ? ' (suggested by the CA)' : ''}. ${next}` : next);
  if (!state.enTouched && p === 'dot1x-en' && st.url) {
    $('dot1x-en-url').value = st.url;
    $('dot1x-en-ca-sha256').value = st.ca_sha256 || '';
  }
  return st;
}

function renderEnrollment() {
  const st = renderEnrollState('enroll');
  if (st && !state.enrollTouched && st.url) {
    $('enroll-protocol').value = st.protocol;
    $('enroll-url').value = st.url;
    $('enroll-margin').value = st.renew_before_days || '';
    onProtocol();
  }
}

function onProtocol() {
  const scep = $('enroll-protocol').value === 'scep';
  show('enroll-acme', !scep);
  show('enroll-scep', scep);
}

// Both enrollment forms name their fields p-url, p-trust, p-challenge, p-ca-sha256, p-cn.
async function onEnroll(ev) {
  ev.preventDefault();
  const p = ev.currentTarget.id.replace(/-form$/, '');
  const box = msgOf(ev.currentTarget);
  const val = (f) => $(`${p}-${f}`).value.trim();
  const protocol = p === 'enroll' ? $('enroll-protocol').value : 'scep';
  const url = val('url');
  if (!url) { say(box, 'Give the server URL.', 'error'); $(p + '-url').focus(); return; }
  const body = { protocol, url };
  if (val('trust')) body.trust = val('trust') + '\n';
  if (protocol === 'acme') {
    body.challenge_types = ['enroll-http01', 'enroll-alpn'].filter((id) => $(id).checked).map((id) => $(id).value);
    body.key_type = $('enroll-key').value;
    const kid = val('kid');
    if (kid) body.eab = { kid, hmac_key: val('hmac') };
  } else {
    body.challenge = $(p + '-challenge').value;
    if (val('ca-sha256')) body.ca_sha256 = val('ca-sha256');
    if (val('cn')) body.subject = { CN: val('cn') };
  }
  if (p === 'enroll' && val('margin')) body.renew_before_days = Number(val('margin'));
  await withBusy($(p + '-submit'), async () => {
    try {
      state.en[p] = await (await api('PUT', ENROLL[p], body)).json();
      if (p === 'enroll') $('enroll-hmac').value = '';
      $(p + '-challenge').value = '';
      say(box, 'Saved. The camera is enrolling now; this page shows how it goes.');
      render();
      pollEnrollment(p);
    } catch (e) {
      await handleError(box, e);
    }
  });
}

const polling = new Set();
// While an enrollment runs, look every two seconds (at most a minute); then show what it changed.
async function pollEnrollment(p) {
  if (polling.has(p)) return;
  polling.add(p);
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 2000));
    await loadEnrollment(p);
    if (!state.en[p] || state.en[p].state !== 'working') break;
    renderEnrollState(p);
  }
  polling.delete(p);
  await (p === 'enroll' ? loadCertificate() : loadDot1x());
  render();
}

async function onEnrollStop(ev) {
  const p = ev.currentTarget.id.replace(/-stop$/, '');
  const box = msgOf($(p + '-form'));
  await withBusy($(p + '-stop'), async () => {
    try {
      state.en[p] = await (await api('DELETE', ENROLL[p])).json();
      say(box, p === 'enroll' ? 'Automatic enrollment is off. The certificate in use stays until you restore the camera\'s own.'
        : 'Automatic enrollment is off. The 802.1X certificate stays.');
      render();
    } catch (e) {
      await handleError(box, e);
    }
  });
}

// 802.1X: the supplicant's state as a label and a colour; the server's sentence says why.
const DOT1X = {
  off: ['Off', 'off'], no_supplicant: ['Not available', 'off'], connecting: ['Connecting', 'info'],
  authenticated: ['Authenticated', ''], failed: ['Failed', 'error'], trial: ['Trying new settings', 'info'],
  rolled_back: ['Rolled back', 'warn'],
};

function renderDot1x(d) {
  show('dot1x-state', !!d);
  if (!d) return;
  const v = d.supplicant || {};
  const [label, cls] = DOT1X[v.state] || [v.state || '—', 'off'];
  const badge = $('dot1x-badge');
  badge.textContent = label;
  badge.className = `badge ${cls}`;
  badge.dataset.state = v.state;
  setText('dot1x-sentence', v.sentence);
  setText('dot1x-port', v.port_authorized ? 'Authorized' : 'Not authorized');
  setText('dot1x-last', v.last_authenticated_unix ? when(v.last_authenticated_unix) : 'Never');
  setText('dot1x-failure', v.last_failure);
  const t = v.trial;
  show('dot1x-trial', !!t);
  if (t) $('dot1x-trial').textContent = `${plural(t.seconds_left, 'second')} left for the new settings to authenticate, else the last ones that worked come back.`;
  const warnings = (v.warnings || []).map((w) => w.message || w);
  $('dot1x-warnings-list').replaceChildren(...warnings.map((w) => el('li', w)));
  show('dot1x-warnings', warnings.length > 0);

  const c = d.certificate;
  show('dot1x-cert', !!c);
  show('dot1x-nocert', !c);
  show('dot1x-delete', !!c);
  if (c) {
    setText('dot1x-c-subject', c.subject);
    setText('dot1x-c-issuer', c.issuer);
    $('dot1x-c-until').textContent = when(c.not_after_unix);
    $('dot1x-c-rel').textContent = `(${relative(c.not_after_unix)})`;
    $('dot1x-c-rel').className = c.not_after_unix * 1000 - Date.now() < 30 * 86400000 ? 'bad' : '';
    setFingerprint('dot1x-c-sha', c.sha256);
  }
  const p = d.pending_csr;
  show('dot1x-pending', !!p);
  if (p) {
    setText('dot1x-p-subject', p.subject);
    setText('dot1x-p-key', p.key_type);
    setText('dot1x-p-created', when(p.created_at_unix));
  }
  const st = v.settings;
  if (st && !state.dot1xTouched) {
    $('dot1x-enabled').checked = !!st.enabled;
    $('dot1x-if').value = st.interface || 'eth0';
    $('dot1x-identity').value = st.identity || '';
    $('dot1x-eapol').value = String(st.eapol_version || 1);
    $('dot1x-ca').value = st.server_ca_pem || '';
    $('dot1x-domain').value = st.domain_match || '';
    $('dot1x-seconds').value = st.trial_seconds || 180;
  }
  // While the panel is shown and the supplicant is on its way, look again every two seconds.
  clearTimeout(state.dot1xTimer);
  if (state.tab === 'dot1x' && (v.state === 'connecting' || v.state === 'trial')) {
    state.dot1xTimer = setTimeout(async () => {
      if (state.tab !== 'dot1x') return;
      await loadDot1x();
      renderDot1x(state.dot1x);
    }, 2000);
  }
}

// A change answers with the 802.1X state, or (upload, request) it is loaded again.
async function dot1xChange(button, box, fn, done) {
  await withBusy(button, async () => {
    try {
      const res = await fn();
      if (res) state.dot1x = await res.json();
      else await loadDot1x();
      render();
      say(box, ...done());
    } catch (e) {
      await handleError(box, e);
    }
  });
}

async function onDot1x(ev) {
  ev.preventDefault();
  const box = msgOf(ev.currentTarget);
  const val = (id) => $(id).value.trim();
  const ca = val('dot1x-ca');
  const body = {
    enabled: $('dot1x-enabled').checked, interface: val('dot1x-if') || 'eth0', identity: val('dot1x-identity') || null,
    eapol_version: Number($('dot1x-eapol').value), server_ca_pem: ca + '\n', domain_match: val('dot1x-domain') || null,
    trial_seconds: Number(val('dot1x-seconds') || 180),
  };
  if (!ca) { say(box, 'Paste the authentication server\'s CA certificate(s).', 'error'); $('dot1x-ca').focus(); return; }
  await dot1xChange($('dot1x-submit'), box, async () => {
    const res = await api('PUT', '/api/v1/dot1x', body);
    state.dot1xTouched = false;
    return res;
  }, () => [body.enabled ? 'Saved. The camera tries the settings now; this page shows how it goes.' : 'Saved. 802.1X is off.']);
}

async function onDot1xCsr(ev) {
  ev.preventDefault();
  const box = msgOf(ev.currentTarget);
  const cn = $('dot1x-cn').value.trim();
  if (!cn) { say(box, 'Fill in the common name (CN), for example the camera\'s name.', 'error'); $('dot1x-cn').focus(); return; }
  say(box, 'Creating the key and the request on the camera…', 'busy');
  await dot1xChange($('dot1x-csr-submit'), box, async () => {
    await api('POST', '/api/v1/dot1x/csr', { subject: { CN: cn }, subject_alt_names: [], key_type: $('dot1x-key').value });
  }, () => ['The request is ready: download certreq.pem, have your CA sign it, and upload the certificate below. The key stays on this camera.']);
}

async function onDot1xUpload(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const box = msgOf(form);
  const cert = $('dot1x-up-cert').files[0];
  const key = $('dot1x-up-key').files[0];
  if (!cert) { say(box, 'Choose the certificate file.', 'error'); $('dot1x-up-cert').focus(); return; }
  const fd = new FormData();
  fd.append('certificate', cert, cert.name);
  if (key) fd.append('key', key, key.name);
  if ($('dot1x-up-pass').value) fd.append('passphrase', $('dot1x-up-pass').value);
  let warnings = [];
  say(box, 'Checking the certificate…', 'busy');
  await dot1xChange($('dot1x-up-submit'), box, async () => {
    const j = await (await api('PUT', '/api/v1/dot1x/certificate', fd)).json();
    warnings = (j.warnings || []).map((w) => w.message || w.code);
    form.reset();
  }, () => ['The 802.1X certificate is stored; with 802.1X on, the camera tries it now.', warnings.length ? 'warn' : 'ok', warnings]);
}

async function onDot1xDelete() {
  if (!window.confirm('Delete the 802.1X certificate and its key from the camera?')) return;
  await dot1xChange($('dot1x-delete'), msgOf($('dot1x-delete')), () => api('DELETE', '/api/v1/dot1x/certificate'),
    () => ['The 802.1X certificate is deleted.']);
}

const EVENT = {
  login: 'Login', login_failed: 'Wrong password', password_set: 'Password set',
  certificate_uploaded: 'Certificate uploaded', upload_refused: 'Upload refused', certificate_restored: 'Restored',
  request_created: 'Request created', enrollment_configured: 'Enrollment configured', enrollment_stopped: 'Enrollment stopped',
  enrollment_succeeded: 'Enrolled', enrollment_failed: 'Enrollment failed', ca_replaced: 'CA replaced',
  expiry_warning: 'Expiry warning', certificate_expired: 'Certificate expired',
  dot1x_configured: '802.1X settings changed', dot1x_certificate_changed: '802.1X certificate changed',
  dot1x_authenticated: '802.1X authenticated', dot1x_failed: '802.1X failed', dot1x_rolled_back: '802.1X rolled back',
};

async function onEvents() {
  const box = msgOf($('events-load'));
  await withBusy($('events-load'), async () => {
    try {
      const res = await api('GET', '/api/v1/events?limit=100');
      const list = (await res.json()).events || [];
      $('events-list').replaceChildren(...list.map((e) => {
        const li = el('li');
        li.append(el('span', when(e.time_unix), 'muted'), ' ', el('strong', EVENT[e.kind] || e.kind), ' ');
        if (e.client) li.append(el('span', `from ${e.client}`, 'mono'), ' ');
        li.append(el('span', e.message));
        return li;
      }));
      say(box, list.length ? '' : 'No events yet.');
    } catch (e) {
      await handleError(box, e);
    }
  });
}

function renderCertificate(c) {
  const info = c.certificate || {};
  const badge = $('cert-source');
  badge.textContent = SOURCE[c.source] || c.source;
  badge.className = `badge ${c.source === 'uploaded' ? 'uploaded' : 'device'}`;
  setText('cert-reason', c.reason);
  const AUTO = {
    device: 'When the camera\'s address changes, it makes a new certificate for the new address by itself within a second. No reboot is needed.',
    enrolled: 'When the camera\'s address changes, it asks the site\'s CA for a new certificate by itself, and it renews it before it expires.',
    uploaded: 'An uploaded certificate does not follow address changes. If the camera gets a new address, upload a certificate for it, or go back to the camera\'s own certificate.',
  };
  $('cert-auto').textContent = AUTO[c.source] || '';

  const warnings = (c.warnings || []).map((w) => w.message || w.code);
  const sans = info.subject_alt_names || [];
  // The server decides whether the certificate names the host this page was opened with.
  const opened = c.opened_as;
  if (opened && !opened.covered) {
    warnings.push(`You opened the camera as ${opened.host}, but this certificate names only ${sans.join(', ') || 'other names'}: browsers will warn. Use one of those names, or make a certificate that includes ${opened.host}.`);
  }
  if (info.not_before_unix && info.not_before_unix * 1000 > Date.now() + 300000) {
    warnings.push(`This certificate is valid only from ${when(info.not_before_unix)}, but this PC's clock says ${when(Date.now() / 1000)}: check the date and time on this PC.`);
  }
  const list = $('cert-warnings-list');
  list.replaceChildren(...warnings.map((w) => el('li', w)));
  show('cert-warnings', warnings.length > 0);

  setText('cert-subject', info.subject);
  setText('cert-issuer', info.self_signed ? `${info.issuer} (self-signed)` : info.issuer);
  $('cert-from').textContent = when(info.not_before_unix);
  $('cert-until').textContent = when(info.not_after_unix);
  const rel = info.not_after_unix ? relative(info.not_after_unix) : '';
  $('cert-rel').textContent = rel ? `(${rel})` : '';
  $('cert-rel').className = info.not_after_unix && info.not_after_unix * 1000 - Date.now() < 30 * 86400000 ? 'bad' : '';
  $('cert-sans').replaceChildren(...sans.map((n) => el('li', n, 'mono')));
  const cam = c.camera || {};
  const addrs = (cam.addresses || []).join(', ');
  setText('cert-addrs', cam.hostname ? `${addrs || '—'} (host name ${cam.hostname})` : addrs);
  setText('cert-key', info.key_type);
  setFingerprint('cert-sha', info.sha256);
  setFingerprint('cert-pksha', info.public_key_sha256);
  setText('cert-serial', info.serial);
  setText('cert-tls', TLS[c.tls_profile] || c.tls_profile);

  const chain = c.chain || [];
  $('cert-chain').replaceChildren(...chain.map((ci) => {
    const li = el('li');
    li.append(el('strong', ci.subject));
    li.append(el('span', ` issued by ${ci.issuer}${ci.self_signed ? ' (root, self-signed)' : ''}; valid until ${when(ci.not_after_unix)}`));
    li.append(el('div', 'SHA-256', 'small'), fill(el('div', null, 'mono small'), ci.sha256));
    return li;
  }));
  show('cert-chain-wrap', chain.length > 0);
}

function renderCa(c) {
  const ca = c.ca || {};
  setText('ca-subject', ca.subject);
  setText('ca-until', ca.not_after ? whenIso(ca.not_after) : '');
  setFingerprint('ca-sha', ca.sha256);
  // Two tiers: the root above is what users import; its issuing CA signs (its key is the only CA
  // key on the camera). One tier: the server's advice says what to do about it.
  setText('ca-issuing', ca.issuing
    ? `its issuing CA ${ca.issuing.subject}, valid until ${whenIso(ca.issuing.not_after)} (the root's key no longer exists)`
    : 'this CA itself (one tier)');
  const advice = $('ca-one-tier');
  advice.textContent = ca.advice || '';
  advice.hidden = !ca.advice;
  const banner = $('ca-replaced');
  if (ca.replaced) {
    banner.replaceChildren(
      el('h3', 'The camera\'s CA certificate was replaced'),
      el('p', `It was replaced on ${when(ca.replaced.replaced_at_unix)} because ${String(ca.replaced.reason || 'of a reset').replace(/\.$/, '')}. ` +
        'Browsers that trusted the old one now warn: import the new cacert.crt once more (you may remove the old one).'),
    );
    const a = el('a', 'Download the new CA certificate (cacert.crt)', 'button');
    a.href = '/cacert.crt';
    a.download = 'cacert.crt';
    banner.append(a);
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  const note = $('ca-uploaded-note');
  if (c.source === 'uploaded') {
    const issuer = (c.certificate || {}).issuer || 'another CA';
    note.textContent = `Right now the camera uses an uploaded certificate issued by ${issuer}. Browsers trust it only if they trust that CA; the camera's cacert.crt below does not help for it. It counts again once the camera's own certificate is back.`;
    note.hidden = false;
  } else {
    note.hidden = true;
  }
}

function renderCsr(c) {
  const p = c.pending_csr;
  show('csr-pending', !!p);
  if (p) {
    setText('csr-p-subject', p.subject);
    setText('csr-p-sans', (p.subject_alt_names || []).join(', '));
    setText('csr-p-key', p.key_type);
    setText('csr-p-created', when(p.created_at_unix));
  }
  const ta = $('csr-sans');
  if (!state.sansTouched && !ta.value.trim()) {
    ta.value = ((c.camera || {}).names || []).join('\n');
  }
  ta.rows = Math.min(10, Math.max(3, ta.value.split('\n').length + 1));
}


function loggedInWith(json) {
  state.csrf = json && json.csrf_token ? json.csrf_token : state.csrf;
}

async function onSetup(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const box = msgOf(form);
  const pw = $('setup-pw').value;
  if (pw.length < 8) { say(box, 'The password needs at least 8 characters.', 'error'); $('setup-pw').focus(); return; }
  if (pw !== $('setup-pw2').value) { say(box, 'The two passwords are not the same. Type them again.', 'error'); $('setup-pw2').focus(); return; }
  await withBusy($('setup-submit'), async () => {
    try {
      const res = await api('POST', '/api/v1/setup', { password: pw });
      loggedInWith(await res.json().catch(() => null));
      form.reset();
      say(box, '');
      await refresh();
      say('status', 'The admin password is set and you are logged in. Keep the password safe: there is no default to fall back to.');
    } catch (e) {
      say(box, e.message, 'error');
      if (e.code === 'already_set') await refresh();
    }
  });
}

async function onLogin(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const box = msgOf(form);
  const pw = $('login-pw').value;
  if (!pw) { say(box, 'Type the admin password.', 'error'); $('login-pw').focus(); return; }
  await withBusy($('login-submit'), async () => {
    try {
      const res = await api('POST', '/api/v1/login', { password: pw });
      loggedInWith(await res.json().catch(() => null));
      form.reset();
      say(box, '');
      await refresh();
      say('status', 'You are logged in.');
    } catch (e) {
      say(box, e.message, 'error');
      $('login-pw').select();
    }
  });
}

async function onLogout() {
  await withBusy($('logout'), async () => {
    try {
      await api('POST', '/api/v1/logout');
      state.csrf = null;
      await refresh();
      say('status', 'You are logged out.');
    } catch (e) {
      await handleError('status', e);
    }
  });
}

async function onCsr(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const box = msgOf(form);
  const subject = {};
  for (const k of ['C', 'ST', 'L', 'O', 'OU', 'CN']) {
    const v = form.elements[k].value.trim();
    if (v) subject[k] = k === 'C' ? v.toUpperCase() : v;
  }
  if (!subject.CN) { say(box, 'Fill in the common name (CN), for example the camera\'s name or address.', 'error'); $('csr-cn').focus(); return; }
  if (subject.C && !/^[A-Z]{2}$/.test(subject.C)) { say(box, 'The country is a two-letter code such as DE, US or CN.', 'error'); $('csr-c').focus(); return; }
  const sans = $('csr-sans').value.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
  if (!sans.length) { say(box, 'Give at least one address or name the certificate must cover.', 'error'); $('csr-sans').focus(); return; }
  const body = { subject, subject_alt_names: sans, key_type: $('csr-key').value };
  await withBusy($('csr-submit'), async () => {
    say(box, 'Creating the key and the request on the camera…', 'busy');
    try {
      const res = await api('POST', '/api/v1/csr', body);
      const pem = await res.text();
      $('csr-pem').value = pem;
      show('csr-result', true);
      say(box, 'The request is ready. Download certreq.pem and send it to your CA; then upload the certificate it issues below. The key stays on this camera.');
      await loadCertificate();
      render();
    } catch (e) {
      await handleError(box, e);
    }
  });
}

async function onCopy() {
  const ta = $('csr-pem');
  const box = msgOf($('csr-form'));
  try {
    await navigator.clipboard.writeText(ta.value);
    say(box, 'The request text is copied.');
  } catch (_) {
    ta.focus();
    ta.select();
    say(box, 'Press Ctrl+C (or ⌘C) to copy the selected text.');
  }
}

async function onUpload(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const box = msgOf(form);
  const certFile = $('up-cert').files[0];
  const keyFile = $('up-key').files[0];
  const pasted = $('up-paste').value.trim();
  const pass = $('up-pass').value;
  if (!certFile && !pasted) { say(box, 'Choose the certificate file, or paste the certificate text.', 'error'); $('up-cert').focus(); return; }
  const fd = new FormData();
  if (certFile) fd.append('certificate', certFile, certFile.name);
  else fd.append('certificate', pasted + '\n');
  if (keyFile) fd.append('key', keyFile, keyFile.name);
  if (pass) fd.append('passphrase', pass);
  await withBusy($('upload-submit'), async () => {
    say(box, 'Checking the certificate…', 'busy');
    try {
      const res = await api('PUT', '/api/v1/certificate', fd);
      const j = await res.json().catch(() => ({}));
      const info = j.certificate || {};
      const warnings = (j.warnings || []).map((w) => w.message || w.code);
      form.reset();
      show('csr-result', false);
      say(msgOf($('csr-form')), '');
      await loadCertificate();
      render();
      say(box,
        `The camera now uses the uploaded certificate for ${info.subject || 'this camera'}, issued by ${info.issuer || 'your CA'}. ` +
        'Reload the page to connect with it.' + (warnings.length ? ' Please note:' : ''),
        warnings.length ? 'warn' : 'ok', warnings);
    } catch (e) {
      await handleError(box, e);
      if (e.status && e.status !== 401) {
        const p = box.querySelector('p');
        if (p) p.append(el('span', ' The certificate in use has not changed.', 'muted'));
      }
    }
  });
}

function onRestoreAsk() {
  show('restore-confirm', true);
  $('restore-no').focus();
}

function onRestoreNo() {
  show('restore-confirm', false);
  $('restore-ask').focus();
}

async function onRestoreYes() {
  const box = msgOf($('restore-confirm'));
  await withBusy($('restore-yes'), async () => {
    try {
      await api('DELETE', '/api/v1/certificate');
      show('restore-confirm', false);
      await loadCertificate();
      await loadEnrollment();
      render();
      say('status', 'The camera\'s own certificate is back in use, and automatic enrollment is off. Reload the page to connect with it.');
      $('cert').scrollIntoView({ block: 'start' });
    } catch (e) {
      await handleError(box, e);
    }
  });
}

function init() {
  $('setup-form').addEventListener('submit', onSetup);
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('csr-form').addEventListener('submit', onCsr);
  $('csr-sans').addEventListener('input', () => { state.sansTouched = true; });
  $('csr-copy').addEventListener('click', onCopy);
  $('upload-form').addEventListener('submit', onUpload);
  $('restore-ask').addEventListener('click', onRestoreAsk);
  $('restore-no').addEventListener('click', onRestoreNo);
  $('restore-yes').addEventListener('click', onRestoreYes);
  $('enroll-form').addEventListener('submit', onEnroll);
  $('enroll-form').addEventListener('input', () => { state.enrollTouched = true; });
  $('enroll-protocol').addEventListener('change', onProtocol);
  $('enroll-stop').addEventListener('click', onEnrollStop);
  $('dot1x-en-form').addEventListener('submit', onEnroll);
  $('dot1x-en-form').addEventListener('input', () => { state.enTouched = true; });
  $('dot1x-en-stop').addEventListener('click', onEnrollStop);
  $('events-load').addEventListener('click', onEvents);
  $('dot1x-form').addEventListener('submit', onDot1x);
  $('dot1x-form').addEventListener('input', () => { state.dot1xTouched = true; });
  $('dot1x-csr').addEventListener('submit', onDot1xCsr);
  $('dot1x-upload').addEventListener('submit', onDot1xUpload);
  $('dot1x-delete').addEventListener('click', onDot1xDelete);
  window.addEventListener('hashchange', onTab);
  refresh();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
