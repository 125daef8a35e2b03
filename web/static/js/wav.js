// Recording a greeting in the browser: MediaRecorder captures the
// microphone, Web Audio decodes it, and encodeWAV writes 16-bit PCM mono at
// 16 kHz (the server converts any 8–48 kHz WAV to its stored format).

const TARGET_RATE = 16000;

// encodeWAV turns Float32 samples at `rate` into a PCM16 mono WAV Blob.
export function encodeWAV(samples, rate) {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, 'RIFF');
  v.setUint32(4, 36 + samples.length * 2, true);
  str(8, 'WAVEfmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  str(36, 'data');
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buf], { type: 'audio/wav' });
}

// toWAV decodes any recorded Blob (webm/ogg/opus) and re-encodes it.
export async function toWAV(blob) {
  const ctx = new OfflineAudioContext(1, 1, TARGET_RATE);
  const decoded = await ctx.decodeAudioData(await blob.arrayBuffer());
  // Resample and mix down with an offline render.
  const frames = Math.ceil(decoded.duration * TARGET_RATE);
  const off = new OfflineAudioContext(1, Math.max(frames, 1), TARGET_RATE);
  const src = off.createBufferSource();
  src.buffer = decoded;
  src.connect(off.destination);
  src.start();
  const out = await off.startRendering();
  return encodeWAV(out.getChannelData(0), TARGET_RATE);
}

// Recorder wraps MediaRecorder: start() asks for the microphone, stop()
// resolves with the WAV.
export class Recorder {
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    this.chunks = [];
    this.rec = new MediaRecorder(this.stream);
    this.rec.addEventListener('dataavailable', (e) => { if (e.data.size) this.chunks.push(e.data); });
    this.done = new Promise((resolve) => this.rec.addEventListener('stop', resolve));
    this.rec.start();
  }

  async stop() {
    this.rec.stop();
    await this.done;
    for (const t of this.stream.getTracks()) t.stop();
    return toWAV(new Blob(this.chunks, { type: this.rec.mimeType }));
  }
}
