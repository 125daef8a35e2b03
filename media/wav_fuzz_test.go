package media

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"
	"testing"
)

// FuzzWAV feeds arbitrary bytes to both WAV readers of greeting uploads and
// prompts: neither may panic or hang, and whatever the streaming decoder
// accepts ReadWAV accepts with the very same samples (ReadWAV also takes a
// data chunk before fmt, which the decoder refuses).
func FuzzWAV(f *testing.F) {
	pcm := make([]byte, 64)
	for i := range pcm {
		pcm[i] = byte(i * 7)
	}
	f.Add(buildWAV(wavTagPCM, 1, 8000, 16, pcm))
	f.Add(buildWAV(wavTagPCM, 2, 44100, 16, pcm, chunk("LIST", []byte("INFOabc"))))
	f.Add(buildWAV(wavTagMULaw, 1, 8000, 8, pcm))
	f.Add(buildWAV(wavTagALaw, 2, 16000, 8, pcm))
	f.Add(buildWAV(wavTagPCM, 1, 11025, 8, pcm[:33]))
	ext := make([]byte, 40)
	binary.LittleEndian.PutUint16(ext[0:], wavTagExtensible)
	binary.LittleEndian.PutUint16(ext[2:], 1)
	binary.LittleEndian.PutUint32(ext[4:], 48000)
	binary.LittleEndian.PutUint16(ext[12:], 2)
	binary.LittleEndian.PutUint16(ext[14:], 16)
	binary.LittleEndian.PutUint16(ext[24:], wavTagPCM)
	f.Add(append(append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk("fmt ", ext)...), chunk("data", pcm)...))
	f.Add(append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk("data", pcm)...))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := ReadWAV(bytes.NewReader(b))
		d, err := NewWAVDecoder(bytes.NewReader(b))
		if err != nil {
			return
		}
		if d.DeclaredSamples() < -1 {
			t.Fatalf("declared %d samples", d.DeclaredSamples())
		}
		var got []int16
		buf := make([]int16, 1+len(b)%300)
		for {
			n, err := d.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if n == 0 {
				t.Fatal("Read returned 0 samples and no error")
			}
		}
		if werr != nil {
			t.Fatalf("the decoder accepted what ReadWAV refuses (%v)", werr)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("decoder: %d samples, ReadWAV: %d (or different values)", len(got), len(want))
		}
	})
}
