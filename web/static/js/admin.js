// The admin console over the REST API with an operator or tenant token.
// The API decides: a token it refuses (a mailbox's user token) gets the
// API's 403 shown, not a hidden menu.
import { Api, el, $, show, saveDownload } from './api.js';
import { Dashboard } from './chart.js';

const SESSION_KEY = 'vm.admin';
const SECTIONS = ['dashboard', 'tenants', 'mailboxes', 'webhooks', 'gdpr'];
const st = { api: null, who: null, dash: null, archive: null };

const when = (t) => (t ? new Date(t).toLocaleString() : '');
const list = (s) => s.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);

function confirmDialog(text) {
  const dlg = $('#confirm-dialog');
  $('#confirm-text').textContent = text;
  dlg.returnValue = '';
  dlg.showModal();
  $('#confirm-no').focus();
  return new Promise((resolve) => dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true }));
}

function btn(label, onclick, cls = '') {
  return el('button', { type: 'button', class: cls, onclick }, label);
}

// ---- sign-in ----

async function signIn(ev) {
  ev?.preventDefault();
  const token = $('#login-token').value.trim();
  const tenant = $('#login-tenant').value.trim();
  $('#login-error').textContent = '';
  if (!token) { $('#login-error').textContent = 'Paste a token.'; return; }
  await start({ token, tenant });
}

async function start(sess) {
  st.api = new Api(sess.token, sess.tenant);
  try {
    st.who = await st.api.get('/api/v1/whoami');
    // The console opens only if the API lets this token administer: ask it.
    await st.api.get('/api/v1/webhooks');
  } catch (e) {
    sessionStorage.removeItem(SESSION_KEY);
    if (e.status === 401) { $('#login-error').textContent = 'This token is not valid.'; return; }
    show($('#login-view'), false);
    show($('#refusal'));
    $('#refusal-text').textContent = e.status === 403
      ? `The server refused this token (403: ${e.message}). The admin console needs an operator or tenant token; mailbox owners use the web inbox.`
      : `The server answered ${e.status}: ${e.message}`;
    $('#refusal-back').focus();
    return;
  }
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(sess));
  $('#login-token').value = '';
  show($('#login-view'), false);
  show($('#nav'));
  show($('#nav-tenants'), st.who.kind === 'operator');
  $('#who').textContent = `${st.who.kind} · tenant ${st.who.tenant}`;
  st.dash = new Dashboard({ calls: $('#st-calls'), deposits: $('#st-deposits'), storage: $('#st-storage'), chart: $('#chart') });
  route();
}

function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  location.hash = '';
  location.reload();
}

function route() {
  if (!st.who) return;
  let sec = location.hash.slice(1) || 'dashboard';
  if (!SECTIONS.includes(sec) || (sec === 'tenants' && st.who.kind !== 'operator')) sec = 'dashboard';
  for (const s of SECTIONS) show($(`#sec-${s}`), s === sec);
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('current', a.dataset.sec === sec);
    a.toggleAttribute('aria-current', a.dataset.sec === sec);
  }
  if (sec === 'dashboard') st.dash.start(); else st.dash.stop();
  ({ tenants: loadTenants, mailboxes: loadMailboxes, webhooks: loadWebhooks }[sec] || (() => {}))();
}

function report(sel, e) { $(sel).textContent = e instanceof Error ? `Error: ${e.message}` : e; }

// ---- tenants and tokens (operator) ----

async function loadTenants() {
  try {
    const out = await st.api.get('/api/v1/tenants');
    $('#tenants').replaceChildren(...out.items.map((t) => el('tr', { 'data-tenant': t.name },
      el('td', {}, t.name), el('td', {}, (t.domains || []).join(', ')), el('td', {}, when(t.created_at)),
      el('td', {}, t.name === 'default' ? '' : btn('Delete', () => deleteTenant(t.name), 'danger')))));
    const sel = $('#tokens-tenant');
    const cur = sel.value || st.who.tenant;
    sel.replaceChildren(...out.items.map((t) => el('option', { value: t.name }, t.name)));
    sel.value = out.items.some((t) => t.name === cur) ? cur : out.items[0]?.name;
    await loadTokens();
  } catch (e) { report('#tenant-msg', e); }
}

async function createTenant(ev) {
  ev.preventDefault();
  try {
    const t = await st.api.req('POST', '/api/v1/tenants', { name: $('#tenant-name').value.trim(), domains: list($('#tenant-domains').value) });
    report('#tenant-msg', `Tenant ${t.name} created.`);
    $('#tenant-name').value = '';
    $('#tenant-domains').value = '';
    loadTenants();
  } catch (e) { report('#tenant-msg', e); }
}

async function deleteTenant(name) {
  if (!(await confirmDialog(`Delete tenant ${name} with all its mailboxes and messages?`))) return;
  try { await st.api.req('DELETE', `/api/v1/tenants/${encodeURIComponent(name)}`); report('#tenant-msg', `Tenant ${name} deleted.`); } catch (e) { report('#tenant-msg', e); }
  loadTenants();
}

async function loadTokens() {
  const t = $('#tokens-tenant').value;
  if (!t) return;
  try {
    const out = await st.api.get(`/api/v1/tenants/${encodeURIComponent(t)}/tokens`);
    $('#tokens').replaceChildren(...out.items.map((k) => el('tr', {},
      el('td', {}, k.id), el('td', {}, k.kind), el('td', {}, k.mailbox || ''), el('td', {}, when(k.created_at)),
      el('td', {}, when(k.expires_at)),
      el('td', {}, btn('Revoke', () => revokeToken(t, k.id), 'danger')))));
  } catch (e) { report('#token-msg', e); }
}

async function createToken() {
  const t = $('#tokens-tenant').value;
  try {
    const k = await st.api.req('POST', `/api/v1/tenants/${encodeURIComponent(t)}/tokens`);
    $('#token-msg').replaceChildren('New token for ', t, ' (shown once): ', el('code', { class: 'secret' }, k.token));
    loadTokens();
  } catch (e) { report('#token-msg', e); }
}

async function revokeToken(t, id) {
  if (!(await confirmDialog(`Revoke token ${id}?`))) return;
  try { await st.api.req('DELETE', `/api/v1/tenants/${encodeURIComponent(t)}/tokens/${id}`); report('#token-msg', 'Token revoked.'); } catch (e) { report('#token-msg', e); }
  loadTokens();
}

// ---- mailboxes and groups ----

async function loadMailboxes() {
  try {
    const items = [];
    let cursor = '';
    do {
      const out = await st.api.get(`/api/v1/mailboxes?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...out.items);
      cursor = out.next;
    } while (cursor);
    $('#mailboxes').replaceChildren(...items.map(mailboxRow));
  } catch (e) { report('#mb-msg', e); }
}

function mailboxRow(m) {
  const members = el('td', { class: 'members' }, m.members.join(', '));
  const actions = el('td', {});
  if (m.type === 'group') actions.append(btn('Edit members', () => editMembers(m, members), 'edit-members'), ' ');
  actions.append(btn('Delete', () => deleteMailbox(m.number), 'danger del-mailbox'));
  return el('tr', { 'data-number': m.number },
    el('td', {}, m.number), el('td', {}, m.name), el('td', {}, m.type), members,
    el('td', {}, m.email), el('td', {}, m.timezone || ''), actions);
}

function editMembers(m, cell) {
  const input = el('input', { value: m.members.join(', '), 'aria-label': `Members of group ${m.number}`, class: 'members-input' });
  const save = async () => {
    try {
      await st.api.req('PATCH', `/api/v1/mailboxes/${m.number}`, { members: list(input.value) });
      report('#mb-msg', `Members of ${m.number} saved.`);
      loadMailboxes();
    } catch (e) { report('#mb-msg', e); input.focus(); }
  };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') save(); if (e.key === 'Escape') loadMailboxes(); });
  cell.replaceChildren(input, ' ', btn('Save', save, 'save-members'));
  input.focus();
}

async function createMailbox(ev) {
  ev.preventDefault();
  const body = { number: $('#mb-number').value.trim(), name: $('#mb-name').value.trim(), type: $('#mb-type').value };
  const pin = $('#mb-pin').value;
  if (pin) body.pin = pin;
  const email = $('#mb-email').value.trim();
  if (email) body.email = email;
  if (body.type === 'group') body.members = list($('#mb-members').value);
  try {
    const m = await st.api.req('POST', '/api/v1/mailboxes', body);
    report('#mb-msg', `${m.type === 'group' ? 'Group' : 'Mailbox'} ${m.number} created.`);
    $('#mailbox-form').reset();
    loadMailboxes();
  } catch (e) {
    report('#mb-msg', e);
    if (e.field) document.getElementById(`mb-${e.field === 'members' ? 'members' : e.field}`)?.focus();
  }
}

async function deleteMailbox(n) {
  if (!(await confirmDialog(`Delete mailbox ${n}, its messages and greetings? This cannot be undone.`))) return;
  try { await st.api.req('DELETE', `/api/v1/mailboxes/${n}`); report('#mb-msg', `Mailbox ${n} deleted.`); } catch (e) { report('#mb-msg', e); }
  loadMailboxes();
}

// ---- webhooks ----

async function loadWebhooks() {
  try {
    const out = await st.api.get('/api/v1/webhooks');
    $('#webhooks').replaceChildren(...out.items.map((h) => el('tr', {},
      el('td', {}, h.id), el('td', {}, h.url), el('td', {}, (h.events || []).join(', ') || 'all'), el('td', {}, when(h.created_at)),
      el('td', {}, btn('Delivery log', () => deliveries(h)), ' ', btn('Delete', () => deleteWebhook(h.id), 'danger')))));
  } catch (e) { report('#wh-msg', e); }
}

async function createWebhook(ev) {
  ev.preventDefault();
  const body = { url: $('#wh-url').value.trim(), events: list($('#wh-events').value) };
  const secret = $('#wh-secret').value;
  if (secret) body.secret = secret;
  try {
    await st.api.req('POST', '/api/v1/webhooks', body);
    report('#wh-msg', 'Webhook added.');
    $('#webhook-form').reset();
    loadWebhooks();
  } catch (e) { report('#wh-msg', e); }
}

async function deleteWebhook(id) {
  if (!(await confirmDialog(`Delete webhook ${id}?`))) return;
  try { await st.api.req('DELETE', `/api/v1/webhooks/${id}`); report('#wh-msg', 'Webhook deleted.'); } catch (e) { report('#wh-msg', e); }
  show($('#deliveries-card'), false);
  loadWebhooks();
}

async function deliveries(h) {
  try {
    const out = await st.api.get(`/api/v1/webhooks/${h.id}/deliveries`);
    $('#deliveries-h').textContent = `Delivery log of ${h.url}`;
    $('#deliveries').replaceChildren(...out.items.map((d) => el('tr', {},
      el('td', {}, when(d.at)), el('td', {}, d.event_type), el('td', {}, String(d.attempt)),
      el('td', { class: d.result === 'delivered' ? 'res-ok' : 'res-err' }, d.result), el('td', {}, String(d.status || '')),
      el('td', {}, `${d.duration_ms} ms`), el('td', {}, d.error || ''))));
    if (!out.items.length) $('#deliveries').replaceChildren(el('tr', {}, el('td', { colspan: '7' }, 'No deliveries yet.')));
    show($('#deliveries-card'));
  } catch (e) { report('#wh-msg', e); }
}

// ---- GDPR ----

async function runGDPR(ev) {
  ev.preventDefault();
  const op = $('#gdpr-op').value;
  const doc = $('#gdpr-doc').value.trim();
  try { JSON.parse(doc); } catch (e) { report('#gdpr-msg', `The request is not valid JSON: ${e.message}`); $('#gdpr-doc').focus(); return; }
  $('#gdpr-run').disabled = true;
  report('#gdpr-msg', 'Running…');
  try {
    const out = await st.api.req('POST', `/api/v1/gdpr/${op}`, doc);
    report('#gdpr-msg', `Done: ${op}.`);
    const rows = [];
    // The contact-center result format: result[i] is the request with a
    // response inside each of its contacts (docs/gdpr.md).
    for (const r of out.result || []) {
      for (const x of r.contacts || []) {
        const kind = Object.keys(x).find((k) => k !== 'response' && k !== 'messages' && k !== 'mailboxes');
        const ok = String(x.response).startsWith('SUCCESS');
        rows.push(el('tr', {}, el('td', {}, r.requestcase ?? ''), el('td', {}, kind ? `${kind}: ${x[kind]}` : ''),
          el('td', { class: ok ? 'res-ok' : 'res-err' }, x.response), el('td', {}, String(x.messages ?? 0))));
      }
    }
    $('#gdpr-rows').replaceChildren(...rows);
    $('#gdpr-summary').textContent = `${out.contacts} contacts, ${out.errors} errors, ${out.messages} messages.`;
    st.archive = out.archive_url || null;
    show($('#gdpr-archive'), !!st.archive);
    show($('#gdpr-result'));
  } catch (e) {
    report('#gdpr-msg', e);
  } finally {
    $('#gdpr-run').disabled = false;
  }
}

async function downloadArchive() {
  try {
    const blob = await st.api.blob(st.archive);
    saveDownload(blob, `${st.archive.split('/').pop()}.zip`);
  } catch (e) { report('#gdpr-msg', e); }
}

// ---- wiring ----

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', signIn);
  $('#logout').addEventListener('click', signOut);
  $('#refusal-back').addEventListener('click', () => { show($('#refusal'), false); show($('#login-view')); $('#login-token').focus(); });
  $('#tenant-form').addEventListener('submit', createTenant);
  $('#tokens-tenant').addEventListener('change', loadTokens);
  $('#token-create').addEventListener('click', createToken);
  $('#mailbox-form').addEventListener('submit', createMailbox);
  $('#webhook-form').addEventListener('submit', createWebhook);
  $('#gdpr-form').addEventListener('submit', runGDPR);
  $('#gdpr-file').addEventListener('change', async (e) => { const f = e.target.files[0]; if (f) $('#gdpr-doc').value = await f.text(); });
  $('#gdpr-archive').addEventListener('click', downloadArchive);
  window.addEventListener('hashchange', route);
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved) start(JSON.parse(saved)); else $('#login-token').focus();
});
