package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// buildWAV writes a WAV file of frames (channels samples each, already
// encoded as the tag wants) with optional extra chunks before fmt and data.
func buildWAV(tag uint16, channels, rate, bits int, data []byte, extra ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(0)) // never checked
	b.WriteString("WAVE")
	for _, e := range extra {
		b.Write(e)
	}
	b.WriteString("fmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16))
	ba := channels * bits / 8
	for _, v := range []any{tag, uint16(channels), uint32(rate), uint32(rate * ba), uint16(ba), uint16(bits)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func chunk(id string, body []byte) []byte {
	out := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	out = append(out, body...)
	if len(body)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// tone is a test signal: a sweep plus noise, so resampling errors show.
func tone(n, rate int, seed uint64) []int16 {
	rnd := rand.New(rand.NewPCG(seed, 1))
	out := make([]int16, n)
	for i := range out {
		f := 200 + 3000*float64(i)/float64(n)
		out[i] = int16(12000*math.Sin(2*math.Pi*f*float64(i)/float64(rate)) + float64(rnd.IntN(2000)-1000))
	}
	return out
}

func decodeAll(t *testing.T, b []byte, chunkSize int) ([]int16, error) {
	t.Helper()
	d, err := NewWAVDecoder(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []int16
	buf := make([]int16, chunkSize)
	for {
		n, err := d.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestWAVDecoderMatchesReadWAV: the stream decoder returns exactly what
// ReadWAV returns, sample for sample, for every format and rate.
func TestWAVDecoderMatchesReadWAV(t *testing.T) {
	type enc struct {
		name string
		tag  uint16
		bits int
		put  func(s int16) []byte
	}
	encs := []enc{
		{"pcm16", wavTagPCM, 16, func(s int16) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(s)) }},
		{"pcm8", wavTagPCM, 8, func(s int16) []byte { return []byte{byte(int(s>>8) + 128)} }},
		{"ulaw", wavTagMULaw, 8, func(s int16) []byte { b := []byte{0}; PCMU.Encode(b, []int16{s}); return b }},
		{"alaw", wavTagALaw, 8, func(s int16) []byte { b := []byte{0}; PCMA.Encode(b, []int16{s}); return b }},
	}
	for _, rate := range []int{8000, 11025, 16000, 22050, 44100, 48000} {
		for _, ch := range []int{1, 2} {
			for _, e := range encs {
				n := rate*6/10 + 7 // 0.6 s and a bit: more than one decoder block
				left, right := tone(n, rate, uint64(rate)), tone(n, rate, uint64(rate)+1)
				var data []byte
				for i := 0; i < n; i++ {
					data = append(data, e.put(left[i])...)
					if ch == 2 {
						data = append(data, e.put(right[i])...)
					}
				}
				file := buildWAV(e.tag, ch, rate, e.bits, data, chunk("LIST", []byte("odd")))
				want, err := ReadWAV(bytes.NewReader(file))
				if err != nil {
					t.Fatal(err)
				}
				for _, cs := range []int{7, 4096, 100000} {
					got, err := decodeAll(t, file, cs)
					if err != nil || !slices.Equal(got, want) {
						t.Fatalf("%s %d Hz %d ch, reads of %d: %d samples (err %v), ReadWAV %d", e.name, rate, ch, cs, len(got), err, len(want))
					}
				}
			}
		}
	}
}

func TestWAVDecoderErrorsAndDeclared(t *testing.T) {
	data := make([]byte, 16000) // 1 s of 16-bit mono
	file := buildWAV(wavTagPCM, 1, 8000, 16, data)
	d, err := NewWAVDecoder(bytes.NewReader(file))
	if err != nil || d.DeclaredSamples() != 8000 {
		t.Fatalf("declared %v %v", d, err)
	}
	// A streaming writer's "unknown" size.
	binary.LittleEndian.PutUint32(file[40:], math.MaxUint32)
	d, err = NewWAVDecoder(bytes.NewReader(file))
	if err != nil || d.DeclaredSamples() != -1 {
		t.Fatalf("unknown size: %v", err)
	}
	if got, err := decodeAll(t, file, 500); err != nil || len(got) != 8000 {
		t.Errorf("unknown size decodes %d samples, %v", len(got), err)
	}
	for name, b := range map[string][]byte{
		"empty":         nil,
		"not riff":      []byte("RIFX\x00\x00\x00\x00WAVE"),
		"no data":       buildWAV(wavTagPCM, 1, 8000, 16, nil)[:36],
		"data first":    append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk("data", []byte{1, 2})...),
		"bad rate":      buildWAV(wavTagPCM, 1, 96000, 16, data),
		"bad channels":  buildWAV(wavTagPCM, 3, 8000, 16, data),
		"huge unknown":  append([]byte("RIFF\x00\x00\x00\x00WAVE"), "JUNK\xff\xff\xff\xff"...),
		"24-bit":        buildWAV(wavTagPCM, 1, 8000, 24, data),
		"short fmt":     append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk("fmt ", []byte{1, 0, 1, 0})...),
		"truncated hdr": []byte("RIFF\x00\x00"),
	} {
		if _, err := NewWAVDecoder(bytes.NewReader(b)); !errors.Is(err, ErrUnsupportedWAV) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
