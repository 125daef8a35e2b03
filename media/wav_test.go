package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "x.wav"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func fileBytes(t *testing.T, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
		ok   bool
	}{{"pcm16", FormatPCM16, true}, {"", FormatPCM16, true}, {"ulaw", FormatULaw, true}, {"alaw", FormatALaw, true}, {"mp3", 0, false}} {
		got, err := ParseFormat(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseFormat(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && tc.in != "" && got.String() != tc.in {
			t.Errorf("String() = %q", got.String())
		}
	}
}

func TestWAVWriterHeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       Format
		samples int
		size    int // file size
		header  []any
	}{
		{"pcm16", FormatPCM16, 3, 44 + 6, []any{
			"RIFF", uint32(36 + 6), "WAVE", "fmt ", uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000),
			uint16(2), uint16(16), "data", uint32(6)}},
		{"ulaw odd", FormatULaw, 3, 58 + 4, []any{
			"RIFF", uint32(50 + 4), "WAVE", "fmt ", uint32(18), uint16(7), uint16(1), uint32(8000), uint32(8000),
			uint16(1), uint16(8), uint16(0), "fact", uint32(4), uint32(3), "data", uint32(3)}},
		{"alaw even", FormatALaw, 4, 58 + 4, []any{
			"RIFF", uint32(50 + 4), "WAVE", "fmt ", uint32(18), uint16(6), uint16(1), uint32(8000), uint32(8000),
			uint16(1), uint16(8), uint16(0), "fact", uint32(4), uint32(4), "data", uint32(4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tempFile(t)
			w, err := NewWAVWriter(f, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(make([]int16, tc.samples)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b := fileBytes(t, f)
			if len(b) != tc.size {
				t.Fatalf("size %d, want %d", len(b), tc.size)
			}
			var want bytes.Buffer
			for _, v := range tc.header {
				if s, ok := v.(string); ok {
					want.WriteString(s)
				} else {
					binary.Write(&want, binary.LittleEndian, v)
				}
			}
			if !bytes.Equal(b[:want.Len()], want.Bytes()) {
				t.Fatalf("header\n got % x\nwant % x", b[:want.Len()], want.Bytes())
			}
		})
	}
}

func TestWAVRoundTrip(t *testing.T) {
	pcm := Tone(440, 1001*time.Millisecond/8, 0.5) // 1001 samples: odd
	for _, format := range []Format{FormatPCM16, FormatULaw, FormatALaw} {
		t.Run(format.String(), func(t *testing.T) {
			got, err := ReadWAV(bytes.NewReader(writeWAVFile(t, pcm, format)))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(pcm) {
				t.Fatalf("read %d samples, want %d", len(got), len(pcm))
			}
			for i := range pcm {
				tol := int(abs16(pcm[i]))/16 + 16
				if format == FormatPCM16 {
					tol = 0
				}
				if d := int(got[i]) - int(pcm[i]); d > tol || d < -tol {
					t.Fatalf("sample %d: %d, want %d", i, got[i], pcm[i])
				}
			}
		})
	}
}

func TestWAVTruncate(t *testing.T) {
	for _, format := range []Format{FormatPCM16, FormatULaw} {
		f := tempFile(t)
		w, _ := NewWAVWriter(f, format)
		w.Write(Tone(440, 100*time.Millisecond, 0.5)) // 800
		w.Write(Silence(50 * time.Millisecond))       // 400
		if err := w.Truncate(401); err != nil {
			t.Fatal(err)
		}
		w.Write([]int16{1, 2})
		if w.Samples() != 801 {
			t.Fatalf("Samples = %d", w.Samples())
		}
		if err := w.Truncate(1 << 40); err != nil || w.Samples() != 0 {
			t.Fatalf("over-truncate: %v %d", err, w.Samples())
		}
		w.Write([]int16{5, 6, 7})
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := ReadWAV(bytes.NewReader(fileBytes(t, f)))
		if err != nil || len(got) != 3 {
			t.Fatalf("%v: read %d samples, %v", format, len(got), err)
		}
		if w.Write([]int16{1}) == nil {
			t.Error("write after close succeeded")
		}
	}
}

// wavBytes builds a WAV file from a fmt chunk body and data, with extra
// chunks before the data.
func wavBytes(fmtBody []byte, data []byte, extra ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(0)) // patched below
	b.WriteString("WAVE")
	chunk := func(id string, body []byte) {
		b.WriteString(id)
		binary.Write(&b, binary.LittleEndian, uint32(len(body)))
		b.Write(body)
		if len(body)%2 == 1 {
			b.WriteByte(0)
		}
	}
	chunk("fmt ", fmtBody)
	for _, e := range extra {
		chunk(string(e[:4]), e[4:])
	}
	chunk("data", data)
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func fmtChunk(tag, channels uint16, rate uint32, bits uint16, ext ...byte) []byte {
	var b bytes.Buffer
	align := channels * bits / 8
	for _, v := range []any{tag, channels, rate, rate * uint32(align), align, bits} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.Write(ext)
	return b.Bytes()
}

func le16s(v ...int16) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func TestReadWAVFormats(t *testing.T) {
	// WAVE_FORMAT_EXTENSIBLE tail: cbSize 22, valid bits, mask, PCM GUID.
	extPCM := func(bits uint16) []byte {
		var b bytes.Buffer
		for _, v := range []any{uint16(22), bits, uint32(4)} {
			binary.Write(&b, binary.LittleEndian, v)
		}
		b.Write([]byte{1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71})
		return b.Bytes()
	}
	list := append([]byte("LIST"), []byte("INFOx")...) // odd size: padded
	for _, tc := range []struct {
		name string
		file []byte
		want []int16
	}{
		{"pcm16 mono", wavBytes(fmtChunk(1, 1, 8000, 16), le16s(1, -2, 300)), []int16{1, -2, 300}},
		{"pcm16 stereo mixdown", wavBytes(fmtChunk(1, 2, 8000, 16), le16s(100, 300, -10, -20)), []int16{200, -15}},
		{"pcm8 unsigned", wavBytes(fmtChunk(1, 1, 8000, 8), []byte{128, 255, 0}), []int16{0, 127 << 8, -32768}},
		{"ulaw", wavBytes(fmtChunk(7, 1, 8000, 8, 0, 0), []byte{0xff, 0x7f}), []int16{0, 0}},
		{"alaw", wavBytes(fmtChunk(6, 1, 8000, 8, 0, 0), []byte{0xd5}), []int16{8}},
		{"extensible pcm", wavBytes(fmtChunk(0xfffe, 1, 8000, 16, extPCM(16)...), le16s(7, 8)), []int16{7, 8}},
		{"LIST before data", wavBytes(fmtChunk(1, 1, 8000, 16), le16s(42), list), []int16{42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadWAV(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestReadWAVResample(t *testing.T) {
	for _, rate := range []uint32{11025, 16000, 22050, 44100, 48000} {
		// 1 s of 1 kHz at the source rate, plus a 6 kHz tone that must be
		// filtered out (it would alias to 2 kHz at 8000 Hz).
		n := int(rate)
		pcm := make([]int16, n)
		for i := range pcm {
			x := float64(i) / float64(rate)
			pcm[i] = int16(10000*sinTest(1000*x) + 5000*sinTest(6000*x)*boolf(rate > 12000))
		}
		got, err := ReadWAV(bytes.NewReader(wavBytes(fmtChunk(1, 1, rate, 16), le16s(pcm...))))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 7990 || len(got) > 8000 {
			t.Fatalf("rate %d: %d samples", rate, len(got))
		}
		p1k := goertzelPower(got[100:7900], 1000)
		p2k := goertzelPower(got[100:7900], 2000)
		if p1k < 100*p2k {
			t.Errorf("rate %d: 1 kHz %.3g vs alias %.3g", rate, p1k, p2k)
		}
	}
}

func TestReadWAVUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"not riff", []byte("hello world, this is not a wav")},
		{"float", wavBytes(fmtChunk(3, 1, 8000, 32), make([]byte, 8))},
		{"24 bit", wavBytes(fmtChunk(1, 1, 8000, 24), make([]byte, 6))},
		{"3 channels", wavBytes(fmtChunk(1, 3, 8000, 16), make([]byte, 6))},
		{"96 kHz", wavBytes(fmtChunk(1, 1, 96000, 16), make([]byte, 6))},
		{"gsm", wavBytes(fmtChunk(0x31, 1, 8000, 8), make([]byte, 6))},
		{"short fmt", wavBytes([]byte{1, 0, 1, 0}, make([]byte, 6))},
		{"no data", []byte("RIFF\x04\x00\x00\x00WAVE")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadWAV(bytes.NewReader(tc.file)); !errors.Is(err, ErrUnsupportedWAV) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestFixWAV(t *testing.T) {
	for _, tc := range []struct {
		name     string
		format   Format
		samples  int
		extra    int // raw bytes after the samples (a partial sample)
		want     int64
		wantSize int64
	}{
		{"pcm16 whole", FormatPCM16, 800, 0, 800, 44 + 1600},
		{"pcm16 partial sample", FormatPCM16, 800, 1, 800, 44 + 1600},
		{"ulaw odd", FormatULaw, 801, 0, 801, 58 + 802},
		{"alaw empty", FormatALaw, 0, 0, 0, 58},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tempFile(t)
			w, _ := NewWAVWriter(f, tc.format)
			w.Write(Tone(500, time.Second, 0.5)[:tc.samples])
			w.flush() // the writer "dies" here: sizes are still 0
			f.Write(make([]byte, tc.extra))
			if tc.name == "pcm16 whole" {
				// a stale, too-small size from an earlier patch
				f.WriteAt([]byte{10, 0, 0, 0}, 40)
			}
			n, err := FixWAV(f)
			if err != nil || n != tc.want {
				t.Fatalf("FixWAV = %d, %v; want %d", n, err, tc.want)
			}
			b := fileBytes(t, f)
			if int64(len(b)) != tc.wantSize {
				t.Fatalf("size %d, want %d", len(b), tc.wantSize)
			}
			got, err := ReadWAV(bytes.NewReader(b))
			if err != nil || int64(len(got)) != tc.want {
				t.Fatalf("ReadWAV: %d, %v", len(got), err)
			}
			if riff := binary.LittleEndian.Uint32(b[4:]); int(riff) != len(b)-8 {
				t.Fatalf("RIFF size %d for a %d byte file", riff, len(b))
			}
			if tc.format != FormatPCM16 {
				if fact := binary.LittleEndian.Uint32(b[46:]); int64(fact) != tc.want {
					t.Fatalf("fact %d", fact)
				}
			}
			// Fixing again changes nothing.
			if n2, err := FixWAV(f); err != nil || n2 != n || int64(len(fileBytes(t, f))) != tc.wantSize {
				t.Fatalf("second FixWAV = %d, %v", n2, err)
			}
		})
	}
}

func TestFixWAVClosedFileUnchanged(t *testing.T) {
	f := tempFile(t)
	w, _ := NewWAVWriter(f, FormatULaw)
	w.Write(make([]int16, 5))
	w.Close()
	before := fileBytes(t, f)
	if n, err := FixWAV(f); err != nil || n != 5 {
		t.Fatalf("FixWAV = %d, %v", n, err)
	}
	if !bytes.Equal(before, fileBytes(t, f)) {
		t.Fatal("a good file was changed")
	}
}

func TestFixWAVBadHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"riff only", []byte("RIFF\x00\x00\x00\x00WAVE")},
		{"cut in fmt", []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00")},
		{"not wav", []byte("ID3 something else entirely...")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tempFile(t)
			f.Write(tc.data)
			if _, err := FixWAV(f); !errors.Is(err, ErrUnsupportedWAV) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func sinTest(cycles float64) float64 { return math.Sin(2 * math.Pi * cycles) }

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// goertzelPower is a plain reference Goertzel for tests.
func goertzelPower(x []int16, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/SampleRate)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// writeWAVFile streams pcm through a WAVWriter in 20 ms frames to a file
// and returns the file's bytes.
func writeWAVFile(t *testing.T, pcm []int16, format Format) []byte {
	t.Helper()
	f := tempFile(t)
	w, err := NewWAVWriter(f, format)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(pcm); i += 160 {
		if err := w.Write(pcm[i:min(i+160, len(pcm))]); err != nil {
			t.Fatal(err)
		}
	}
	if w.Samples() != int64(len(pcm)) {
		t.Fatalf("Samples = %d", w.Samples())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return fileBytes(t, f)
}
