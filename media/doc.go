// Package media carries call audio: G.711 codecs, WAV files, tones, silence
// and DTMF detection, and RTP sessions (receive, reorder, play out).
//
// It knows RTP and audio, not SIP and not mailboxes. Audio inside the
// server is signed 16-bit linear PCM, 8000 Hz, mono; a frame is 20 ms
// (160 samples). The per-packet paths allocate nothing.
//
// On the wire a Session behaves as phones and SBCs expect: it never goes
// quiet (comfort noise, RFC 3389, or G.711 silence between playbacks),
// reports with RTCP (RFC 3550; rtcp-mux, RFC 5761) and measures the call's
// quality from the caller's reports, tells the call when the caller
// vanished (Inactive), and accepts media only from the caller (strict
// RTP: the SDP address first, another source only after a run of
// consecutive packets while the caller is quiet; one SSRC recorded at a
// time).
package media

// SampleRate is the rate of all PCM inside the server (RFC 3551 §4.5.14:
// PCMU/PCMA run at 8000 Hz).
const SampleRate = 8000

// FrameSamples is the number of samples in a 20 ms frame.
const FrameSamples = 160
