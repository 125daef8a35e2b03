package media

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// recorder is a FrameSink that keeps everything.
type recorder struct{ pcm []int16 }

func (r *recorder) WriteFrame(p []int16) { r.pcm = append(r.pcm, p...) }

// codesRecorder is a G711Sink that keeps everything, taking every other
// frame as codes and refusing the others (they come decoded).
type codesRecorder struct {
	recorder
	calls, codes int
}

func (r *codesRecorder) WriteG711(c Codec, b []byte) bool {
	r.calls++
	if r.calls%2 == 0 {
		return false
	}
	r.codes++
	pcm := make([]int16, len(b))
	c.Decode(pcm, b)
	r.pcm = append(r.pcm, pcm...)
	return true
}

// idCode maps a packet id (1..100) to a µ-law byte with a unique, non-zero
// decoded value, so the output shows which packet each sample came from.
func idCode(id int) byte { return byte(id) } // codes 1..100 decode to large negative values

// runs summarises PCM as "id×count" runs, "_" for silence.
func runs(pcm []int16) string {
	byValue := map[int16]int{}
	for id := 1; id <= 100; id++ {
		var d [1]int16
		PCMU.Decode(d[:], []byte{idCode(id)})
		byValue[d[0]] = id
	}
	var b strings.Builder
	for i := 0; i < len(pcm); {
		j := i
		for j < len(pcm) && pcm[j] == pcm[i] {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if pcm[i] == 0 {
			fmt.Fprintf(&b, "_x%d", j-i)
		} else {
			fmt.Fprintf(&b, "%dx%d", byValue[pcm[i]], j-i)
		}
		i = j
	}
	return b.String()
}

type rtpIn struct {
	ssrc uint32
	seq  uint16
	ts   uint32
	id   int // payload id
	n    int // payload bytes; 0 = 160
}

// stream makes packets id first..last with seq/ts counting from seq0/ts0.
func stream(ssrc uint32, seq0 uint16, ts0 uint32, n int, ids ...int) []rtpIn {
	var out []rtpIn
	for i, id := range ids {
		out = append(out, rtpIn{ssrc, seq0 + uint16(i), ts0 + uint32(i*n), id, n})
	}
	return out
}

func pick(ps []rtpIn, order ...int) []rtpIn {
	var out []rtpIn
	for _, i := range order {
		out = append(out, ps[i])
	}
	return out
}

func TestReceiver(t *testing.T) {
	s := stream(0xA, 100, 5000, 160, 1, 2, 3, 4, 5, 6, 7, 8)
	wrap := stream(0xA, 65533, 4294967000, 160, 1, 2, 3, 4, 5, 6)
	p10 := stream(0xA, 1, 0, 80, 1, 2, 3, 4)
	p30 := stream(0xA, 1, 0, 240, 1, 2, 3, 4)
	p60 := stream(0xA, 1, 0, 480, 1, 2, 3, 4)
	ssrcB := stream(0xB, 40000, 123456789, 160, 11, 12, 13)
	dtx := stream(0xA, 1, 0, 160, 1, 2, 3)
	dtx[2].ts += 800 // 100 ms of silence suppression before packet 3
	jump := stream(0xA, 1, 0, 160, 1, 2, 3, 4)
	jump[2].seq, jump[3].seq = 9000, 9001
	tsJump := stream(0xA, 1, 0, 160, 1, 2)
	tsJump[1].ts += 1 << 30 // a timestamp discontinuity, not a pause
	for _, tc := range []struct {
		name  string
		in    []rtpIn
		flush bool // Flush at the end
		want  string
		stats ReceiverStats
	}{
		{"in order", s[:3], false, "1x160 2x160 3x160", ReceiverStats{Received: 3}},
		{"loss", pick(s, 0, 1, 3, 4), true, "1x160 2x160 _x160 4x160 5x160", ReceiverStats{Received: 4, Lost: 1}},
		{"loss waits for the window", pick(s, 0, 2, 3), false, "1x160", ReceiverStats{Received: 3}},
		{"loss beyond the window", pick(s, 0, 2, 3, 4, 5), false, "1x160 _x160 3x160 4x160 5x160 6x160", ReceiverStats{Received: 5, Lost: 1}},
		{"reorder", pick(s, 0, 2, 1, 4, 3, 5), false, "1x160 2x160 3x160 4x160 5x160 6x160", ReceiverStats{Received: 6}},
		{"reorder by 3", pick(s, 0, 3, 2, 1, 4), false, "1x160 2x160 3x160 4x160 5x160", ReceiverStats{Received: 5}},
		{"duplicates", pick(s, 0, 1, 1, 2, 0, 3, 3, 2), false, "1x160 2x160 3x160 4x160", ReceiverStats{Received: 8, Duplicate: 4}},
		{"duplicate while buffered", pick(s, 0, 2, 2, 1), false, "1x160 2x160 3x160", ReceiverStats{Received: 4, Duplicate: 1}},
		{"late beyond the buffer", pick(s, 0, 2, 3, 4, 5, 1), false, "1x160 _x160 3x160 4x160 5x160 6x160", ReceiverStats{Received: 6, Lost: 1, Late: 1}},
		{"wrap at 65535", pick(wrap, 0, 1, 3, 2, 4, 5), false, "1x160 2x160 3x160 4x160 5x160 6x160", ReceiverStats{Received: 6}},
		{"loss across wrap", pick(wrap, 0, 1, 2, 4, 5), true, "1x160 2x160 3x160 _x160 5x160 6x160", ReceiverStats{Received: 5, Lost: 1}},
		{"ssrc change", append(s[:2:2], ssrcB...), false, "1x160 2x160 11x160 12x160 13x160", ReceiverStats{Received: 5, SSRCChanges: 1}},
		{"ssrc change flushes", append(pick(s, 0, 2), ssrcB[0]), false, "1x160 _x160 3x160 11x160", ReceiverStats{Received: 3, Lost: 1, SSRCChanges: 1}},
		{"ptime 10", pick(p10, 0, 2, 3), true, "1x80 _x80 3x80 4x80", ReceiverStats{Received: 3, Lost: 1}},
		{"ptime 30", pick(p30, 0, 2, 3), true, "1x240 _x240 3x240 4x240", ReceiverStats{Received: 3, Lost: 1}},
		{"ptime 60", pick(p60, 0, 1, 3), true, "1x480 2x480 _x480 4x480", ReceiverStats{Received: 3, Lost: 1}},
		{"silence suppression", dtx, false, "1x160 2x160 _x800 3x160", ReceiverStats{Received: 3}},
		{"sequence jump restarts", jump, false, "1x160 2x160 _x160 4x160", ReceiverStats{Received: 4, Dropped: 1}},
		{"timestamp discontinuity", tsJump, false, "1x160 2x160", ReceiverStats{Received: 2}},
		{"empty payload", []rtpIn{{0xA, 1, 0, 1, -1}}, false, "", ReceiverStats{Received: 1, Dropped: 1}},
	} {
		// The same with a sink that takes codes: the same audio.
		for _, codes := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/codes=%v", tc.name, codes), func(t *testing.T) {
				var out codesRecorder
				var sink FrameSink = &out.recorder
				if codes {
					sink = &out
				}
				r := NewReceiver(ReceiverConfig{Codec: PCMU}, sink)
				var payload [MaxPayload]byte
				for _, p := range tc.in {
					n := p.n
					if n == 0 {
						n = 160
					}
					if n < 0 {
						n = 0
					}
					for i := range n {
						payload[i] = idCode(p.id)
					}
					r.Push(p.ssrc, p.seq, p.ts, payload[:n])
				}
				if tc.flush {
					r.Flush()
				}
				if got := runs(out.pcm); got != tc.want {
					t.Errorf("output\n got %s\nwant %s", got, tc.want)
				}
				if got := r.Stats(); got != tc.stats {
					t.Errorf("stats %+v, want %+v", got, tc.stats)
				}
				if codes && out.calls > 0 && out.codes == 0 {
					t.Errorf("no frame went as codes")
				}
			})
		}
	}
}

func TestReceiverLongLoss(t *testing.T) {
	// 2000 packets lost (40 s would exceed MaxGap, so use 10 ms packets: 20 s).
	var out recorder
	r := NewReceiver(ReceiverConfig{Codec: PCMA, Depth: 2}, &out)
	p := make([]byte, 80)
	r.Push(1, 10, 0, p)
	r.Push(1, 2011, 2001*80, p)
	r.Push(1, 2012, 2002*80, p)
	if len(out.pcm) != 2003*80 {
		t.Fatalf("%d samples, want %d", len(out.pcm), 2003*80)
	}
	if st := r.Stats(); st.Lost != 2000 {
		t.Fatalf("lost %d", st.Lost)
	}
}

func TestReceiverNoAlloc(t *testing.T) {
	var out discard
	r := NewReceiver(ReceiverConfig{}, out)
	p := make([]byte, 160)
	var seq uint16
	var ts uint32
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		ts += 160
		if seq%7 == 0 { // some loss and reorder too
			seq++
			ts += 160
		}
		r.Push(1, seq, ts, p)
	}); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

type discard struct{}

func (discard) WriteFrame([]int16) {}

// TestReceiverSkip: telephone-event and CN packets take their sequence
// numbers in the audio's numbering; they are neither lost audio nor audio.
func TestReceiverSkip(t *testing.T) {
	audio := func(id int) []byte {
		p := make([]byte, 160)
		for i := range p {
			p[i] = idCode(id)
		}
		return p
	}
	var out recorder
	r := NewReceiver(ReceiverConfig{Codec: PCMU}, &out)
	r.Skip(0xA, 1) // before the first audio packet: nothing to count against
	r.Push(0xA, 2, 0, audio(1))
	r.Push(0xA, 3, 160, audio(2))
	r.Skip(0xA, 5) // a digit's packets, one reordered
	r.Skip(0xA, 4)
	r.Skip(0xA, 6)
	r.Push(0xA, 7, 800, audio(3))
	r.Skip(0xB, 8) // another source's numbers are not this stream's
	r.Push(0xA, 9, 1120, audio(4))
	r.Flush()
	if got, want := runs(out.pcm), "1x160 2x160 _x480 3x160 _x160 4x160"; got != want {
		t.Errorf("output\n got %s\nwant %s", got, want)
	}
	if got, want := r.Stats(), (ReceiverStats{Received: 4, Lost: 1}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// FuzzReceiverSinks pushes arbitrary packets (each 5 input bytes: SSRC
// choice, sequence and timestamp steps, size, Skip or Push) to two
// receivers, one with a sink of samples and one with a sink that takes
// every other frame as codes: the audio and the counters are the same.
func FuzzReceiverSinks(f *testing.F) {
	f.Add([]byte{0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 3, 1, 0, 0, 0, 255, 1, 1, 0})
	f.Add([]byte{1, 200, 9, 2, 1, 0, 1, 1, 3, 0, 0, 2, 2, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var plain recorder
		var codes codesRecorder
		rs := [2]*Receiver{
			NewReceiver(ReceiverConfig{Codec: PCMA}, &plain),
			NewReceiver(ReceiverConfig{Codec: PCMA}, &codes),
		}
		var seq uint16
		var ts uint32
		payload := make([]byte, 480)
		for i := range payload {
			payload[i] = byte(i*13 + 1)
		}
		for ; len(in) >= 5; in = in[5:] {
			ssrc := uint32(in[0] % 2)
			seq += uint16(int8(in[1]))
			ts += uint32(in[2]) * 40
			n := int(in[3]) % 4 * 160
			for _, r := range rs {
				if in[4]%5 == 0 {
					r.Skip(ssrc, seq)
				} else {
					r.Push(ssrc, seq, ts, payload[:n])
				}
			}
		}
		for _, r := range rs {
			r.Flush()
		}
		if !slices.Equal(plain.pcm, codes.pcm) || rs[0].Stats() != rs[1].Stats() {
			t.Fatalf("samples %d and %d (equal %v), stats %+v and %+v",
				len(plain.pcm), len(codes.pcm), slices.Equal(plain.pcm, codes.pcm), rs[0].Stats(), rs[1].Stats())
		}
	})
}
