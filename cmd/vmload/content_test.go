package main

import (
	"encoding/binary"
	"slices"
	"testing"
)

// speech returns n frames of a non-repeating, never-flat signal (what the
// generator sends is real speech; any frame is unique in it).
func speech(frames int) []int16 {
	s := make([]int16, frames*frameSamples)
	x := uint32(12345)
	for i := range s {
		x = x*1664525 + 1013904223
		s[i] = int16(x >> 16)
	}
	return s
}

func TestCompareFrames(t *testing.T) {
	sent := speech(50)
	if len(sent) < 50*frameSamples {
		t.Fatal("short speech")
	}
	silence := make([]int16, frameSamples)
	withFrame := func(rec []int16, f int, with []int16) []int16 {
		rec = slices.Clone(rec)
		copy(rec[f*frameSamples:], with)
		return rec
	}
	lead := func(n int, rec []int16) []int16 { return append(make([]int16, n), rec...) }
	tests := []struct {
		name       string
		rec        []int16
		wantOffset int
		wantGood   int
	}{
		{"identical", sent, 0, 50},
		{"lead of 60 ms", lead(480, sent), 480, 50},
		{"lead not a frame multiple", lead(37, sent), 37, 50},
		{"a lost packet filled with silence: length exact, one frame bad", withFrame(sent, 20, silence), 0, 49},
		{"first frame lost: aligned on the second", withFrame(sent, 0, silence), 0, 49},
		{"last frame cut", sent[:49*frameSamples], 0, 49},
		{"half the last frame cut", sent[:50*frameSamples-80], 0, 49},
		{"one sample changed", withFrame(sent, 7, []int16{sent[7*frameSamples] ^ 1}), 0, 49},
		{"trailing audio after the sent frames is ignored", append(slices.Clone(sent), speech(3)...), 0, 50},
		{"a frame missing in the middle shifts the rest: all after it bad",
			append(slices.Clone(sent[:10*frameSamples]), sent[11*frameSamples:]...), 0, 10},
		{"the first 320 ms missing (recording started late)", sent[16*frameSamples:], -16 * frameSamples, 34},
		{"start missing, not a frame multiple", sent[100:], -100, 49},
		{"silence only: not aligned", make([]int16, len(sent)), noAlign, 0},
		{"empty recording", nil, noAlign, 0},
		{"lead beyond the search range", lead(maxLead+frameSamples*60, sent), noAlign, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := compareFrames(sent, tc.rec, maxLead)
			if v.Offset != tc.wantOffset || v.Good != tc.wantGood || v.Total != 50 {
				t.Fatalf("got offset %d good %d/%d, want offset %d good %d/50", v.Offset, v.Good, v.Total, tc.wantOffset, tc.wantGood)
			}
			if v.AllGood() != (tc.wantGood == 50) {
				t.Fatalf("AllGood = %v", v.AllGood())
			}
		})
	}
}

// TestDecodeSentMatchesWAV: the expected samples are the µ-law frames
// decoded as the server stores them (a µ-law WAV read back, or PCM16).
func TestDecodeSentMatchesWAV(t *testing.T) {
	frames := [][]byte{make([]byte, frameBytes), make([]byte, frameBytes)}
	for i := range frames[0] {
		frames[0][i], frames[1][i] = byte(i), byte(255-i)
	}
	pcm := decodeSent(frames)
	if len(pcm) != 2*frameSamples {
		t.Fatalf("len %d", len(pcm))
	}
	// µ-law 0x00 is the most negative value, 0xFF zero (G.711).
	if pcm[0] != -32124 || pcm[frameSamples] != 0 {
		t.Fatalf("decoded %d, %d; want -32124, 0", pcm[0], pcm[frameSamples])
	}
}

func FuzzCompareFrames(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, uint16(0))
	f.Add(make([]byte, 4*frameSamples), uint16(160))
	f.Fuzz(func(t *testing.T, raw []byte, lead uint16) {
		rec := make([]int16, len(raw)/2)
		for i := range rec {
			rec[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		sent := speech(10)
		v := compareFrames(sent, rec, int(lead))
		if v.Good < 0 || v.Good > v.Total || v.Total != 10 {
			t.Fatalf("verdict out of range: %+v", v)
		}
		if v.Offset != noAlign && v.Offset > int(lead) {
			t.Fatalf("offset %d beyond the search range %d", v.Offset, lead)
		}
		// Whatever precedes it, the sent audio itself is found whole.
		w := compareFrames(sent, append(rec[:min(len(rec), int(lead))], sent...), int(lead))
		if w.Offset == noAlign || w.Good < 1 {
			t.Fatalf("sent audio after %d samples not found: %+v", min(len(rec), int(lead)), w)
		}
	})
}

func TestRecCheckExpect(t *testing.T) {
	rc := recCheck{Files: 17, FramesTotal: 17 * 150, FramesGood: 17 * 150}
	rc.expect(20, 150)
	if rc.Missing != 3 || rc.FramesTotal != 20*150 || rc.FramesGood != 17*150 {
		t.Fatalf("got %+v", rc)
	}
	rc = recCheck{Files: 5, FramesTotal: 5}
	rc.expect(4, 1) // more files than completed calls (a failed call's message): nothing added
	if rc.Missing != 0 || rc.FramesTotal != 5 {
		t.Fatalf("got %+v", rc)
	}
}
