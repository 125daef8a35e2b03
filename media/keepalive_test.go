package media

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestKeepAlive: with no playback the session sends comfort noise every
// 160 ms when CN was negotiated, else silence frames at the call's ptime,
// with continuous sequence numbers and timestamps; nothing on hold.
func TestKeepAlive(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	cases := []struct {
		name   string
		cfg    SessionConfig
		pt     uint8
		tsStep uint32 // RTP timestamp between two keep-alive packets
	}{
		{"pcmu silence 20ms", SessionConfig{Codec: PCMU}, 0, 160},
		{"pcma silence 30ms", SessionConfig{Codec: PCMA, Ptime: 30 * time.Millisecond}, 8, 240},
		{"cn 13", SessionConfig{Codec: PCMU, DTMFPayload: 101, CNPayload: 13}, 13, 8 * 160},
		{"cn dynamic, 30ms", SessionConfig{Codec: PCMA, CNPayload: 98, Ptime: 30 * time.Millisecond}, 98, 5 * 240},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, p := newCall(t, e, c.cfg)
			spp := uint32(samplesFor(s.txPtime()))
			var pkts []*rtp.Packet
			var first time.Time
			for {
				pkt, at := p.read(time.Second)
				if pkt == nil {
					t.Fatalf("keep-alive stopped after %d packets", len(pkts))
				}
				if first.IsZero() {
					first = at
				}
				if at.Sub(first) > 1500*time.Millisecond {
					break
				}
				pkts = append(pkts, pkt)
			}
			for i, pkt := range pkts {
				if pkt.PayloadType != c.pt || pkt.Marker {
					t.Fatalf("packet %d: pt %d marker %v", i, pkt.PayloadType, pkt.Marker)
				}
				if c.cfg.CNPayload != 0 {
					if !bytes.Equal(pkt.Payload, []byte{cnLevel}) {
						t.Fatalf("CN payload %v", pkt.Payload)
					}
				} else if want := bytes.Repeat([]byte{c.cfg.Codec.SilenceByte()}, int(c.tsStep)); !bytes.Equal(pkt.Payload, want) {
					t.Fatalf("silence payload %x", pkt.Payload)
				}
				if i > 0 && (pkt.SequenceNumber != pkts[i-1].SequenceNumber+1 || !tsStepOK(pkt.Timestamp-pkts[i-1].Timestamp, c.tsStep, spp)) {
					t.Fatalf("packet %d: seq %d ts %d after %d %d", i, pkt.SequenceNumber, pkt.Timestamp, pkts[i-1].SequenceNumber, pkts[i-1].Timestamp)
				}
			}
			// 1.5 s of packets, allowing for a loaded machine's clock.
			want := int(1500*time.Millisecond/samplesToDuration(c.tsStep)) + 1
			if len(pkts) < want/2 || len(pkts) > want+3 {
				t.Fatalf("%d keep-alive packets in 1.5 s, want about %d", len(pkts), want)
			}
			if st := s.Stats(); st.KeepAliveSent < uint64(len(pkts)) || st.PacketsSent > st.KeepAliveSent+1 {
				t.Fatalf("stats %+v", st)
			}

			// A playback interrupts it; afterwards keep-alive resumes at once.
			s.Play(Tone(440, 100*time.Millisecond, 0.3))
			var last *rtp.Packet
			for {
				pkt, _ := p.read(time.Second)
				if pkt == nil {
					t.Fatal("nothing after the playback")
				}
				if pkt.PayloadType == uint8(c.cfg.Codec) && !bytes.Equal(pkt.Payload, bytes.Repeat([]byte{c.cfg.Codec.SilenceByte()}, len(pkt.Payload))) {
					last = pkt
					continue
				}
				if last != nil {
					if pkt.SequenceNumber != last.SequenceNumber+1 || !tsStepOK(pkt.Timestamp-last.Timestamp, spp, spp) {
						t.Fatalf("keep-alive after playback: seq %d ts %d after %d %d", pkt.SequenceNumber, pkt.Timestamp, last.SequenceNumber, last.Timestamp)
					}
					break
				}
			}

			// Hold: nothing at all.
			if err := s.Update(SessionConfig{Codec: c.cfg.Codec, CNPayload: c.cfg.CNPayload}); err != nil {
				t.Fatal(err)
			}
			for {
				if pkt, _ := p.read(250 * time.Millisecond); pkt == nil {
					break
				}
			}
		})
	}
}

// tsStepOK: a timestamp step is the expected one, or longer by whole
// frames when the shared clock stalled on a loaded machine (the player
// then skips frames rather than bursting them).
func tsStepOK(d, want, spp uint32) bool {
	return d%spp == 0 && d >= want && d <= want+25*spp
}

// TestSessionCloseLeavesNoGoroutines: sessions that exchanged RTP and
// RTCP leave no goroutine behind once closed, while the engine lives on.
func TestSessionCloseLeavesNoGoroutines(t *testing.T) {
	e := rtcpEngine(t)
	before := runtime.NumGoroutine()
	var ss []*Session
	for range 10 {
		s, p, rp := newRTCPCall(t, e, SessionConfig{Codec: PCMU, CNPayload: 13, RTPTimeout: time.Second})
		p.send(0, 1, 160, make([]byte, 160))
		rp.send(s, rrFrom(0xCAFE))
		s.Play(Tone(300, 100*time.Millisecond, 0.2))
		ss = append(ss, s)
	}
	waitFor(t, "RTCP", func() bool { return ss[9].Stats().RTCPSent > 0 && ss[9].Stats().RTCPReceived > 0 })
	for _, s := range ss {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after close\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
