// Package media carries call audio: G.711 codecs, WAV files, tones, silence
// and DTMF detection, and RTP sessions (receive, reorder, play out).
//
// It knows RTP and audio, not SIP and not mailboxes. Audio inside the
// server is signed 16-bit linear PCM, 8000 Hz, mono; a frame is 20 ms
// (160 samples). The per-packet paths allocate nothing.
package media

// SampleRate is the rate of all PCM inside the server (RFC 3551 §4.5.14:
// PCMU/PCMA run at 8000 Hz).
const SampleRate = 8000

// FrameSamples is the number of samples in a 20 ms frame.
const FrameSamples = 160
