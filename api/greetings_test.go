package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// ulawStream is a µ-law WAV of n samples at 8000 Hz, generated as it is
// read (a 1-hour file never exists in memory); dataSize is what the header
// announces.
type ulawStream struct {
	hdr  []byte
	n    int64
	sent int64
}

func newULawStream(n int64, dataSize uint32) *ulawStream {
	var h bytes.Buffer
	h.WriteString("RIFF")
	binary.Write(&h, binary.LittleEndian, uint32(0xFFFFFFFF))
	h.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(7), uint16(1), uint32(8000), uint32(8000), uint16(1), uint16(8)} {
		binary.Write(&h, binary.LittleEndian, v)
	}
	h.WriteString("data")
	binary.Write(&h, binary.LittleEndian, dataSize)
	return &ulawStream{hdr: h.Bytes(), n: n}
}

func (u *ulawStream) Read(p []byte) (int, error) {
	if len(u.hdr) > 0 {
		n := copy(p, u.hdr)
		u.hdr = u.hdr[n:]
		return n, nil
	}
	if u.sent >= u.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), u.n-u.sent)
	for i := range p[:k] {
		p[i] = byte(0x80 + (u.sent+int64(i))%32) // a quiet saw, not silence
	}
	u.sent += k
	return int(k), nil
}

// TestGreetingLengthCap: a 1-hour µ-law upload (28.8 MB) gets 413 whether
// its header tells the truth or not, and the server allocates a small,
// fixed amount for it (four at once included) instead of the file's size.
func TestGreetingLengthCap(t *testing.T) {
	f := newFixture(t)
	if res, b := f.do(t, "POST", "/api/v1/mailboxes", token, `{"number":"1001"}`); res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, b)
	}
	const hour = 3600 * 8000
	put := func(body io.Reader) (int, string) {
		req := httptest.NewRequest("PUT", "/api/v1/mailboxes/1001/greetings/unavailable", body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "audio/wav")
		rec := httptest.NewRecorder()
		f.api.ServeHTTP(rec, req)
		var e errBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e.Error.Code
	}
	for _, c := range []struct {
		name     string
		declared uint32
	}{{"honest header", hour}, {"unknown size", math.MaxUint32}} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var wg sync.WaitGroup
		codes := make([]int, 4)
		errs := make([]string, 4)
		streams := make([]*ulawStream, 4)
		for i := range 4 {
			streams[i] = newULawStream(hour, c.declared)
			wg.Add(1)
			go func() { defer wg.Done(); codes[i], errs[i] = put(streams[i]) }()
		}
		wg.Wait()
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		for i := range 4 {
			if codes[i] != 413 || errs[i] != "too_long" {
				t.Errorf("%s: %d %s", c.name, codes[i], errs[i])
			}
			if streams[i].sent > 121*8000+64<<10 {
				t.Errorf("%s: read %d bytes of the body, want at most the limit and a buffer", c.name, streams[i].sent)
			}
		}
		// 4 uploads × (≈2 MB of output at the limit + buffers); reading the
		// files whole would be 4 × 28.8 MB before any conversion.
		if alloc > 24<<20 {
			t.Errorf("%s: %d MB allocated for four 1-hour uploads", c.name, alloc>>20)
		}
		t.Logf("%s: %.1f MB allocated for four uploads", c.name, float64(alloc)/(1<<20))
	}
	// Up to the limit is fine, and the content is the uploaded audio.
	code, _ := put(newULawStream(120*8000, 120*8000))
	if code != 200 {
		t.Fatalf("120 s greeting: %d", code)
	}
	fl, err := f.blobs.Open(store.GreetingKey("default", "1001", "unavailable"))
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	got, err := media.ReadWAV(fl)
	if err != nil || len(got) != 120*8000 {
		t.Fatalf("stored greeting: %d samples %v", len(got), err)
	}
	want, _ := media.ReadWAV(newULawStream(120*8000, 120*8000))
	if !slices.Equal(got, want) {
		t.Error("stored greeting differs from the upload")
	}
}
