// Command mkpcap generates the deterministic test audio and the RTP captures
// that the sipp scenarios under testcalls/scenarios play with play_pcap_audio.
//
//	go run ./testcalls/mkpcap -out testcalls/pcap
//
// Outputs (all deterministic for a given -seed):
//
//	audio.raw                 the source: int16 little-endian, 8000 Hz mono, 12 s
//	audio_pcmu.pcap           the source as PCMU (PT 0), 600 packets of 20 ms
//	audio_pcma.pcap           the source as PCMA (PT 8)
//	audio_pcmu_loss.pcap      ~5% of the packets dropped (never the first or last 10)
//	audio_pcmu_reorder.pcap   ~5% of adjacent pairs swapped in send order (RTP headers untouched)
//	audio_pcmu_dup.pcap       ~5% of the packets sent twice
//	audio_pcmu_wrap.pcap      sequence numbers start at 65500 (and timestamps near 2^32) so both wrap
//	audio_pcmu_ssrc.pcap      the SSRC changes halfway, with new random sequence and timestamp bases
//	audio_pcmu_long.pcap      30 s of PCMU (same generator; its first 12 s equal audio.raw), for the crash test
//	manifest.json             what each capture holds (see the Manifest type)
//
// The captures are classic libpcap files (magic a1b2c3d4, link type 1 Ethernet,
// IPv4/UDP), packets 20 ms apart by their pcap timestamps, which is what sipp's
// play_pcap_audio uses for pacing. sipp rewrites only the UDP ports and the IP
// addresses; the RTP header and payload are sent as they are here.
package main

//go:generate go run . -out ../pcap

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/zaf/g711"
)

const (
	sampleRate   = 8000
	frameSamples = 160 // 20 ms
	sourceSecs   = 12
	longSecs     = 30
)

// Manifest is written to manifest.json; the tests in testcalls read it.
type Manifest struct {
	Seed         uint64           `json:"seed"`
	SampleRate   int              `json:"sample_rate"`
	FrameSamples int              `json:"frame_samples"`
	Raw          string           `json:"raw"`
	RawSamples   int              `json:"raw_samples"`
	MinFrameMean int              `json:"min_frame_mean_abs"` // smallest mean |x| over any 20 ms frame
	Pcaps        map[string]*Pcap `json:"pcaps"`
}

// Pcap describes one capture. Frame indexes are 0-based indexes of 20 ms
// frames of the source (frame i holds samples [160*i, 160*i+160)).
type Pcap struct {
	File           string `json:"file"`
	Codec          string `json:"codec"`
	PayloadType    uint8  `json:"payload_type"`
	Frames         int    `json:"frames"`      // source frames covered (first to last)
	Packets        int    `json:"packets"`     // packets in the file
	DurationMS     int    `json:"duration_ms"` // Frames * 20
	Samples        int    `json:"samples"`     // Frames * 160
	SSRC           uint32 `json:"ssrc"`
	FirstSeq       uint16 `json:"first_seq"`
	FirstTimestamp uint32 `json:"first_timestamp"`
	// Damage.
	Dropped    []int `json:"dropped"`    // source frames never sent
	Swapped    []int `json:"swapped"`    // frame i was sent after frame i+1
	Duplicated []int `json:"duplicated"` // frames sent twice (the copy right after the original)
	// SSRC change: frames >= SSRCChangeAt use SSRC2 and new bases.
	SSRCChangeAt int    `json:"ssrc_change_at,omitempty"`
	SSRC2        uint32 `json:"ssrc2,omitempty"`
	Seq2         uint16 `json:"seq2,omitempty"`
	Timestamp2   uint32 `json:"timestamp2,omitempty"`
}

// splitmix64: a tiny deterministic PRNG, independent of the Go version.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
func (r *rng) float() float64 { return float64(r.next()>>11) / float64(1<<53) }
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// genAudio makes n samples: four tones whose frequencies drift slowly (kept
// away from the DTMF frequencies 697-941 Hz and 1209-1633 Hz and from the
// 1000 Hz beep), each with its own pseudo-random amplitude envelope, plus a
// little noise so that no stretch of the signal repeats. Loud everywhere
// (mean |x| per 20 ms frame well above 1500), never silent at the end.
func genAudio(n int, seed uint64) []int16 {
	r := &rng{s: seed}
	type tone struct {
		base, depth, rate, phase, vphase float64
		knots                            []float64
	}
	const knotEvery = 2000 // 250 ms between envelope knots
	nk := n/knotEvery + 2
	tones := []*tone{
		{base: 300, depth: 80},
		{base: 520, depth: 60},
		{base: 1850, depth: 120},
		{base: 2600, depth: 200},
	}
	for _, t := range tones {
		t.rate = 0.15 + 0.35*r.float() // vibrato rate, Hz
		t.vphase = 2 * math.Pi * r.float()
		t.phase = 2 * math.Pi * r.float()
		t.knots = make([]float64, nk)
		for k := range t.knots {
			t.knots[k] = 0.7 + 0.3*r.float()
		}
	}
	out := make([]int16, n)
	const amp = 3000.0
	for i := 0; i < n; i++ {
		ts := float64(i) / sampleRate
		k := i / knotEvery
		frac := float64(i%knotEvery) / knotEvery
		var v float64
		for _, t := range tones {
			f := t.base + float64(t.depth*math.Sin(float64(2*math.Pi*t.rate*ts)+t.vphase))
			t.phase += float64(2*math.Pi*f) / sampleRate
			if t.phase > 2*math.Pi {
				t.phase -= 2 * math.Pi
			}
			env := float64(t.knots[k]*(1-frac)) + float64(t.knots[k+1]*frac)
			v += float64(amp*env) * math.Sin(t.phase)
		}
		v += float64(r.float()-0.5) * 600
		if v > 32767 {
			v = 32767
		} else if v < -32768 {
			v = -32768
		}
		out[i] = int16(math.Round(v))
	}
	return out
}

func minFrameMeanAbs(pcm []int16) int {
	min := math.MaxInt
	for f := 0; f+frameSamples <= len(pcm); f += frameSamples {
		s := 0
		for _, x := range pcm[f : f+frameSamples] {
			if x < 0 {
				s -= int(x)
			} else {
				s += int(x)
			}
		}
		if m := s / frameSamples; m < min {
			min = m
		}
	}
	return min
}

type rtpPkt struct {
	frame  int // source frame index
	marker bool
	pt     uint8
	seq    uint16
	ts     uint32
	ssrc   uint32
	pay    []byte
	slot   float64 // send time in 20 ms slots
}

func (p rtpPkt) bytes() []byte {
	b := make([]byte, 12+len(p.pay))
	b[0] = 0x80
	b[1] = p.pt & 0x7f
	if p.marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], p.seq)
	binary.BigEndian.PutUint32(b[4:], p.ts)
	binary.BigEndian.PutUint32(b[8:], p.ssrc)
	copy(b[12:], p.pay)
	return b
}

func encode(pcm []int16, codec string) []byte {
	out := make([]byte, len(pcm))
	for i, s := range pcm {
		if codec == "PCMA" {
			out[i] = g711.EncodeAlawFrame(s)
		} else {
			out[i] = g711.EncodeUlawFrame(s)
		}
	}
	return out
}

// stream packetizes the whole signal as a clean RTP stream.
func stream(pcm []int16, codec string, pt uint8, ssrc uint32, seq uint16, ts uint32) []rtpPkt {
	enc := encode(pcm, codec)
	var out []rtpPkt
	for f := 0; (f+1)*frameSamples <= len(enc); f++ {
		out = append(out, rtpPkt{
			frame: f, marker: f == 0, pt: pt,
			seq: seq + uint16(f), ts: ts + uint32(f*frameSamples), ssrc: ssrc,
			pay:  enc[f*frameSamples : (f+1)*frameSamples],
			slot: float64(f),
		})
	}
	return out
}

// pickDistinct picks k distinct ints in [lo, hi) with no two closer than gap.
func pickDistinct(r *rng, k, lo, hi, gap int) []int {
	var out []int
	taken := map[int]bool{}
	for len(out) < k {
		c := lo + r.intn(hi-lo)
		ok := true
		for d := -gap + 1; d < gap; d++ {
			if taken[c+d] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		taken[c] = true
		out = append(out, c)
	}
	sort.Ints(out)
	return out
}

func writePcap(path string, pkts []rtpPkt) error {
	var b []byte
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535)
	le.PutUint32(hdr[20:], 1) // LINKTYPE_ETHERNET
	b = append(b, hdr...)
	const baseSec = 1700000000
	src := [4]byte{10, 0, 0, 1}
	dst := [4]byte{10, 0, 0, 2}
	const sport, dport = 40000, 30000
	for i, p := range pkts {
		rtp := p.bytes()
		udpLen := 8 + len(rtp)
		ipLen := 20 + udpLen
		frame := make([]byte, 14+ipLen)
		copy(frame[0:6], []byte{0x02, 0, 0, 0, 0, 0x02})
		copy(frame[6:12], []byte{0x02, 0, 0, 0, 0, 0x01})
		binary.BigEndian.PutUint16(frame[12:], 0x0800)
		ip := frame[14 : 14+20]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipLen))
		binary.BigEndian.PutUint16(ip[4:], uint16(i+1))
		binary.BigEndian.PutUint16(ip[6:], 0x4000)
		ip[8] = 64
		ip[9] = 17
		copy(ip[12:16], src[:])
		copy(ip[16:20], dst[:])
		binary.BigEndian.PutUint16(ip[10:], csum(ip, 0))
		udp := frame[34:]
		binary.BigEndian.PutUint16(udp[0:], sport)
		binary.BigEndian.PutUint16(udp[2:], dport)
		binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
		copy(udp[8:], rtp)
		pseudo := uint32(0)
		pseudo += uint32(binary.BigEndian.Uint16(src[0:])) + uint32(binary.BigEndian.Uint16(src[2:]))
		pseudo += uint32(binary.BigEndian.Uint16(dst[0:])) + uint32(binary.BigEndian.Uint16(dst[2:]))
		pseudo += 17 + uint32(udpLen)
		c := csum(udp, pseudo)
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(udp[6:], c)

		usec := int64(math.Round(p.slot * 20000))
		ph := make([]byte, 16)
		le.PutUint32(ph[0:], uint32(baseSec+usec/1000000))
		le.PutUint32(ph[4:], uint32(usec%1000000))
		le.PutUint32(ph[8:], uint32(len(frame)))
		le.PutUint32(ph[12:], uint32(len(frame)))
		b = append(b, ph...)
		b = append(b, frame...)
	}
	return os.WriteFile(path, b, 0o644)
}

func csum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func main() {
	out := flag.String("out", "testcalls/pcap", "output directory")
	seed := flag.Uint64("seed", 20240611, "PRNG seed for audio and RTP bases")
	flag.Parse()
	if err := run(*out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "mkpcap:", err)
		os.Exit(1)
	}
}

func run(dir string, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	long := genAudio(longSecs*sampleRate, seed)
	src := long[:sourceSecs*sampleRate]
	if m := minFrameMeanAbs(long); m <= 1500 {
		return fmt.Errorf("signal too quiet: min frame mean |x| = %d", m)
	}
	raw := make([]byte, 2*len(src))
	for i, s := range src {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(s))
	}
	if err := os.WriteFile(filepath.Join(dir, "audio.raw"), raw, 0o644); err != nil {
		return err
	}
	man := &Manifest{
		Seed: seed, SampleRate: sampleRate, FrameSamples: frameSamples,
		Raw: "audio.raw", RawSamples: len(src), MinFrameMean: minFrameMeanAbs(src),
		Pcaps: map[string]*Pcap{},
	}
	r := &rng{s: seed ^ 0x5eed}
	base := func() (uint32, uint16, uint32) {
		return uint32(r.next()), uint16(r.next()), uint32(r.next())
	}
	emit := func(name, codec string, pt uint8, pkts []rtpPkt, m *Pcap) error {
		m.File, m.Codec, m.PayloadType, m.Packets = name, codec, pt, len(pkts)
		lastFrame := 0
		for _, p := range pkts {
			if p.frame > lastFrame {
				lastFrame = p.frame
			}
		}
		m.Frames = lastFrame + 1
		m.DurationMS = m.Frames * 20
		m.Samples = m.Frames * frameSamples
		m.SSRC, m.FirstSeq, m.FirstTimestamp = pkts[0].ssrc, pkts[0].seq, pkts[0].ts
		if m.Dropped == nil {
			m.Dropped = []int{}
		}
		if m.Swapped == nil {
			m.Swapped = []int{}
		}
		if m.Duplicated == nil {
			m.Duplicated = []int{}
		}
		man.Pcaps[name] = m
		return writePcap(filepath.Join(dir, name), pkts)
	}

	// Clean PCMU / PCMA.
	ssrc, seq, ts := base()
	clean := stream(src, "PCMU", 0, ssrc, seq, ts)
	if err := emit("audio_pcmu.pcap", "PCMU", 0, clean, &Pcap{}); err != nil {
		return err
	}
	ssrc, seq, ts = base()
	if err := emit("audio_pcma.pcap", "PCMA", 8, stream(src, "PCMA", 8, ssrc, seq, ts), &Pcap{}); err != nil {
		return err
	}
	n := len(clean)
	k := n * 5 / 100 // ~5%

	// Loss.
	{
		ssrc, seq, ts := base()
		all := stream(src, "PCMU", 0, ssrc, seq, ts)
		drop := pickDistinct(r, k, 10, n-10, 1)
		// one burst of three consecutive losses as well
		b := 10 + r.intn(n-30)
		set := map[int]bool{}
		for _, d := range drop {
			set[d] = true
		}
		for d := b; d < b+3; d++ {
			set[d] = true
		}
		var pk []rtpPkt
		var dropped []int
		for _, p := range all {
			if set[p.frame] {
				dropped = append(dropped, p.frame)
				continue
			}
			pk = append(pk, p)
		}
		if err := emit("audio_pcmu_loss.pcap", "PCMU", 0, pk, &Pcap{Dropped: dropped}); err != nil {
			return err
		}
	}
	// Reorder: swap adjacent packets in send order; send times stay on the 20 ms grid.
	{
		ssrc, seq, ts := base()
		pk := stream(src, "PCMU", 0, ssrc, seq, ts)
		sw := pickDistinct(r, k, 10, n-11, 3)
		for _, i := range sw {
			pk[i], pk[i+1] = pk[i+1], pk[i]
			pk[i].slot, pk[i+1].slot = float64(i), float64(i+1)
		}
		if err := emit("audio_pcmu_reorder.pcap", "PCMU", 0, pk, &Pcap{Swapped: sw}); err != nil {
			return err
		}
	}
	// Duplicates: the copy leaves 10 ms after the original.
	{
		ssrc, seq, ts := base()
		all := stream(src, "PCMU", 0, ssrc, seq, ts)
		dup := pickDistinct(r, k, 10, n-10, 1)
		set := map[int]bool{}
		for _, d := range dup {
			set[d] = true
		}
		var pk []rtpPkt
		for _, p := range all {
			pk = append(pk, p)
			if set[p.frame] {
				c := p
				c.marker = false
				c.slot += 0.5
				pk = append(pk, c)
			}
		}
		if err := emit("audio_pcmu_dup.pcap", "PCMU", 0, pk, &Pcap{Duplicated: dup}); err != nil {
			return err
		}
	}
	// Sequence (and timestamp) wrap.
	{
		ssrc, _, _ := base()
		pk := stream(src, "PCMU", 0, ssrc, 65500, math.MaxUint32-160*100+1)
		if err := emit("audio_pcmu_wrap.pcap", "PCMU", 0, pk, &Pcap{}); err != nil {
			return err
		}
	}
	// SSRC change halfway.
	{
		ssrc, seq, ts := base()
		ssrc2, seq2, ts2 := base()
		pk := stream(src, "PCMU", 0, ssrc, seq, ts)
		half := n / 2
		for i := half; i < n; i++ {
			pk[i].ssrc = ssrc2
			pk[i].seq = seq2 + uint16(i-half)
			pk[i].ts = ts2 + uint32((i-half)*frameSamples)
			pk[i].marker = i == half
		}
		m := &Pcap{SSRCChangeAt: half, SSRC2: ssrc2, Seq2: seq2, Timestamp2: ts2}
		if err := emit("audio_pcmu_ssrc.pcap", "PCMU", 0, pk, m); err != nil {
			return err
		}
	}
	// Long stream for the crash test.
	{
		ssrc, seq, ts := base()
		if err := emit("audio_pcmu_long.pcap", "PCMU", 0, stream(long, "PCMU", 0, ssrc, seq, ts), &Pcap{}); err != nil {
			return err
		}
	}

	j, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(j, '\n'), 0o644)
}
