package media

import (
	"testing"

	"github.com/zaf/g711"
)

func TestCodecString(t *testing.T) {
	for _, tc := range []struct {
		c    Codec
		want string
	}{{PCMU, "PCMU"}, {PCMA, "PCMA"}, {Codec(18), "unknown"}} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32767, -32768}
	for _, c := range []Codec{PCMU, PCMA} {
		t.Run(c.String(), func(t *testing.T) {
			enc := make([]byte, len(in))
			dec := make([]int16, len(in))
			c.Encode(enc, in)
			c.Decode(dec, enc)
			for i := range in {
				// G.711 is logarithmic: the error grows with the magnitude
				// (at most 1/16 of the value plus the smallest step).
				tol := int(abs16(in[i]))/16 + 16
				if d := int(dec[i]) - int(in[i]); d > tol || d < -tol {
					t.Errorf("sample %d: %d -> %d (tol %d)", i, in[i], dec[i], tol)
				}
			}
			// Decoding a code and encoding it again must be stable.
			for b := 0; b < 256; b++ {
				var s [1]int16
				var e [1]byte
				c.Decode(s[:], []byte{byte(b)})
				c.Encode(e[:], s[:])
				var s2 [1]int16
				c.Decode(s2[:], e[:])
				if s2[0] != s[0] {
					t.Fatalf("code %#x: decode %d, re-encode %#x decodes %d", b, s[0], e[0], s2[0])
				}
			}
		})
	}
}

func TestCodecSilenceByte(t *testing.T) {
	for _, tc := range []struct {
		c    Codec
		want byte
	}{{PCMU, 0xFF}, {PCMA, 0xD5}} {
		if got := tc.c.SilenceByte(); got != tc.want {
			t.Errorf("%v silence = %#x, want %#x", tc.c, got, tc.want)
		}
	}
}

func TestCodecNoAlloc(t *testing.T) {
	src := make([]byte, FrameSamples)
	pcm := make([]int16, FrameSamples)
	if n := testing.AllocsPerRun(100, func() {
		PCMU.Decode(pcm, src)
		PCMA.Encode(src, pcm)
	}); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

func abs16(v int16) int32 {
	if v < 0 {
		return -int32(v)
	}
	return int32(v)
}

// TestEncodeTables: the table encoders give the reference encoder's byte
// for every 16-bit sample.
func TestEncodeTables(t *testing.T) {
	src := make([]int16, 1<<16)
	for i := range src {
		src[i] = int16(uint16(i))
	}
	dst := make([]byte, len(src))
	for _, c := range []struct {
		codec Codec
		ref   func(int16) byte
	}{{PCMU, g711.EncodeUlawFrame}, {PCMA, g711.EncodeAlawFrame}} {
		c.codec.Encode(dst, src)
		for i, s := range src {
			if want := c.ref(s); dst[i] != want {
				t.Fatalf("%s: sample %d encodes to %#x, want %#x", c.codec, s, dst[i], want)
			}
		}
	}
}
