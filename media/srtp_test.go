package media

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

var srtpProfiles = []srtp.ProtectionProfile{
	srtp.ProtectionProfileAes128CmHmacSha1_80,
	srtp.ProtectionProfileAes128CmHmacSha1_32,
	srtp.ProtectionProfileAeadAes128Gcm,
}

// testSRTP is a session's keys and the peer's contexts that match them:
// the peer encrypts with the session's RemoteKey and decrypts with its
// LocalKey.
func testSRTP(t testing.TB, p srtp.ProtectionProfile) (*SRTPConfig, *srtp.Context, *srtp.Context) {
	t.Helper()
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	cfg := &SRTPConfig{Profile: p, LocalKey: make([]byte, kl+sl), RemoteKey: make([]byte, kl+sl)}
	_, _ = rand.Read(cfg.LocalKey)
	_, _ = rand.Read(cfg.RemoteKey)
	enc, err := srtp.CreateContext(cfg.RemoteKey[:kl], cfg.RemoteKey[kl:], p)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(cfg.LocalKey[:kl], cfg.LocalKey[kl:], p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, enc, dec
}

// TestSRTPRoundTrip: a peer encrypting with pion/srtp is recorded sample
// for sample; what the session plays reaches the peer encrypted (the
// payload on the wire is not the plain PCMU) and decrypts to the prompt;
// plain RTP and a replayed packet are dropped, SRTCP goes both ways.
func TestSRTPRoundTrip(t *testing.T) {
	checkGoroutines(t)
	e := rtcpEngine(t)
	for _, prof := range srtpProfiles {
		t.Run(prof.String(), func(t *testing.T) {
			keys, enc, dec := testSRTP(t, prof)
			s, p := newCall(t, e, SessionConfig{Codec: PCMU, DTMFPayload: 101, RTCPMux: true, SRTP: keys})
			var sink syncSink
			s.Record(&sink)
			tone := Tone(600, 200*time.Millisecond, 0.4)
			plain := make([]byte, len(tone))
			PCMU.Encode(plain, tone)
			want := make([]int16, len(tone))
			PCMU.Decode(want, plain)
			var first []byte
			for i := 0; i < 10; i++ {
				h := p.hdr
				h.PayloadType, h.SequenceNumber, h.Timestamp = 0, 65530+uint16(i), 1000+uint32(i*160)
				pkt, err := (&rtp.Packet{Header: h, Payload: plain[i*160 : (i+1)*160]}).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				out, err := enc.EncryptRTP(nil, pkt, nil)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = out
				}
				if _, err := p.conn.WriteToUDP(out, p.to); err != nil {
					t.Fatal(err)
				}
			}
			// A replay of the first packet, and a plain one: both dropped.
			_, _ = p.conn.WriteToUDP(first, p.to)
			p.send(0, 4, 1000+10*160, plain[:160]) // 65530+10 wraps to 4
			waitFor(t, "packets", func() bool { st := s.Stats(); return st.PacketsReceived+st.PacketsDropped >= 12 })
			s.StopRecord()
			sink.mu.Lock()
			got := sink.pcm
			sink.mu.Unlock()
			if len(got) != len(want) {
				t.Fatalf("recorded %d samples, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("sample %d = %d, want %d", i, got[i], want[i])
				}
			}
			if st := s.Stats(); st.SRTPFailed != 2 || st.PacketsReceived != 10 {
				t.Fatalf("stats %+v: want 10 received and 2 failing SRTP", st)
			}

			// Our side: the prompt goes out encrypted.
			prompt := Tone(1000, 100*time.Millisecond, 0.5)
			s.Play(prompt)
			wantOut := make([]byte, len(prompt))
			PCMU.Encode(wantOut, prompt)
			buf := make([]byte, 2048)
			var heard []byte
			rtcpSeen := false
			deadline := time.Now().Add(3 * time.Second)
			for (len(heard) < len(wantOut) || !rtcpSeen) && time.Now().Before(deadline) {
				_ = p.conn.SetReadDeadline(deadline)
				n, err := p.conn.Read(buf)
				if err != nil {
					break
				}
				if isRTCP(buf[:n]) {
					pl, err := dec.DecryptRTCP(nil, buf[:n], nil)
					if err != nil {
						t.Fatalf("our SRTCP does not decrypt: %v", err)
					}
					if _, err := rtcp.Unmarshal(pl); err != nil {
						t.Fatalf("our SRTCP decrypts to garbage: %v", err)
					}
					rtcpSeen = true
					continue
				}
				pl, err := dec.DecryptRTP(nil, buf[:n], nil)
				if err != nil {
					t.Fatalf("our SRTP does not decrypt: %v", err)
				}
				var pkt rtp.Packet
				if err := pkt.Unmarshal(pl); err != nil {
					t.Fatal(err)
				}
				if pkt.PayloadType != 0 || len(heard) >= len(wantOut) {
					continue
				}
				if bytes.Equal(buf[rtpHeaderLen:rtpHeaderLen+len(pkt.Payload)], pkt.Payload) {
					t.Fatalf("packet %d crossed the wire in clear", pkt.SequenceNumber)
				}
				if len(heard) == 0 && !bytes.Equal(pkt.Payload, wantOut[:len(pkt.Payload)]) {
					continue // keep-alive silence before the prompt started
				}
				heard = append(heard, pkt.Payload...)
			}
			if !bytes.Equal(heard, wantOut) {
				t.Fatalf("decrypted %d bytes of the prompt, want %d equal", len(heard), len(wantOut))
			}
			if !rtcpSeen {
				t.Fatal("no SRTCP report")
			}
			// Their SRTCP is accepted, plain RTCP is not.
			rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: p.hdr.SSRC}})
			out, err := enc.EncryptRTCP(nil, rr, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := s.Stats()
			_, _ = p.conn.WriteToUDP(out, p.to)
			_, _ = p.conn.WriteToUDP(rr, p.to)
			waitFor(t, "rtcp", func() bool {
				st := s.Stats()
				return st.RTCPReceived > before.RTCPReceived && st.RTCPDropped > before.RTCPDropped
			})
		})
	}
}

// TestSRTPBadKeys: keys of the wrong length are refused at set-up, and a
// re-INVITE cannot turn SRTP off.
func TestSRTPBadKeys(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	bad := &SRTPConfig{Profile: srtp.ProtectionProfileAes128CmHmacSha1_80, LocalKey: make([]byte, 16), RemoteKey: make([]byte, 30)}
	if _, err := e.NewSession(SessionConfig{Codec: PCMU, SRTP: bad}); err == nil {
		t.Fatal("a 16-byte key||salt was accepted")
	}
	keys, _, _ := testSRTP(t, srtp.ProtectionProfileAes128CmHmacSha1_80)
	s, _ := newCall(t, e, SessionConfig{Codec: PCMU, SRTP: keys})
	if err := s.setSRTP(nil); err == nil {
		t.Fatal("SRTP turned off during a call")
	}
	// Update without SRTP keeps the keys.
	if err := s.Update(SessionConfig{Codec: PCMU}); err != nil || s.srtp.Load() == nil {
		t.Fatalf("Update without keys: %v, srtp %v", err, s.srtp.Load())
	}
}

// TestSRTPPerPacketNoAlloc: encrypting what we send and decrypting what
// we receive allocate nothing.
func TestSRTPPerPacketNoAlloc(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	for _, prof := range srtpProfiles {
		keys, enc, _ := testSRTP(t, prof)
		s, p := newCall(t, e, SessionConfig{Codec: PCMU, DTMFPayload: 101, SRTP: keys})
		s.Record(discard{})
		s.Play(Silence(time.Hour))
		idx := uint64(1) << 40
		s.tick(idx)
		s.txMu.Lock()
		s.rtcpNext = 1<<63 - 1
		s.txMu.Unlock()
		if n := testing.AllocsPerRun(200, func() { idx += 2; s.tick(idx) }); n != 0 {
			t.Errorf("%s send: allocs = %v", prof, n)
		}
		pkts := srtpStream(t, enc, 400)
		from := p.addr().AddrPort()
		now := time.Now()
		i := 0
		if n := testing.AllocsPerRun(200, func() { s.handlePacket(pkts[i], from, now); i++ }); n != 0 {
			t.Errorf("%s receive: allocs = %v", prof, n)
		}
		s.Close()
	}
}

// srtpStream is n encrypted 20 ms PCMU packets in sequence.
func srtpStream(t testing.TB, enc *srtp.Context, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0xCAFE, SequenceNumber: uint16(i), Timestamp: uint32(i * 160)},
			Payload: make([]byte, 160)}).Marshal()
		b, err := enc.EncryptRTP(nil, pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// BenchmarkReceivePacketSRTP is BenchmarkReceivePacket with SRTP
// decryption (AES_CM_128_HMAC_SHA1_80): the cost of SRTP per packet is
// the difference.
func BenchmarkReceivePacketSRTP(b *testing.B) {
	for _, prof := range srtpProfiles {
		b.Run(prof.String(), func(b *testing.B) {
			e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 33000, PortMax: 33999})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			keys, enc, _ := testSRTP(b, prof)
			s, err := e.NewSession(SessionConfig{Codec: PCMU, DTMFPayload: 101, SRTP: keys})
			if err != nil {
				b.Fatal(err)
			}
			s.Record(discard{})
			// Sequence numbers wrap after 65536 packets and the replay window
			// would refuse the second lap: a fresh SSRC per lap.
			const lap = 1 << 16
			pkts := srtpStream(b, enc, lap)
			from := netip.MustParseAddrPort("127.0.0.1:40000")
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i > 0 && i%lap == 0 {
					b.StopTimer()
					keys2, enc2, _ := testSRTP(b, prof)
					keys2.LocalKey = keys.LocalKey
					_ = s.setSRTP(keys2)
					pkts = srtpStream(b, enc2, lap)
					b.StartTimer()
				}
				s.handlePacket(pkts[i%lap], from, now)
			}
		})
	}
}

// BenchmarkSendPacketSRTP is the send path of one frame with SRTP
// encryption, as BenchmarkSendPacket.
func BenchmarkSendPacketSRTP(b *testing.B) {
	for _, prof := range srtpProfiles {
		b.Run(prof.String(), func(b *testing.B) {
			e, err := NewEngine(EngineConfig{IP: net.IPv4(127, 0, 0, 1), PortMin: 33000, PortMax: 33999})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			go func() {
				buf := make([]byte, 2048)
				for {
					if _, err := rx.Read(buf); err != nil {
						return
					}
				}
			}()
			keys, _, _ := testSRTP(b, prof)
			s, err := e.NewSession(SessionConfig{Codec: PCMU, Remote: rx.LocalAddr().(*net.UDPAddr), SRTP: keys})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			frame := Tone(440, 20*time.Millisecond, 0.3)
			b.ReportAllocs()
			s.txMu.Lock()
			defer s.txMu.Unlock()
			for b.Loop() {
				s.send(s.pk.build(PCMU, frame, FrameSamples, false))
			}
		})
	}
}

// BenchmarkEncryptRTP is the SRTP part alone of sending one 20 ms PCMU
// packet (no socket): what SRTP adds per packet sent.
func BenchmarkEncryptRTP(b *testing.B) {
	for _, prof := range srtpProfiles {
		b.Run(prof.String(), func(b *testing.B) {
			keys, _, _ := testSRTP(b, prof)
			st, err := newSRTPState(keys)
			if err != nil {
				b.Fatal(err)
			}
			s := &Session{pk: newPacketizer()}
			s.srtp.Store(st)
			frame := Tone(440, 20*time.Millisecond, 0.3)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := s.encryptRTP(s.pk.build(PCMU, frame, FrameSamples, false)); !ok {
					b.Fatal("not encrypted")
				}
				s.pk.hdr.SequenceNumber++
			}
		})
	}
}

// TestSRTPRekeyKeepsUnchangedSide: a re-INVITE with the caller's new key
// keeps our send context (its rollover counter: no keystream reused) and
// replaces the receive one; the same keys again change nothing.
func TestSRTPRekeyKeepsUnchangedSide(t *testing.T) {
	checkGoroutines(t)
	e := newTestEngine(t)
	keys, _, _ := testSRTP(t, srtp.ProtectionProfileAes128CmHmacSha1_80)
	s, _ := newCall(t, e, SessionConfig{Codec: PCMU, SRTP: keys})
	old := s.srtp.Load()
	same := *keys
	if err := s.setSRTP(&same); err != nil || s.srtp.Load() != old {
		t.Fatalf("same keys replaced the state: %v", err)
	}
	theirs, _, _ := testSRTP(t, srtp.ProtectionProfileAes128CmHmacSha1_80)
	rekey := &SRTPConfig{Profile: keys.Profile, LocalKey: keys.LocalKey, RemoteKey: theirs.RemoteKey}
	if err := s.setSRTP(rekey); err != nil {
		t.Fatal(err)
	}
	cur := s.srtp.Load()
	if cur.txRTP != old.txRTP || cur.txRTCP != old.txRTCP || cur.rtcpMu != old.rtcpMu {
		t.Error("our unchanged key got fresh send contexts")
	}
	if cur.rxRTP == old.rxRTP || cur.rxRTCP == old.rxRTCP {
		t.Error("the caller's new key kept the old receive contexts")
	}
}
