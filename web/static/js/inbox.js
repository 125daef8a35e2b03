// The web inbox: sign in with mailbox and PIN (POST /api/v1/login, the
// IVR's lockout), list the mailbox's and its groups' messages by folder,
// play them through signed links, act on them, follow new ones live.
import { Api, ApiError, el, $, show, fmtDuration } from './api.js';
import { Settings } from './settings.js';

const FOLDERS = [['new', 'New'], ['old', 'Old'], ['work', 'Work'], ['family', 'Family'], ['friends', 'Friends']];
// The API has no undelete: a delete is sent when this window closes
// without an undo (or when the page goes away).
const UNDO_MS = 6000;
const LINK_REFRESH_MS = 8 * 60 * 1000; // links live 10 minutes
const SESSION_KEY = 'vm.inbox';

const st = {
  api: null, me: null, tz: undefined, folder: 'new', vtype: 'all',
  msgs: new Map(), // id → message (not pending deletion)
  nodes: new Map(), // id → <li>
  pending: [], // [{msg, timer}] newest last
  abort: null, fmt: null, settings: null,
};

function say(text) { $('#status').textContent = text; }

function callerLabel(m) {
  const name = m.caller_name || (m.caller_id ? '' : 'Unknown caller');
  return [name, m.caller_id].filter(Boolean).join(' ');
}

// ---- sign-in ----

async function signIn(ev) {
  ev.preventDefault();
  const tenant = $('#login-tenant').value.trim() || 'default';
  const mailbox = $('#login-mailbox').value.trim();
  const pin = $('#login-pin').value;
  const err = $('#login-error');
  err.textContent = '';
  if (!/^[0-9]{1,32}$/.test(mailbox)) { err.textContent = 'Enter your mailbox number.'; $('#login-mailbox').focus(); return; }
  if (!/^[0-9]{4,10}$/.test(pin)) { err.textContent = 'The PIN is 4 to 10 digits.'; $('#login-pin').focus(); return; }
  $('#login-submit').disabled = true;
  try {
    const res = await fetch('/api/v1/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ tenant, mailbox, pin }), cache: 'no-store',
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, body);
    const sess = { token: body.token, tenant, mailbox };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(sess));
    $('#login-pin').value = '';
    await start(sess);
  } catch (e) {
    err.textContent = e.code === 'locked'
      ? 'This mailbox is locked after too many wrong PINs. Try again later.'
      : (e.status === 401 ? 'Wrong mailbox or PIN.' : `Sign-in failed: ${e.message}`);
    $('#login-pin').focus();
  } finally {
    $('#login-submit').disabled = false;
  }
}

async function signOut() {
  await commitDeletes(true);
  try { await st.api.req('DELETE', '/api/v1/login'); } catch { /* already gone */ }
  sessionStorage.removeItem(SESSION_KEY);
  location.hash = '';
  location.reload();
}

async function start(sess) {
  st.api = new Api(sess.token);
  try {
    st.me = await st.api.get(`/api/v1/mailboxes/${sess.mailbox}`);
  } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem(SESSION_KEY); return; }
    throw e;
  }
  setZone(st.me.timezone);
  $('#who').textContent = `${st.me.name || 'Mailbox'} ${st.me.number}`;
  show($('#login-view'), false);
  show($('#nav'));
  st.settings = new Settings(st.api, st.me, (mb) => { st.me = mb; setZone(mb.timezone); renderAll(); });
  route();
  await load();
  st.abort = new AbortController();
  st.api.events(onEvent, (on) => {
    $('#live').textContent = on ? 'live' : 'offline';
    $('#live').classList.toggle('on', on);
    if (on) load(); // catch up on anything missed while disconnected
  }, st.abort.signal);
  setInterval(refreshLinks, LINK_REFRESH_MS);
}

function setZone(tz) {
  st.tz = tz || undefined;
  try {
    st.fmt = new Intl.DateTimeFormat(undefined, { timeZone: st.tz, year: 'numeric', month: 'short', day: 'numeric',
      hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });
  } catch {
    st.fmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }
}

function route() {
  const settings = location.hash === '#settings';
  show($('#inbox-view'), !settings);
  show($('#settings-view'), settings);
  $('#nav-inbox').toggleAttribute('aria-current', !settings);
  $('#nav-settings').toggleAttribute('aria-current', settings);
  if (settings) st.settings.open();
}

// ---- messages ----

async function load() {
  const q = new URLSearchParams({ voicemail_type: st.vtype, limit: '1000' });
  const out = await st.api.get(`/api/v1/users/${st.me.number}/messages?${q}`);
  const pendingIDs = new Set(st.pending.map((p) => p.msg.id));
  st.msgs = new Map(out.items.filter((m) => !pendingIDs.has(m.id)).map((m) => [m.id, m]));
  renderAll();
}

function wanted(m) {
  if (st.vtype === 'personal') return m.mailbox_type !== 'group';
  if (st.vtype === 'global') return m.mailbox_type === 'group';
  return true;
}

function onEvent(type, ev) {
  const m = ev.object;
  if (!m || !m.id || !type.startsWith('message_')) {
    if (type === 'mailbox_updated' && ev.mailbox === st.me.number) { st.me = ev.object; setZone(st.me.timezone); renderAll(); }
    return;
  }
  m.mailbox_type = m.mailbox_type || ev.mailbox_type;
  if (type === 'message_deleted') {
    st.pending = st.pending.filter((p) => p.msg.id !== m.id || (clearTimeout(p.timer), false));
    if (st.msgs.delete(m.id)) renderAll();
    if (!st.pending.length) show($('#undo-bar'), false);
    return;
  }
  if (st.pending.some((p) => p.msg.id === m.id) || !wanted(m)) return;
  const isNew = !st.msgs.has(m.id);
  st.msgs.set(m.id, m);
  renderAll();
  if (type === 'message_created' && isNew) say(`New message from ${callerLabel(m)}.`);
}

function renderAll() {
  const all = [...st.msgs.values()];
  const unread = all.filter((m) => m.folder === 'new' && !m.read).length;
  document.title = `${unread ? `(${unread}) ` : ''}Voicemail ${st.me.number}`;
  const tabs = $('#folders');
  if (!tabs.children.length) {
    // Built once and updated in place, so that focus stays on a tab while
    // events re-render the list.
    tabs.append(...FOLDERS.map(([f, label]) => el('button', {
      type: 'button', role: 'tab', id: `tab-${f}`, 'data-folder': f, 'aria-controls': 'messages', class: 'tab',
      onclick: () => pickFolder(f), onkeydown: tabKeys,
    }, label, ' ', el('span', { class: 'count' }))));
  }
  for (const [f] of FOLDERS) {
    const n = all.filter((m) => m.folder === f).length;
    const b = $(`#tab-${f}`);
    b.setAttribute('aria-selected', String(f === st.folder));
    b.tabIndex = f === st.folder ? 0 : -1;
    const c = b.querySelector('.count');
    c.textContent = String(n);
    c.setAttribute('aria-label', `${n} messages`);
  }
  const list = $('#messages');
  list.setAttribute('aria-label', `${FOLDERS.find(([f]) => f === st.folder)[1]} messages`);
  const shown = all.filter((m) => m.folder === st.folder)
    .sort((a, b) => (b.received_at.localeCompare(a.received_at)) || b.id.localeCompare(a.id));
  for (const [id, li] of st.nodes) {
    if (!st.msgs.has(id)) { linkObserver.unobserve(li); li.remove(); st.nodes.delete(id); }
  }
  const keep = new Set(shown.map((m) => m.id));
  for (const li of [...list.children]) if (!keep.has(li.dataset.id)) li.remove();
  shown.forEach((m, i) => {
    let li = st.nodes.get(m.id);
    if (!li) { li = messageNode(m); st.nodes.set(m.id, li); }
    fillNode(li, m);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  show($('#empty'), shown.length === 0);
}

function tabKeys(e) {
  const i = FOLDERS.findIndex(([f]) => f === st.folder);
  let j = -1;
  if (e.key === 'ArrowRight') j = (i + 1) % FOLDERS.length;
  if (e.key === 'ArrowLeft') j = (i + FOLDERS.length - 1) % FOLDERS.length;
  if (j < 0) return;
  e.preventDefault();
  pickFolder(FOLDERS[j][0]);
  $(`#tab-${FOLDERS[j][0]}`).focus();
}

function pickFolder(f) { st.folder = f; renderAll(); }

// messageNode builds the parts of a message row that do not change.
function messageNode(m) {
  const tid = `t-${m.id}`;
  const audio = el('audio', { controls: true, preload: 'metadata', class: 'player' });
  audio.addEventListener('play', () => { const cur = st.msgs.get(m.id); if (cur && !cur.read) patch(cur, { read: true }, null); });
  audio.addEventListener('error', () => { if (!audio.dataset.retried) { audio.dataset.retried = '1'; links(m.id, true); } });
  const move = el('select', { class: 'act-move-to', 'aria-label': 'Move to folder' },
    ...FOLDERS.map(([f, label]) => el('option', { value: f }, label)));
  const li = el('li', { class: 'msg', 'data-id': m.id, 'aria-labelledby': tid },
    el('div', { class: 'head' },
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      el('h3', { id: tid, class: 'caller' }),
      el('span', { class: 'badges' }),
      el('time', { class: 'when' }),
      el('span', { class: 'dur' })),
    el('img', { class: 'wave', alt: '', width: '640', height: '64' }),
    audio,
    el('div', { class: 'actions', role: 'group', 'aria-label': 'Message actions' },
      el('button', { type: 'button', class: 'act-read', onclick: () => { const c = st.msgs.get(m.id); patch(c, { read: !c.read }, c.read ? 'Marked as unread.' : 'Marked as read.'); } }),
      move,
      el('button', { type: 'button', class: 'act-move', onclick: () => { const c = st.msgs.get(m.id); if (move.value !== c.folder) patch(c, { folder: move.value }, `Moved to ${move.selectedOptions[0].textContent}.`); } }, 'Move'),
      el('button', { type: 'button', class: 'act-forward', onclick: () => forward(st.msgs.get(m.id)) }, 'Forward…'),
      el('a', { class: 'act-download button', download: `${m.id}.wav` }, 'Download'),
      el('button', { type: 'button', class: 'act-delete danger', onclick: () => del(st.msgs.get(m.id)) }, 'Delete')));
  linkObserver.observe(li);
  return li;
}

// fillNode writes what can change (folder, read, urgent, time zone).
function fillNode(li, m) {
  const who = callerLabel(m);
  li.classList.toggle('unread', !m.read);
  li.dataset.folder = m.folder;
  li.querySelector('.caller').textContent = who;
  li.querySelector('.dot').classList.toggle('on', !m.read);
  const badges = [];
  if (!m.read) badges.push(el('span', { class: 'badge unread-badge' }, 'Unread'));
  if (m.urgent) badges.push(el('span', { class: 'badge urgent' }, 'Urgent'));
  if (m.mailbox_type === 'group') badges.push(el('span', { class: 'badge group' }, `Group ${m.mailbox}`));
  li.querySelector('.badges').replaceChildren(...badges);
  const t = li.querySelector('.when');
  t.dateTime = m.received_at;
  t.textContent = st.fmt.format(new Date(m.received_at));
  li.querySelector('.dur').textContent = fmtDuration(m.duration_ms);
  li.querySelector('.dur').setAttribute('aria-label', `duration ${Math.round(m.duration_ms / 1000)} seconds`);
  li.querySelector('.wave').alt = `Waveform of the message from ${who}`;
  li.querySelector('.player').setAttribute('aria-label', `Play the message from ${who}`);
  li.querySelector('.act-read').textContent = m.read ? 'Mark unread' : 'Mark read';
  li.querySelector('.act-move-to').value = m.folder;
  li.querySelector('.act-download').setAttribute('aria-label', `Download the message from ${who}`);
}

// Links are asked for when a row comes into view, not for the whole list.
const linkObserver = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    linkObserver.unobserve(e.target);
    links(e.target.dataset.id);
  }
}, { rootMargin: '400px' });

// links fetches signed links for the audio, waveform and download.
async function links(id, force = false) {
  const li = st.nodes.get(id);
  const m = st.msgs.get(id);
  if (!m) return;
  try {
    const l = await st.api.get(`/api/v1/mailboxes/${m.mailbox}/messages/${id}/links`);
    const node = li || st.nodes.get(id);
    if (!node) return;
    const audio = node.querySelector('.player');
    if (force || !audio.getAttribute('src')) { audio.src = l.audio; if (force) audio.play().catch(() => {}); }
    node.querySelector('.wave').src = l.waveform;
    node.querySelector('.act-download').href = l.download;
  } catch (e) {
    if (e.status !== 404) say(`Cannot load the audio: ${e.message}`);
  }
}

function refreshLinks() {
  for (const [id, li] of st.nodes) {
    const audio = li.querySelector('.player');
    if (audio.paused && audio.getAttribute('src')) { audio.removeAttribute('src'); links(id); }
  }
}

async function patch(m, body, done) {
  try {
    const out = await st.api.req('PATCH', `/api/v1/mailboxes/${m.mailbox}/messages/${m.id}`, body);
    out.mailbox_type = out.mailbox_type || m.mailbox_type;
    if (st.msgs.has(m.id)) st.msgs.set(m.id, out);
    renderAll();
    if (done) say(done);
  } catch (e) {
    say(`Failed: ${e.message}`);
  }
}

// ---- delete with undo (client-side: the API cannot undelete) ----

function del(m) {
  st.msgs.delete(m.id);
  const timer = setTimeout(() => commit(m.id), UNDO_MS);
  st.pending.push({ msg: m, timer });
  renderAll();
  $('#undo-text').textContent = `Message from ${callerLabel(m)} deleted.`;
  show($('#undo-bar'));
  $('#undo-btn').focus();
}

async function commit(id, keepalive = false) {
  const i = st.pending.findIndex((p) => p.msg.id === id);
  if (i < 0) return;
  const [{ msg, timer }] = st.pending.splice(i, 1);
  clearTimeout(timer);
  if (!st.pending.length) show($('#undo-bar'), false);
  try {
    await st.api.req('DELETE', `/api/v1/mailboxes/${msg.mailbox}/messages/${msg.id}`, undefined, { keepalive });
  } catch (e) {
    if (e.status !== 404) { st.msgs.set(msg.id, msg); renderAll(); say(`Delete failed: ${e.message}`); }
  }
}

function commitDeletes(keepalive) {
  return Promise.all(st.pending.map((p) => commit(p.msg.id, keepalive)));
}

function undo() {
  const p = st.pending.pop();
  if (!p) return;
  clearTimeout(p.timer);
  st.msgs.set(p.msg.id, p.msg);
  if (!st.pending.length) show($('#undo-bar'), false);
  st.folder = p.msg.folder;
  renderAll();
  say(`Restored the message from ${callerLabel(p.msg)}.`);
  st.nodes.get(p.msg.id)?.querySelector('.act-delete')?.focus();
}

// ---- forward ----

function forward(m) {
  const dlg = $('#forward-dialog');
  $('#forward-error').textContent = '';
  $('#forward-to').value = '';
  dlg.dataset.id = m.id;
  dlg.showModal();
  $('#forward-to').focus();
}

async function forwardSubmit(e) {
  e.preventDefault();
  const dlg = $('#forward-dialog');
  const m = st.msgs.get(dlg.dataset.id);
  const to = $('#forward-to').value.trim();
  if (!m) { dlg.close(); return; }
  try {
    await st.api.req('POST', `/api/v1/mailboxes/${m.mailbox}/messages/${m.id}/forward`, { to });
    dlg.close();
    say(`Forwarded to ${to}.`);
  } catch (err) {
    $('#forward-error').textContent = err.message;
  }
}

// ---- wiring ----

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', signIn);
  $('#logout').addEventListener('click', signOut);
  $('#undo-btn').addEventListener('click', undo);
  $('#forward-form').addEventListener('submit', forwardSubmit);
  $('#forward-cancel').addEventListener('click', () => $('#forward-dialog').close());
  $('#vtype').addEventListener('change', (e) => { st.vtype = e.target.value; load(); });
  window.addEventListener('hashchange', () => { if (st.me) route(); });
  // Deletes still in their undo window are sent before the page goes.
  window.addEventListener('pagehide', () => commitDeletes(true));
  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved) {
    const sess = JSON.parse(saved);
    $('#login-mailbox').value = sess.mailbox;
    start(sess).catch((e) => say(e.message));
  } else {
    $('#login-mailbox').focus();
  }
});
