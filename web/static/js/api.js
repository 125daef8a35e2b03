// The REST API from the browser: bearer tokens in an Authorization header
// (never a cookie, so no request can be forged cross-site), errors as
// ApiError with the API's code, message and field.

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || '';
    this.field = e.field || '';
  }
}

export class Api {
  // token: the bearer token; tenant: sent as X-Tenant (operator token only).
  constructor(token, tenant = '') {
    this.token = token;
    this.tenant = tenant;
  }

  headers(extra = {}) {
    const h = { Authorization: `Bearer ${this.token}`, ...extra };
    if (this.tenant) h['X-Tenant'] = this.tenant;
    return h;
  }

  // req sends a JSON request (body: an object, a string of JSON, a Blob)
  // and returns the decoded answer (null for 204).
  async req(method, path, body, { contentType, keepalive } = {}) {
    const opts = { method, headers: this.headers(), keepalive: !!keepalive, cache: 'no-store' };
    if (body !== undefined) {
      if (body instanceof Blob) {
        opts.body = body;
        opts.headers['Content-Type'] = contentType || body.type || 'application/octet-stream';
      } else {
        opts.body = typeof body === 'string' ? body : JSON.stringify(body);
        opts.headers['Content-Type'] = 'application/json';
      }
    }
    const res = await fetch(path, opts);
    if (res.status === 204) return null;
    const ct = res.headers.get('Content-Type') || '';
    const data = ct.startsWith('application/json') ? await res.json() : null;
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  get(path) { return this.req('GET', path); }

  // blob GETs a binary resource (greetings, export archives).
  async blob(path) {
    const res = await fetch(path, { headers: this.headers(), cache: 'no-store' });
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch { /* not JSON */ }
      throw new ApiError(res.status, data);
    }
    return res.blob();
  }

  // events follows /api/v1/events (Server-Sent Events) over fetch, so the
  // token goes in a header rather than the URL; it reconnects until
  // signal aborts. onEvent(type, data); onState(connected).
  async events(onEvent, onState, signal) {
    let backoff = 1000;
    while (!signal.aborted) {
      try {
        const res = await fetch('/api/v1/events', { headers: this.headers({ Accept: 'text/event-stream' }), signal, cache: 'no-store' });
        if (res.status === 401 || res.status === 403) { onState(false, res.status); return; }
        if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
        onState(true);
        backoff = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (data.length) {
              try { onEvent(type, JSON.parse(data.join('\n'))); } catch (e) { console.warn('bad event', e); }
            }
          }
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      onState(false);
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }
}

// el builds an element: el('button', {class: 'x', onclick: f}, 'text', child…).
// Text nodes and attributes only, so data from the API is never parsed as markup.
export function el(tag, attrs = {}, ...children) {
  const ns = attrs.ns;
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'ns' || v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.setAttribute('class', v);
    else if (k in e && !ns && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function $(sel, root = document) { return root.querySelector(sel); }

// show toggles the hidden attribute.
export function show(node, on = true) { node.hidden = !on; }

export function fmtDuration(ms) {
  const s = Math.max(1, Math.floor(ms / 1000)); // as the audio element shows it
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// saveDownload offers a Blob as a file.
export function saveDownload(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
