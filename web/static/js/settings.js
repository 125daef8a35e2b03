// Greetings (listen, upload, record, delete) and the mailbox settings a
// user may change (PIN twice, email, attach-audio, time zone).
import { el, $ } from './api.js';
import { Recorder } from './wav.js';

const KINDS = [
  ['unavailable', 'Unavailable greeting'],
  ['busy', 'Busy greeting'],
  ['temporary', 'Temporary greeting'],
  ['name', 'Recorded name'],
];

export class Settings {
  constructor(api, me, onChange) {
    this.api = api;
    this.me = me;
    this.onChange = onChange;
    this.urls = new Map();
    this.built = false;
  }

  base() { return `/api/v1/mailboxes/${this.me.number}`; }

  open() {
    if (!this.built) this.build();
    this.fill();
    for (const [kind] of KINDS) this.loadGreeting(kind);
  }

  build() {
    this.built = true;
    $('#greetings').replaceChildren(...KINDS.map(([kind, label]) => {
      const hid = `g-${kind}-h`;
      const file = el('input', { type: 'file', accept: '.wav,audio/wav,audio/x-wav', class: 'g-file', id: `g-${kind}-file` });
      file.addEventListener('change', () => { if (file.files[0]) this.upload(kind, file.files[0]); file.value = ''; });
      const rec = el('button', { type: 'button', class: 'g-record', 'aria-pressed': 'false' }, 'Record');
      rec.addEventListener('click', () => this.toggleRecord(kind, rec));
      return el('li', { class: 'greeting', 'data-kind': kind, 'aria-labelledby': hid },
        el('h4', { id: hid }, label),
        el('audio', { controls: true, class: 'g-audio', 'aria-label': `Listen to the ${label.toLowerCase()}` }),
        el('span', { class: 'g-none' }, 'None recorded'),
        el('div', { class: 'row' },
          el('label', { for: `g-${kind}-file`, class: 'button' }, 'Upload WAV'), file, rec,
          el('button', { type: 'button', class: 'g-delete danger', onclick: () => this.remove(kind) }, 'Delete')),
        el('p', { class: 'g-msg', role: 'status', 'aria-live': 'polite' }));
    }));
    const tz = $('#set-tz');
    const zones = (Intl.supportedValuesOf && Intl.supportedValuesOf('timeZone')) || ['UTC'];
    tz.replaceChildren(el('option', { value: '' }, 'Server default'), ...zones.map((z) => el('option', { value: z }, z)));
    $('#settings-form').addEventListener('submit', (e) => this.save(e));
  }

  fill() {
    $('#set-email').value = this.me.email || '';
    $('#set-attach').checked = !!this.me.attach_audio;
    const tz = $('#set-tz');
    if (this.me.timezone && ![...tz.options].some((o) => o.value === this.me.timezone)) {
      tz.append(el('option', { value: this.me.timezone }, this.me.timezone));
    }
    tz.value = this.me.timezone || '';
  }

  node(kind) { return $(`#greetings li[data-kind="${kind}"]`); }

  status(kind, text) { this.node(kind).querySelector('.g-msg').textContent = text; }

  async loadGreeting(kind) {
    const li = this.node(kind);
    const audio = li.querySelector('.g-audio');
    try {
      const blob = await this.api.blob(`${this.base()}/greetings/${kind}`);
      if (this.urls.has(kind)) URL.revokeObjectURL(this.urls.get(kind));
      const url = URL.createObjectURL(blob);
      this.urls.set(kind, url);
      audio.src = url;
      audio.hidden = false;
      li.querySelector('.g-none').hidden = true;
      li.dataset.size = String(blob.size);
    } catch (e) {
      audio.removeAttribute('src');
      audio.hidden = true;
      li.querySelector('.g-none').hidden = false;
      li.dataset.size = '0';
      if (e.status !== 404) this.status(kind, `Cannot load: ${e.message}`);
    }
  }

  async upload(kind, blob) {
    this.status(kind, 'Uploading…');
    try {
      await this.api.req('PUT', `${this.base()}/greetings/${kind}`, blob, { contentType: 'audio/wav' });
      this.status(kind, 'Saved.');
      await this.loadGreeting(kind);
    } catch (e) {
      this.status(kind, `Upload refused: ${e.message}`);
    }
  }

  async remove(kind) {
    try {
      await this.api.req('DELETE', `${this.base()}/greetings/${kind}`);
      this.status(kind, 'Deleted.');
    } catch (e) {
      this.status(kind, e.status === 404 ? 'Nothing to delete.' : `Delete failed: ${e.message}`);
    }
    await this.loadGreeting(kind);
  }

  async toggleRecord(kind, btn) {
    if (this.recorder) {
      const r = this.recorder;
      this.recorder = null;
      btn.textContent = 'Record';
      btn.setAttribute('aria-pressed', 'false');
      try {
        const wav = await r.stop();
        await this.upload(kind, wav);
      } catch (e) {
        this.status(kind, `Recording failed: ${e.message}`);
      }
      return;
    }
    try {
      this.recorder = new Recorder();
      await this.recorder.start();
      btn.textContent = 'Stop and save';
      btn.setAttribute('aria-pressed', 'true');
      this.status(kind, 'Recording… press Stop and save when done.');
    } catch (e) {
      this.recorder = null;
      this.status(kind, `No microphone: ${e.message}`);
    }
  }

  async save(e) {
    e.preventDefault();
    const msg = $('#settings-msg');
    const pin = $('#set-pin').value;
    const pin2 = $('#set-pin2').value;
    const body = {
      email: $('#set-email').value.trim(),
      attach_audio: $('#set-attach').checked,
      timezone: $('#set-tz').value,
    };
    if (pin || pin2) {
      if (!/^[0-9]{4,10}$/.test(pin)) { msg.textContent = 'The PIN must be 4 to 10 digits.'; $('#set-pin').focus(); return; }
      if (pin !== pin2) { msg.textContent = 'The two PINs differ.'; $('#set-pin2').focus(); return; }
      body.pin = pin;
    }
    try {
      const mb = await this.api.req('PATCH', this.base(), body);
      this.me = mb;
      $('#set-pin').value = '';
      $('#set-pin2').value = '';
      msg.textContent = body.pin ? 'Saved. The new PIN works on the phone too.' : 'Saved.';
      this.onChange(mb);
    } catch (err) {
      msg.textContent = `Not saved: ${err.message}`;
      if (err.field) document.getElementById(`set-${{ pin: 'pin', email: 'email', timezone: 'tz', attach_audio: 'attach' }[err.field] || 'email'}`)?.focus();
    }
  }
}
