package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vmserver/voicemail/media"
)

// The tones survive G.711 and the server's in-band detector reads each key once.
func TestAudioDetected(t *testing.T) {
	for _, f := range files {
		pcm := Audio(f.keys)
		enc := make([]byte, 160)
		dec := make([]int16, 160)
		var d media.InbandDetector
		var got []rune
		for i := 0; i+160 <= len(pcm); i += 160 {
			media.PCMU.Encode(enc, pcm[i:i+160])
			media.PCMU.Decode(dec, enc)
			if k, ok := d.Feed(dec); ok {
				got = append(got, k)
			}
		}
		if want := strings.ReplaceAll(f.keys, " ", ""); string(got) != want {
			t.Errorf("%s: detected %q, want %q", f.name, string(got), want)
		}
	}
}

// The committed captures are what this generator writes.
func TestCommittedCaptures(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the committed captures were generated on amd64")
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "pcap", f.name))
		if err != nil {
			t.Fatalf("%v (run: go run ./testcalls/mkdtmf -out testcalls/pcap)", err)
		}
		if !bytes.Equal(b, capture(f.keys)) {
			t.Errorf("%s differs from the generator's output; regenerate it", f.name)
		}
	}
}
