package testcalls

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/vmserver/voicemail/internal/siptest"
)

type pcapPacket struct {
	ts      time.Duration // since the first packet
	dport   uint16
	hdr     rtp.Header
	payload []byte
}

// readPcap reads a classic little-endian libpcap file of Ethernet/IPv4/UDP/RTP.
func readPcap(path string) ([]pcapPacket, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint32(b) != 0xa1b2c3d4 || le.Uint32(b[20:]) != 1 {
		return nil, fmt.Errorf("%s: not a microsecond libpcap file with link type 1", path)
	}
	var out []pcapPacket
	var t0 time.Duration
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			return nil, fmt.Errorf("%s: truncated record header", path)
		}
		ts := time.Duration(le.Uint32(b[off:]))*time.Second + time.Duration(le.Uint32(b[off+4:]))*time.Microsecond
		incl, orig := int(le.Uint32(b[off+8:])), int(le.Uint32(b[off+12:]))
		if incl != orig || off+16+incl > len(b) {
			return nil, fmt.Errorf("%s: truncated packet", path)
		}
		f := b[off+16 : off+16+incl]
		off += 16 + incl
		if binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14]>>4 != 4 || f[23] != 17 {
			return nil, fmt.Errorf("%s: not IPv4/UDP", path)
		}
		ihl := int(f[14]&0x0f) * 4
		udp := f[14+ihl:]
		if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
			return nil, fmt.Errorf("%s: bad UDP length", path)
		}
		var p rtp.Packet
		if err := p.Unmarshal(udp[8:]); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if len(out) == 0 {
			t0 = ts
		}
		out = append(out, pcapPacket{ts: ts - t0, dport: binary.BigEndian.Uint16(udp[2:]), hdr: p.Header, payload: p.Payload})
	}
	return out, nil
}

// TestPcaps checks that every capture holds what manifest.json says, frame by
// frame against audio.raw, and that the audio is never silence.
func TestPcaps(t *testing.T) {
	if m := minFrameMean(source); m <= 1500 {
		t.Errorf("source audio has a 20 ms frame with mean |x| %d, want > 1500 everywhere", m)
	}
	for name, info := range manifest.Pcaps {
		t.Run(name, func(t *testing.T) {
			pk, err := readPcap(pcapPath(name))
			if err != nil {
				t.Fatal(err)
			}
			if len(pk) != info.Packets {
				t.Fatalf("%d packets, manifest says %d", len(pk), info.Packets)
			}
			var src []int16
			if name == "audio_pcmu_long.pcap" {
				src = nil // checked for self-consistency only; its first 12 s are audio.raw
			} else {
				src = decodedSource(info.PayloadType, len(source))
			}
			seen := map[int]int{}
			order := []int{}
			var last time.Duration
			for i, p := range pk {
				if p.ts < last {
					t.Fatalf("packet %d: pcap time goes backwards", i)
				}
				last = p.ts
				if p.dport != pk[0].dport {
					t.Fatalf("packet %d: UDP port changes (sipp maps ports relative to the lowest)", i)
				}
				if p.hdr.Version != 2 || p.hdr.PayloadType != info.PayloadType || len(p.payload) != 160 {
					t.Fatalf("packet %d: version %d PT %d len %d", i, p.hdr.Version, p.hdr.PayloadType, len(p.payload))
				}
				var frame int
				if info.SSRCChangeAt > 0 && p.hdr.SSRC == info.SSRC2 {
					frame = info.SSRCChangeAt + int((p.hdr.Timestamp-info.Timestamp2)/160)
				} else {
					if p.hdr.SSRC != info.SSRC {
						t.Fatalf("packet %d: SSRC %x", i, p.hdr.SSRC)
					}
					frame = int((p.hdr.Timestamp - info.FirstTS) / 160)
					if want := info.FirstSeq + uint16(frame); p.hdr.SequenceNumber != want {
						t.Fatalf("packet %d: seq %d, want %d for frame %d", i, p.hdr.SequenceNumber, want, frame)
					}
				}
				seen[frame]++
				order = append(order, frame)
				dec := siptest.Decode(info.PayloadType, p.payload)
				if src != nil && !equal16(dec, src[frame*160:frame*160+160]) {
					t.Fatalf("packet %d (frame %d): payload is not the source", i, frame)
				}
				if src == nil && frame < len(source)/160 && !equal16(dec, siptest.RoundTrip(0, source[frame*160:frame*160+160])) {
					t.Fatalf("long capture frame %d differs from audio.raw", frame)
				}
				if !equal16(siptest.RoundTrip(info.PayloadType, dec), dec) {
					t.Fatalf("G.711 decode is not a fixed point of the round trip")
				}
			}
			// pacing: 20 ms per frame slot
			if want := time.Duration(info.Frames-1) * 20 * time.Millisecond; last != want {
				t.Errorf("capture lasts %v, want %v", last, want)
			}
			dropped := map[int]bool{}
			for _, f := range info.Dropped {
				dropped[f] = true
				if f < 10 || f >= info.Frames-10 {
					t.Errorf("frame %d dropped within 10 of an end", f)
				}
			}
			dups := map[int]bool{}
			for _, f := range info.Duplicated {
				dups[f] = true
			}
			for f := 0; f < info.Frames; f++ {
				want := 1
				if dropped[f] {
					want = 0
				} else if dups[f] {
					want = 2
				}
				if seen[f] != want {
					t.Errorf("frame %d sent %d times, want %d", f, seen[f], want)
				}
			}
			swaps := 0
			for i := 1; i < len(order); i++ {
				if order[i] < order[i-1] {
					swaps++
				}
			}
			if swaps != len(info.Swapped) {
				t.Errorf("%d out-of-order packets, manifest lists %d swaps", swaps, len(info.Swapped))
			}
			if n := len(info.Dropped) + len(info.Swapped) + len(info.Duplicated); n > 0 {
				if pct := float64(n) * 100 / float64(info.Frames); pct < 3 || pct > 8 {
					t.Errorf("damage on %.1f%% of the frames, want about 5%%", pct)
				}
			}
			last10 := info.Frames * 160
			if src != nil && siptest.MeanAbs(src[last10-1600:last10]) < 1500 {
				t.Errorf("the audio ends quietly")
			}
		})
	}
}

func equal16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func minFrameMean(pcm []int16) int {
	min := 1 << 30
	for f := 0; f+160 <= len(pcm); f += 160 {
		if m := int(siptest.MeanAbs(pcm[f : f+160])); m < min {
			min = m
		}
	}
	return min
}

// TestPcapsReproducible regenerates the captures and compares them with the
// committed ones (amd64 only: other architectures may fuse floating-point
// operations differently and change a sample by one).
func TestPcapsReproducible(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the committed captures were generated on amd64")
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./testcalls/mkpcap", "-out", dir)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkpcap: %v\n%s", err, out)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		a, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b, err := os.ReadFile(pcapPath(e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s is out of date: run go generate ./testcalls/mkpcap (or go run ./testcalls/mkpcap -out testcalls/pcap)", e.Name())
		}
	}
}

// TestComparisonHelpers makes sure the sample comparison cannot pass vacuously.
func TestComparisonHelpers(t *testing.T) {
	dec := decodedSource(0, len(source))
	rec := append([]int16(nil), dec[44000:]...)
	off, ok := findOffset(rec, dec)
	if !ok || off != 44000 {
		t.Fatalf("findOffset = %d %v, want 44000", off, ok)
	}
	if n, _ := mismatches(rec, dec, off, 0, len(rec), nil); n != 0 {
		t.Fatalf("clean suffix: %d mismatches", n)
	}
	bad := append([]int16(nil), rec...)
	bad[5000]++
	if n, _ := mismatches(bad, dec, off, 0, len(bad), nil); n != 1 {
		t.Fatalf("one changed sample: %d mismatches", n)
	}
	// a frame missing without gap fill shifts everything after it
	cut := append(append([]int16(nil), rec[:8000]...), rec[8160:]...)
	if n, _ := mismatches(cut, dec, off, 0, len(cut), nil); n < 1000 {
		t.Fatalf("a dropped frame without gap fill went unnoticed (%d mismatches)", n)
	}
	// gap filled with silence, frame listed as lost: passes
	filled := append([]int16(nil), rec...)
	for i := 8000; i < 8160; i++ {
		filled[i] = 0
	}
	if n, _ := mismatches(filled, dec, off, 0, len(filled), map[int]bool{(8000 + off) / 160: true}); n != 0 {
		t.Fatalf("lost frame skipped: %d mismatches", n)
	}
	if _, ok := findOffset(make([]int16, 8000), dec); ok {
		t.Fatalf("silence aligned somewhere")
	}
}
