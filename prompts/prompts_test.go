package prompts

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// manifest reads manifest.tsv: name -> text.
func manifest(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("manifest.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, text, ok := strings.Cut(line, "\t")
		if !ok || name == "" || text == "" {
			t.Fatalf("bad manifest line %q", line)
		}
		if _, dup := m[name]; dup {
			t.Fatalf("duplicate manifest name %q", name)
		}
		m[name] = text
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEmbeddedMatchesManifest(t *testing.T) {
	m := manifest(t)
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	names := s.Names()
	if !slices.IsSorted(names) {
		t.Error("Names not sorted")
	}
	want := make([]string, 0, len(m))
	for k := range m {
		want = append(want, k)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("embedded prompts differ from manifest.tsv (run bash prompts/generate.sh)\n got %v\nwant %v", names, want)
	}
	for _, n := range names {
		pcm, ok := s.Get(n)
		if !ok || len(pcm) < 800 { // at least 0.1 s
			t.Errorf("%s: %d samples", n, len(pcm))
		}
		peak := 0
		for _, v := range pcm {
			peak = max(peak, abs(int(v)))
		}
		if peak < 8000 {
			t.Errorf("%s: peak %d, not normalised", n, peak)
		}
	}
}

// TestEmbeddedFilesArePlain checks the committed files are plain RIFF fmt+data, 8 kHz mono PCM16.
func TestEmbeddedFilesArePlain(t *testing.T) {
	err := filepath.WalkDir("en", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
			t.Errorf("%s: not a plain 44-byte-header WAV", p)
			return nil
		}
		if f, ch, rate, bits := binary.LittleEndian.Uint16(b[20:]), binary.LittleEndian.Uint16(b[22:]),
			binary.LittleEndian.Uint32(b[24:]), binary.LittleEndian.Uint16(b[34:]); f != 1 || ch != 1 || rate != 8000 || bits != 16 {
			t.Errorf("%s: format %d channels %d rate %d bits %d", p, f, ch, rate, bits)
		}
		if int(binary.LittleEndian.Uint32(b[40:]))+44 != len(b) {
			t.Errorf("%s: data size does not match file length", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every name a composition function can emit must be in the manifest.
func TestComposedNamesExist(t *testing.T) {
	m := manifest(t)
	check := func(what string, names []string) {
		t.Helper()
		for _, n := range names {
			if _, ok := m[n]; !ok {
				t.Fatalf("%s emits %q, which is not in manifest.tsv", what, n)
			}
		}
	}
	check("Digits", Digits("0123456789*#+- a"))
	for n := -1000; n <= 999999; n++ {
		if n > 20000 && n%997 != 0 && n != 999999 {
			continue
		}
		check("Number", Number(n))
	}
	check("Number", Number(1234567))
	check("Counted", Counted(0, "vm-message", "vm-messages"))
	check("Counted", Counted(1, "vm-message", "vm-messages"))
	check("Counted", Counted(42, "vm-message", "vm-messages"))
	now := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	for ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); ts.Before(now); ts = ts.Add(37 * time.Minute) {
		check("DateTime", DateTime(ts, now))
	}
}

func TestDigits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"1001", []string{"digits/1", "digits/0", "digits/0", "digits/1"}},
		{"*9#", []string{"digits/star", "digits/9", "digits/pound"}},
		{"+49 (30) 12-3", []string{"digits/4", "digits/9", "digits/3", "digits/0", "digits/1", "digits/2", "digits/3"}},
		{"abc", []string{}},
	} {
		if got := Digits(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Digits(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		in   int
		want string
	}{
		{0, "num/0"},
		{7, "num/7"},
		{13, "num/13"},
		{19, "num/19"},
		{20, "num/20"},
		{21, "num/20 num/1"},
		{99, "num/90 num/9"},
		{100, "num/1 num/hundred"},
		{105, "num/1 num/hundred num/5"},
		{110, "num/1 num/hundred num/10"},
		{342, "num/3 num/hundred num/40 num/2"},
		{1000, "num/1 num/thousand"},
		{1001, "num/1 num/thousand num/1"},
		{2024, "num/2 num/thousand num/20 num/4"},
		{12345, "num/12 num/thousand num/3 num/hundred num/40 num/5"},
		{999999, "num/9 num/hundred num/90 num/9 num/thousand num/9 num/hundred num/90 num/9"},
		{1000000, "digits/1 digits/0 digits/0 digits/0 digits/0 digits/0 digits/0"},
		{-42, "digits/4 digits/2"},
		{math.MinInt64, strings.Join(Digits("9223372036854775808"), " ")},
	} {
		if got := strings.Join(Number(tc.in), " "); got != tc.want {
			t.Errorf("Number(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCounted(t *testing.T) {
	for _, tc := range []struct {
		in   int
		want string
	}{
		{0, "vm-no vm-messages"},
		{1, "num/1 vm-message"},
		{2, "num/2 vm-messages"},
		{3, "num/3 vm-messages"},
		{21, "num/20 num/1 vm-messages"},
	} {
		if got := strings.Join(Counted(tc.in, "vm-message", "vm-messages"), " "); got != tc.want {
			t.Errorf("Counted(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDateTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no tzdata (apt-get install tzdata):", err)
		}
		t.Skip("no tzdata:", err)
	}
	now := time.Date(2025, 3, 15, 16, 30, 0, 0, time.UTC) // Saturday; 12:30 in New York (EDT)
	for _, tc := range []struct {
		name string
		t    time.Time
		want string
	}{
		{"today pm oh", time.Date(2025, 3, 15, 15, 5, 0, 0, time.UTC), "today vm-at num/3 time/oh num/5 time/pm"},
		{"today oclock am", time.Date(2025, 3, 15, 10, 0, 0, 0, time.UTC), "today vm-at num/10 time/oclock time/am"},
		{"midnight", time.Date(2025, 3, 15, 0, 30, 0, 0, time.UTC), "today vm-at num/12 num/30 time/am"},
		{"noon", time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC), "today vm-at num/12 time/oclock time/pm"},
		{"yesterday", time.Date(2025, 3, 14, 23, 59, 0, 0, time.UTC), "yesterday vm-at num/11 num/50 num/9 time/pm"},
		{"older", time.Date(2025, 3, 3, 9, 15, 0, 0, time.UTC), "day/monday month/march ord/3 vm-at num/9 num/15 time/am"},
		{"ord 22", time.Date(2025, 2, 22, 13, 1, 0, 0, time.UTC), "day/saturday month/february ord/22 vm-at num/1 time/oh num/1 time/pm"},
		{"other year", time.Date(2024, 12, 31, 18, 45, 0, 0, time.UTC), "day/tuesday month/december ord/31 num/2 num/thousand num/20 num/4 vm-at num/6 num/40 num/5 time/pm"},
		{"yesterday across month", time.Date(2025, 2, 28, 8, 0, 0, 0, time.UTC), "day/friday month/february ord/28 vm-at num/8 time/oclock time/am"},
		// In New York it is still the 15th at 12:30; 02:00 UTC on the 15th is 22:00 on the 14th there.
		{"zone yesterday", time.Date(2025, 3, 15, 2, 0, 0, 0, time.UTC).In(ny), "yesterday vm-at num/10 time/oclock time/pm"},
		{"zone today", time.Date(2025, 3, 15, 14, 7, 0, 0, time.UTC).In(ny), "today vm-at num/10 time/oh num/7 time/am"},
	} {
		if got := strings.Join(DateTime(tc.t, now), " "); got != tc.want {
			t.Errorf("%s: DateTime(%v) = %q, want %q", tc.name, tc.t, got, tc.want)
		}
	}
	// Yesterday across a month boundary.
	mar1 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	if got := Date(time.Date(2025, 2, 28, 20, 0, 0, 0, time.UTC), mar1); !slices.Equal(got, []string{"yesterday"}) {
		t.Errorf("Date across month = %v", got)
	}
	// Yesterday across a DST change (spring forward in New York, 2025-03-09).
	dst := time.Date(2025, 3, 10, 0, 30, 0, 0, ny)
	if got := Date(time.Date(2025, 3, 9, 1, 0, 0, 0, ny), dst); !slices.Equal(got, []string{"yesterday"}) {
		t.Errorf("Date across DST = %v", got)
	}
}

func wavBytes(format, channels, rate, bits int, data []byte) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(4+8+16+8+len(data)+8+4))
	b.WriteString("WAVE")
	b.WriteString("LIST") // a metadata chunk the reader must skip
	binary.Write(&b, le, uint32(4))
	b.WriteString("INFO")
	b.WriteString("fmt ")
	binary.Write(&b, le, uint32(16))
	binary.Write(&b, le, uint16(format))
	binary.Write(&b, le, uint16(channels))
	binary.Write(&b, le, uint32(rate))
	binary.Write(&b, le, uint32(rate*channels*bits/8))
	binary.Write(&b, le, uint16(channels*bits/8))
	binary.Write(&b, le, uint16(bits))
	b.WriteString("data")
	binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func pcm16(samples ...int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

// The decoding itself is media.ReadWAV's; this checks Load feeds it every kind of file.
func TestDecodeFormats(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
		want []int16
	}{
		{"pcm16 mono", wavBytes(1, 1, 8000, 16, pcm16(1, -2, 30000)), []int16{1, -2, 30000}},
		{"pcm16 stereo", wavBytes(1, 2, 8000, 16, pcm16(100, 300, -100, -300)), []int16{200, -200}},
		{"pcm8", wavBytes(1, 1, 8000, 8, []byte{128, 255, 0}), []int16{0, 127 << 8, -128 << 8}},
		{"ulaw", wavBytes(7, 1, 8000, 8, []byte{0xFF, 0x80, 0x00}), []int16{0, 32124, -32124}},
		{"alaw", wavBytes(6, 1, 8000, 8, []byte{0xD5, 0xAA, 0x2A}), []int16{8, 32256, -32256}},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x.wav"), tc.file, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Load(dir)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got, _ := s.Get("x"); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "wide.wav"), wavBytes(1, 1, 16000, 16, pcm16(make([]int16, 1600)...)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("wide"); len(got) != 800 {
		t.Errorf("16 kHz file: %d samples at 8 kHz, want 800", len(got))
	}
}

func TestLoadOverrides(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "digits"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(rel string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vm-goodbye.wav", wavBytes(1, 1, 8000, 16, pcm16(1, 2, 3)))
	write("digits/1.WAV", wavBytes(7, 1, 8000, 8, []byte{0x80}))
	write("custom-hello.wav", wavBytes(1, 1, 8000, 16, pcm16(9)))
	write("README.txt", []byte("ignored"))

	base, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("vm-goodbye"); !slices.Equal(got, []int16{1, 2, 3}) {
		t.Errorf("vm-goodbye not overridden: %d samples", len(got))
	}
	if got, _ := s.Get("digits/1"); !slices.Equal(got, []int16{32124}) {
		t.Errorf("digits/1 not overridden: %v", got)
	}
	if _, ok := s.Get("custom-hello"); !ok {
		t.Error("custom-hello not added")
	}
	if a, _ := s.Get("digits/2"); len(a) == 0 {
		t.Error("digits/2 missing after override")
	}
	if got, _ := base.Get("vm-goodbye"); len(got) < 100 {
		t.Error("override leaked into another Set")
	}
	if len(s.Names()) != len(base.Names())+1 {
		t.Errorf("Names: %d vs %d", len(s.Names()), len(base.Names()))
	}

	pcm, err := s.Concat("vm-goodbye", "digits/1", "vm-goodbye")
	if err != nil || !slices.Equal(pcm, []int16{1, 2, 3, 32124, 1, 2, 3}) {
		t.Errorf("Concat = %v, %v", pcm, err)
	}
	if _, err := s.Concat("vm-goodbye", "no-such-prompt"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no-such-prompt") {
		t.Errorf("Concat missing: %v", err)
	}
	if pcm, err := s.Concat(); err != nil || len(pcm) != 0 {
		t.Errorf("empty Concat = %v, %v", pcm, err)
	}

	write("broken.wav", []byte("not a wav"))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "broken.wav") {
		t.Errorf("Load with a broken file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("Load of a missing dir succeeded")
	}
}

func TestConcatEmbedded(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	names := append([]string{"vm-theperson"}, Digits("1001")...)
	names = append(names, "vm-isunavail")
	pcm, err := s.Concat(names...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		p, _ := s.Get(name)
		n += len(p)
	}
	if len(pcm) != n {
		t.Errorf("Concat length %d, want %d", len(pcm), n)
	}
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(""); err != nil {
			b.Fatal(err)
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
