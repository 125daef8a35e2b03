package testcalls

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// pcm16WAV is a canonical 44-byte-header WAV of 8 kHz mono PCM16.
func pcm16WAV(samples []int16) []byte {
	var b bytes.Buffer
	data := 2 * len(samples)
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+data))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(data))
	binary.Write(&b, binary.LittleEndian, samples)
	return b.Bytes()
}

// TestMediaIntegrityAfterCrash prepares, in a stopped server's media
// folder, what crashes leave (docs/storage.md): a committed recording
// with its sidecar and no row (the process died between the commit and
// the row), a message WAV and a greeting that nothing owns (a deletion
// died between the row and the file), older than media.orphan_grace, and
// a young unowned WAV. After the restart the recording is a message with
// its audio sample-exact, the old orphans are gone, the young one stays.
func TestMediaIntegrityAfterCrash(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.stop()
	mediaDir := filepath.Join(s.dataDir, "media")
	write := func(key string, data []byte, age time.Duration) string {
		t.Helper()
		p := filepath.Join(mediaDir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		then := time.Now().Add(-age)
		if err := os.Chtimes(p, then, then); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newID := func() string { return uuid.Must(uuid.NewV7()).String() }

	// 3 s of a known, never-silent signal.
	pcm := make([]int16, 3*8000)
	for i := range pcm {
		pcm[i] = int16((i*7919)%20000 - 10000)
	}
	id := newID()
	received := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	side, _ := json.Marshal(map[string]any{"tenant": "default", "mailbox": "1001", "id": id,
		"caller_id": "+33612345678", "caller_name": "Crash Test", "received_at": received, "format": "pcm16"})
	key := "default/1001/" + id + ".wav"
	// The WAV is older than the shared-folder grace of the recovery (2 min).
	write(key, pcm16WAV(pcm), 10*time.Minute)
	write(key+".part.json", side, 10*time.Minute)

	orphan := write("default/1001/"+newID()+".wav", pcm16WAV(pcm[:800]), 2*time.Hour)
	greeting := write("default/9999/greetings/busy.wav", pcm16WAV(pcm[:800]), 2*time.Hour)
	young := write("default/1001/"+newID()+".wav", pcm16WAV(pcm[:800]), 0)

	s2 := startServer(t, s.dataDir)
	msgs := s2.waitMessages(t, "1001", 1, 20*time.Second)
	var got *apiMessage
	for i := range msgs {
		if msgs[i].ID == id {
			got = &msgs[i]
		}
	}
	if got == nil {
		t.Fatalf("the committed recording is not listed after the restart: %+v", msgs)
	}
	if got.CallerID != "+33612345678" || got.CallerName != "Crash Test" || got.DurationMS != 3000 || got.Folder != "new" {
		t.Errorf("recovered message = %+v", *got)
	}
	w, err := parseWAV(s2.audio(t, "1001", id))
	if err != nil {
		t.Fatal(err)
	}
	if n, first := mismatches(w.samples, pcm, 0, 0, len(pcm), nil); n > 0 || len(w.samples) != len(pcm) {
		t.Errorf("recovered audio: %d samples (want %d), %d differ, first at %d", len(w.samples), len(pcm), n, first)
	}
	if _, err := os.Stat(filepath.Join(mediaDir, filepath.FromSlash(key)+".part.json")); !os.IsNotExist(err) {
		t.Errorf("sidecar still there after recovery: %v", err)
	}

	// The sweep runs at start-up, in the background.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, e1 := os.Stat(orphan)
		_, e2 := os.Stat(greeting)
		if os.IsNotExist(e1) && os.IsNotExist(e2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphans still there after 20 s: message %v, greeting %v", e1, e2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The files go before the sweep's counters and its summary line.
	waitFor(t, "the log line of the orphan sweep", 20*time.Second, func() bool {
		return strings.Contains(s2.log.String(), "media orphan sweep")
	})
	if _, err := os.Stat(young); err != nil {
		t.Errorf("an orphan younger than the grace was removed: %v", err)
	}
	res, body := s2.call(t, "GET", "/metrics", "", nil)
	for _, want := range []string{`voicemail_media_orphans_removed_total{kind="message"} 1`, `voicemail_media_orphans_removed_total{kind="greeting"} 1`} {
		if res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
