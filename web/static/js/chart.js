// The dashboard: samples /metrics (Prometheus text) every few seconds and
// draws the series as an inline SVG chart.
const NS = 'http://www.w3.org/2000/svg';

// parseMetrics returns name{labels} → value for every sample line.
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/);
    if (m) out.set(m[1] + (m[2] || ''), Number(m[3]));
  }
  return out;
}

// sum adds every sample of a metric whose labels contain all of `want`.
export function sum(metrics, name, want = {}) {
  let total = 0;
  for (const [k, v] of metrics) {
    if (k !== name && !k.startsWith(`${name}{`)) continue;
    if (Object.entries(want).every(([l, val]) => k.includes(`${l}="${val}"`))) total += v;
  }
  return total;
}

// draw renders series (arrays of numbers, same length) into svg.
export function draw(svg, series) {
  const W = 600, H = 160, PAD = 18;
  const n = Math.max(...series.map((s) => s.length), 2);
  const top = Math.max(1, ...series.flat());
  const x = (i) => PAD + (i * (W - 2 * PAD)) / (n - 1);
  const y = (v) => H - PAD - (v * (H - 2 * PAD)) / top;
  const kids = [];
  const line = (cls, x1, y1, x2, y2) => {
    const l = document.createElementNS(NS, 'line');
    for (const [k, v] of Object.entries({ class: cls, x1, y1, x2, y2 })) l.setAttribute(k, v);
    return l;
  };
  kids.push(line('axis', PAD, H - PAD, W - PAD, H - PAD), line('axis', PAD, PAD, PAD, H - PAD));
  const label = document.createElementNS(NS, 'text');
  label.setAttribute('x', PAD + 4);
  label.setAttribute('y', PAD - 4);
  label.textContent = `max ${top}`;
  kids.push(label);
  series.forEach((s, k) => {
    const p = document.createElementNS(NS, 'polyline');
    p.setAttribute('class', `l${k}`);
    const off = n - s.length;
    p.setAttribute('points', s.map((v, i) => `${x(i + off).toFixed(1)},${y(v).toFixed(1)}`).join(' '));
    kids.push(p);
  });
  svg.replaceChildren(...kids);
}

// Dashboard polls /metrics while started.
export class Dashboard {
  constructor(els) {
    this.els = els;
    this.samples = []; // {t, calls, deposits, sse, recorded}
    this.timer = null;
  }

  start() {
    if (this.timer) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), 5000);
  }

  stop() { clearInterval(this.timer); this.timer = null; }

  async tick() {
    let m;
    try {
      const res = await fetch('/metrics', { cache: 'no-store' });
      m = parseMetrics(await res.text());
    } catch {
      return;
    }
    const s = {
      t: Date.now(),
      calls: sum(m, 'voicemail_active_calls'),
      deposits: sum(m, 'voicemail_calls_total', { kind: 'deposit', result: 'completed' }),
      sse: sum(m, 'voicemail_sse_clients'),
      recorded: sum(m, 'voicemail_recording_seconds_total'),
    };
    this.samples.push(s);
    if (this.samples.length > 120) this.samples.shift();
    const first = this.samples.find((x) => s.t - x.t <= 10 * 60 * 1000) || s;
    const hours = Math.max((s.t - first.t) / 3600000, 1 / 720);
    this.els.calls.textContent = String(s.calls);
    this.els.deposits.textContent = first === s ? '0' : ((s.deposits - first.deposits) / hours).toFixed(0);
    this.els.storage.textContent = `${(s.recorded / 60).toFixed(1)} min`;
    const d = this.samples.map((x, i) => (i ? Math.max(0, x.deposits - this.samples[i - 1].deposits) : 0));
    draw(this.els.chart, [this.samples.map((x) => x.calls), d, this.samples.map((x) => x.sse)]);
  }
}
