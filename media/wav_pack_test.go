package media

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// decoded returns n samples as a G.711 receiver delivers them: codec c's
// codes, every one of them in turn from start.
func decoded(c Codec, start, n int) []int16 {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i)
	}
	pcm := make([]int16, n)
	c.Decode(pcm, b)
	return pcm
}

// writeOp is one step of a WAVWriter's life in the tests below.
type writeOp struct {
	pcm      []int16
	codes    []byte // written with WriteG711 in law (Write of pcm when refused)
	law      Codec
	truncate int64
}

// write gives the op's audio to w as a receiver would: its codes if w
// takes them, else its samples.
func (op writeOp) write(w *WAVWriter) error {
	if op.codes != nil {
		if ok, err := w.WriteG711(op.law, op.codes); ok {
			return err
		}
	}
	return w.Write(op.pcm)
}

// codesOp is an op of n codes of c, every one in turn from start.
func codesOp(c Codec, start, n int) writeOp {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i)
	}
	return writeOp{codes: b, law: c, pcm: decoded(c, start, n)}
}

// expectedWAV is what a writer given ops must leave in the file: the
// samples that survive the truncations, encoded whole.
func expectedWAV(t *testing.T, f Format, ops []writeOp) []byte {
	t.Helper()
	var all []int16
	for _, op := range ops {
		all = append(all, op.pcm...)
		all = all[:len(all)-int(min(op.truncate, int64(len(all))))]
	}
	b, err := EncodeWAV(all, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runWriter(t *testing.T, f Format, ops []writeOp) []byte {
	t.Helper()
	fh := tempFile(t)
	w, err := NewWAVWriter(fh, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if err := op.write(w); err != nil {
			t.Fatal(err)
		}
		if err := w.Truncate(op.truncate); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return fileBytes(t, fh)
}

// TestWAVWriterPacked: a PCM16 file is the same whether the writer could
// keep its samples as G.711 codes (µ-law or A-law audio, A-law found after
// samples µ-law could also hold), had to stop doing so halfway (a tone
// after µ-law audio, A-law after a silent start) or never could (a tone);
// across buffer boundaries and truncations.
func TestWAVWriterPacked(t *testing.T) {
	tone := Tone(440, 300*time.Millisecond, 0.5)
	frames := func(pcm []int16, size int) []writeOp {
		var ops []writeOp
		for len(pcm) > 0 {
			n := min(size, len(pcm))
			ops = append(ops, writeOp{pcm: pcm[:n]})
			pcm = pcm[n:]
		}
		return ops
	}
	for _, tc := range []struct {
		name   string
		ops    []writeOp
		packed bool // still packed at the end
		pack   Codec
	}{
		{"ulaw 160-sample frames", frames(decoded(PCMU, 0, 3*wavBufSamples+17), 160), true, PCMU},
		{"alaw 160-sample frames", frames(decoded(PCMA, 3, 2*wavBufSamples+1), 160), true, PCMA},
		{"ulaw one write of 3 buffers", []writeOp{{pcm: decoded(PCMU, 9, 3*wavBufSamples)}}, true, PCMU},
		{"ulaw odd chunks", frames(decoded(PCMU, 0, wavBufSamples+500), 7), true, PCMU},
		{"tone", frames(tone, 160), false, PCMU},
		{"ulaw then tone", append(frames(decoded(PCMU, 0, 1000), 160), frames(tone, 160)...), false, PCMU},
		{"ulaw then tone at a buffer's end", append(frames(decoded(PCMU, 0, wavBufSamples), 160), frames(tone, 160)...), false, PCMU},
		{"silence then alaw", append(frames(make([]int16, 320), 160), frames(decoded(PCMA, 0, 800), 160)...), false, PCMU},
		{"ulaw truncated and written on", []writeOp{
			{pcm: decoded(PCMU, 0, 5000)}, {truncate: 1200}, {pcm: decoded(PCMU, 40, 900)}, {truncate: 1},
		}, true, PCMU},
		{"tone truncated whole", []writeOp{{pcm: tone, truncate: 1 << 20}, {pcm: decoded(PCMU, 0, 10)}}, false, PCMU},
		{"ulaw codes", codesFrames(PCMU, 0, 3*wavBufSamples+17), true, PCMU},
		{"alaw codes", codesFrames(PCMA, 5, 2*wavBufSamples+1), true, PCMA},
		{"ulaw samples then codes", append(frames(decoded(PCMU, 0, 1000), 160), codesFrames(PCMU, 7, 5000)...), true, PCMU},
		{"ulaw codes then alaw codes", append(codesFrames(PCMU, 0, 800), codesFrames(PCMA, 7, 5000)...), false, PCMU},
		{"ulaw codes then alaw codes before the first write", append(codesFrames(PCMU, 0, 1), codesFrames(PCMA, 7, 5000)...), false, PCMU},
		{"ulaw codes then tone then codes", append(append(codesFrames(PCMU, 0, 800), frames(tone, 160)...), codesFrames(PCMU, 3, 900)...), false, PCMU},
		{"silence then alaw codes", append(frames(make([]int16, 320), 160), codesFrames(PCMA, 0, 800)...), false, PCMU},
		{"alaw codes truncated and written on", []writeOp{
			codesOp(PCMA, 0, 5000), {truncate: 1200}, codesOp(PCMA, 40, 900), {truncate: 1},
		}, true, PCMA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runWriter(t, FormatPCM16, tc.ops)
			if want := expectedWAV(t, FormatPCM16, tc.ops); !bytes.Equal(got, want) {
				t.Fatalf("file differs: %d bytes, want %d", len(got), len(want))
			}
			w, _ := NewWAVWriter(nopSeeker{}, FormatPCM16)
			for _, op := range tc.ops {
				op.write(w)
			}
			if w.packed != tc.packed || (tc.packed && w.pack != tc.pack) {
				t.Errorf("packed = %v (%v), want %v (%v)", w.packed, w.pack, tc.packed, tc.pack)
			}
		})
	}
	for _, f := range []Format{FormatULaw, FormatALaw} {
		ops := frames(append(decoded(PCMU, 0, wavBufSamples+3), tone...), 160)
		ops = append(ops, codesFrames(PCMU, 0, wavBufSamples)...)
		ops = append(ops, codesFrames(PCMA, 9, 900)...)
		if got, want := runWriter(t, f, ops), expectedWAV(t, f, ops); !sameWAV(t, f, got, want) {
			t.Errorf("%v: file differs: %d bytes, want %d", f, len(got), len(want))
		}
	}
}

// sameWAV compares two files of format f: byte for byte for PCM16; by
// the samples they decode to for G.711, where codes written as received
// may be the other code of a sample with two (µ-law 0x7F and 0xFF are 0).
func sameWAV(t *testing.T, f Format, got, want []byte) bool {
	t.Helper()
	if f == FormatPCM16 || len(got) != len(want) {
		return bytes.Equal(got, want)
	}
	g, err := ReadWAV(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	w, err := ReadWAV(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	return slices.Equal(g, w) && bytes.Equal(got[:g711HeaderLen], want[:g711HeaderLen])
}

// codesFrames is n codes of c from start, as 160-code frames.
func codesFrames(c Codec, start, n int) []writeOp {
	var ops []writeOp
	for i := 0; i < n; i += 160 {
		ops = append(ops, codesOp(c, start+i, min(160, n-i)))
	}
	return ops
}

// nopSeeker takes writes and seeks and keeps nothing.
type nopSeeker struct{}

func (nopSeeker) Write(b []byte) (int, error)    { return len(b), nil }
func (nopSeeker) Seek(int64, int) (int64, error) { return 0, nil }
func (nopSeeker) Truncate(int64) error           { return nil }

// TestWAVWriterNoAllocs: writing a frame allocates nothing, packed or not
// (the buffer that replaces the packed one is made once).
func TestWAVWriterNoAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     Format
		frame []int16
	}{
		{"pcm16 packed", FormatPCM16, decoded(PCMU, 0, 160)},
		{"pcm16", FormatPCM16, Tone(440, 20*time.Millisecond, 0.5)},
		{"ulaw", FormatULaw, Tone(440, 20*time.Millisecond, 0.5)},
	} {
		w, _ := NewWAVWriter(nopSeeker{}, tc.f)
		w.Write(tc.frame)
		if n := testing.AllocsPerRun(500, func() { w.Write(tc.frame) }); n != 0 {
			t.Errorf("%s: %v allocations per frame", tc.name, n)
		}
	}
	for _, f := range []Format{FormatPCM16, FormatULaw} {
		w, _ := NewWAVWriter(nopSeeker{}, f)
		op := codesOp(PCMU, 0, 160)
		if ok, _ := w.WriteG711(PCMU, op.codes); !ok {
			t.Fatalf("%v: codes refused", f)
		}
		if n := testing.AllocsPerRun(500, func() { w.WriteG711(PCMU, op.codes) }); n != 0 {
			t.Errorf("%v codes: %v allocations per frame", f, n)
		}
	}
}

// FuzzWAVWriter writes arbitrary audio in arbitrary pieces: the file is
// always the whole audio encoded at once. Each byte pair is a sample (a
// µ-law code, an A-law code or a raw value), the end of a Write, a
// truncation, or a frame of µ-law or A-law codes (WriteG711).
func FuzzWAVWriter(f *testing.F) {
	f.Add(byte(0), []byte{0, 1, 0, 2, 3, 0, 1, 5, 2, 200, 4, 3})
	f.Add(byte(1), []byte{1, 1, 1, 2, 3, 0, 0, 0, 0, 9})
	f.Add(byte(2), []byte{2, 1, 2, 2, 3, 0, 4, 1})
	f.Fuzz(func(t *testing.T, format byte, b []byte) {
		fm := Format(format % 3)
		var ops []writeOp
		var cur []int16
		for i := 0; i+1 < len(b); i += 2 {
			v := b[i+1]
			switch b[i] % 7 {
			case 0:
				cur = append(cur, ulawDecTable[v])
			case 1:
				cur = append(cur, alawDecTable[v])
			case 2:
				cur = append(cur, int16(v)<<8|int16(b[i]))
			case 3:
				ops = append(ops, writeOp{pcm: cur})
				cur = nil
			case 4:
				ops = append(ops, writeOp{pcm: cur, truncate: int64(v)})
				cur = nil
			case 5, 6:
				// a frame of codes, as the receiver gives them
				ops = append(ops, writeOp{pcm: cur}, codesOp(Codec(b[i]%7-5)*PCMA, int(v), int(v)+1))
				cur = nil
			}
			if len(cur) > 0 && i%64 == 0 {
				// long runs of one sample cross buffer boundaries cheaply
				cur = append(cur, slices.Repeat(cur[len(cur)-1:], int(v)*20)...)
			}
		}
		ops = append(ops, writeOp{pcm: cur})
		if got, want := runWriter(t, fm, ops), expectedWAV(t, fm, ops); !sameWAV(t, fm, got, want) {
			t.Fatalf("file differs: %d bytes, want %d", len(got), len(want))
		}
	})
}
