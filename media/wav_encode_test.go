package media

import (
	"bytes"
	"testing"
	"time"
)

// TestEncodeWAV: the in-memory encoder writes byte for byte what the
// streaming WAVWriter writes, and a PCM16 file reads back exactly.
func TestEncodeWAV(t *testing.T) {
	pcm := Tone(440, 1001*time.Millisecond/8, 0.5) // 1001 samples: odd
	for _, format := range []Format{FormatPCM16, FormatULaw, FormatALaw} {
		t.Run(format.String(), func(t *testing.T) {
			got, err := EncodeWAV(pcm, format)
			if err != nil {
				t.Fatal(err)
			}
			if want := writeWAVFile(t, pcm, format); !bytes.Equal(got, want) {
				t.Fatalf("EncodeWAV differs from WAVWriter: %d bytes vs %d", len(got), len(want))
			}
			n, err := WAVSamples(bytes.NewReader(got))
			if err != nil || n != int64(len(pcm)) {
				t.Fatalf("WAVSamples = %d, %v; want %d", n, err, len(pcm))
			}
			if format != FormatPCM16 {
				return
			}
			back, err := ReadWAV(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != len(pcm) {
				t.Fatalf("%d samples back, want %d", len(back), len(pcm))
			}
			for i := range pcm {
				if back[i] != pcm[i] {
					t.Fatalf("sample %d: %d, want %d", i, back[i], pcm[i])
				}
			}
		})
	}
	if _, err := EncodeWAV(pcm, Format(9)); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestWAVSamplesBadHeader(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("RIFF\x00\x00\x00\x00WAVE"), []byte("RIFX\x00\x00\x00\x00WAVEfmt ")} {
		if _, err := WAVSamples(bytes.NewReader(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}
