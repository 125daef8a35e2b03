package testcalls

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/minio/minio-go/v7"

	"github.com/vmserver/voicemail/internal/azuritetest"
	"github.com/vmserver/voicemail/internal/s3test"
	"github.com/vmserver/voicemail/internal/siptest"
)

// objectBucket reads the media objects behind the server's back.
type objectBucket interface {
	get(t *testing.T, key string) ([]byte, bool) // false when absent
}

type s3Bucket struct {
	s  *s3test.Server
	cl *minio.Client
}

func (b s3Bucket) get(t *testing.T, key string) ([]byte, bool) {
	t.Helper()
	ctx := context.Background()
	obj, err := b.cl.GetObject(ctx, b.s.Bucket, "vm/"+key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return data, true
}

type azureBucket struct{ s *azuritetest.Server }

func (b azureBucket) get(t *testing.T, key string) ([]byte, bool) {
	t.Helper()
	resp, err := b.s.Client(t).NewBlobClient("vm/"+key).DownloadStream(context.Background(), nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data, true
}

// TestObjectStoreS3 and TestObjectStoreAzure: a deposit through the real
// binary with its media on a real object store; the API serves the audio
// sample-exact (whole and by Range) from the store; GDPR forget keeps the
// object through the grace and the purge removes it.
func TestObjectStoreS3(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	srv := s3test.Start(t)
	objectStoreDeposit(t, s3Bucket{srv, srv.Client(t)}, srv.SecretKey, "--media", srv.URL("vm"),
		"--s3-access-key", srv.AccessKey, "--s3-secret-key", srv.SecretKey)
}

func TestObjectStoreAzure(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	srv := sharedAzurite(t)
	objectStoreDeposit(t, azureBucket{srv}, azuritetest.AccountKey, "--media", srv.URL("vm"), "--azure-account-key", azuritetest.AccountKey)
}

func objectStoreDeposit(t *testing.T, bucket objectBucket, secret string, media ...string) {
	s := mwiServer(t, "", append(media, "--gdpr-forget-grace", "2s", "--gdpr-sweep-interval", "200ms")...)
	if _, err := os.Stat(filepath.Join(s.dataDir, "media")); err == nil {
		t.Error("a media folder was created although media is an object store")
	}

	// The README's sipp call: its audio must come back sample for sample.
	leaveMessage(t, s)
	msgs := s.waitMessages(t, "1001", 1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("mailbox 1001: %+v", msgs)
	}
	id := msgs[0].ID
	key := "default/1001/" + id + ".wav"
	got := s.audio(t, "1001", id)
	stored, ok := bucket.get(t, key)
	if !ok || !bytes.Equal(stored, got) {
		t.Fatalf("API audio (%d bytes) differs from the object %s (%d bytes, present %v)", len(got), key, len(stored), ok)
	}
	w, err := parseWAV(got)
	if err != nil {
		t.Fatal(err)
	}
	ulaw, err := os.ReadFile(filepath.Join(testDir, "audio", "message.ulaw"))
	if err != nil {
		t.Fatal(err)
	}
	want := siptest.Decode(0, ulaw)
	// Sample-exact after alignment: on a loaded machine the first packet
	// may come after the recording started or be dropped as late.
	rec := w.samples
	off, aligned := findOffset(rec, want)
	if !aligned || off < 0 || off > 8000 {
		t.Fatalf("downloaded audio (%d samples) not found at the start of the sent message (offset %d, %v)", len(rec), off, aligned)
	}
	upto := min(len(rec), len(want)-off)
	if upto < 5*8000 {
		t.Fatalf("only %d samples of the message came back", upto)
	}
	if n, first := mismatches(rec, want, off, 0, upto, nil); n > 0 {
		t.Fatalf("%d downloaded samples differ from the sent audio, first at %d", n, first)
	}
	// A Range request is answered from the store.
	req, _ := http.NewRequest("GET", s.url("/api/v1/mailboxes/1001/messages/"+id+"/audio"), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Range", "bytes=44-8043")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, got[44:8044]) {
		t.Errorf("Range download: %d, %d bytes, equal %v", resp.StatusCode, len(part), bytes.Equal(part, got[44:min(8044, len(got))]))
	}

	// GDPR: a message from the forgotten number is hidden at once, its
	// object stays through the grace, then the purge deletes it.
	depositFrom(t, s, "1001", "+17815551212")
	all := s.waitMessages(t, "1001", 2, 20*time.Second)
	var gone string
	for _, m := range all {
		if m.ID != id {
			gone = m.ID
		}
	}
	if gone == "" {
		t.Fatalf("second deposit missing: %+v", all)
	}
	goneKey := "default/1001/" + gone + ".wav"
	if _, ok := bucket.get(t, goneKey); !ok {
		t.Fatalf("object %s of a listed message is missing", goneKey)
	}
	s.gdpr(t, "forget")
	if got := messageIDs(s.messages(t, "1001")); len(got) != 1 || got[0] != id {
		t.Errorf("1001 after forget: %v, want only %s", got, id)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, ok := bucket.get(t, goneKey); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("object %s still in the store 20 s after the forget (grace 2 s)", goneKey)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, ok := bucket.get(t, key); !ok {
		t.Error("the purge removed the other caller's message")
	}
	// Deleting through the API removes the object too.
	if code, body, err := s.api("DELETE", "/api/v1/mailboxes/1001/messages/"+id, nil, nil); err != nil || code/100 != 2 {
		t.Fatalf("DELETE message: %d %v %s", code, err, body)
	}
	if _, ok := bucket.get(t, key); ok {
		t.Error("object still there after DELETE")
	}
	// A greeting uploaded through the API lives in the store, and a
	// deposit finds it there (one listing of the mailbox's greetings).
	req, _ = http.NewRequest("PUT", s.url("/api/v1/mailboxes/1002/greetings/busy"), bytes.NewReader(makeWAV(siptest.Tone(busyHz, 12000, 8000))))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "audio/wav")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("PUT greeting: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, ok := bucket.get(t, "default/1002/greetings/busy.wav"); !ok {
		t.Error("the greeting is not in the store")
	}
	rx := greetingHeard(t, s, "1002", "486")
	if pb, pu := siptest.Goertzel(rx, busyHz), siptest.Goertzel(rx, unavailableHz); pb < 10*pu || findTone(rx, busyHz, 0) < 0 {
		t.Errorf("busy deposit: the greeting heard is not the uploaded %v Hz one (power %.0f against %.0f)", busyHz, pb, pu)
	}
	if strings.Contains(s.log.String(), secret) {
		t.Error("the server logged the object store secret")
	}
}

// TestMigrateCLIToS3 is the single-node user's move: deposit on SQLite +
// folder, stop, `voicemail migrate` to a new database and a bucket, start
// on the copy: the message and the greeting are served from the bucket
// with the same bytes. A second run copies nothing.
func TestMigrateCLIToS3(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	old := mwiServer(t, "")
	depositFrom(t, old, "1001", "+16175551414")
	msgs := old.waitMessages(t, "1001", 1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("deposit: %+v", msgs)
	}
	audio := old.audio(t, "1001", msgs[0].ID)
	old.putGreeting(t, "1001", "unavailable", siptest.Tone(440, 8000, 4000))
	old.stop()

	newDir := t.TempDir()
	args := []string{"migrate",
		"--from", "sqlite://" + filepath.Join(old.dataDir, "voicemail.db"),
		"--from-media", "file://" + filepath.Join(old.dataDir, "media"),
		"--to", "sqlite://" + filepath.Join(newDir, "voicemail.db"),
		"--to-media", srv.URL("vm")}
	env := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey}
	stdout, stderr, rc := old.cli(t, env, args...)
	if rc != 0 || !strings.Contains(stdout, "messages 1 copied 0 present") || !strings.Contains(stdout, "greetings 1 copied") || !strings.Contains(stdout, "verified") {
		t.Fatalf("migrate: exit %d\n%s%s", rc, stdout, stderr)
	}
	if !strings.Contains(stderr, "1/1 messages") {
		t.Errorf("no progress line on stderr: %q", stderr)
	}
	stdout, stderr, rc = old.cli(t, env, args...)
	if rc != 0 || !strings.Contains(stdout, "messages 0 copied 1 present") || !strings.Contains(stdout, "greetings 0 copied 1 present") {
		t.Fatalf("second migrate: exit %d\n%s%s", rc, stdout, stderr)
	}
	if _, stderr, rc := old.cli(t, nil, "migrate", "--to", "sqlite://x.db"); rc != 2 || !strings.Contains(stderr, "--to-media") {
		t.Errorf("migrate without --to-media: exit %d %q", rc, stderr)
	}

	s := mwiServer(t, newDir, "--media", srv.URL("vm"), "--s3-access-key", srv.AccessKey, "--s3-secret-key", srv.SecretKey)
	if got := s.audio(t, "1001", msgs[0].ID); !bytes.Equal(got, audio) {
		t.Errorf("migrated audio differs: %d bytes, want %d", len(got), len(audio))
	}
	if _, ok := (s3Bucket{srv, srv.Client(t)}).get(t, "default/1001/greetings/unavailable.wav"); !ok {
		t.Error("greeting not in the bucket")
	}
	if code, body, err := s.api("GET", "/api/v1/mailboxes/1001/greetings/unavailable", nil, nil); err != nil || code != 200 || !bytes.Equal(body, makeWAV(siptest.Tone(440, 8000, 4000))) {
		t.Errorf("GET migrated greeting: %d %v, %d bytes", code, err, len(body))
	}
}

// TestObjectStoreCrashRecovery: SIGKILL mid-recording with media on S3.
// The part in the local spool becomes a message at the next start: the
// object is uploaded before the row, the spool is emptied, and the audio
// served from the bucket is a stretch of what was sent.
func TestObjectStoreCrashRecovery(t *testing.T) {
	t.Parallel()
	requireSipp(t)
	srv := s3test.Start(t)
	media := []string{"--media", srv.URL("vm"), "--s3-access-key", srv.AccessKey, "--s3-secret-key", srv.SecretKey}
	s := startServer(t, "", media...)
	const pcap = "audio_pcmu_long.pcap"
	p := startSipp(t, s, "uac_deposit.xml", "1001",
		"codec_pt", "0", "codec_name", "PCMU", "pcap", pcapPath(pcap), "pause_ms", pauseFor(pcap))
	const minBytes = 44 + 3*8000*2 // 3 s of PCM16
	deadline := time.Now().Add(30 * time.Second)
	for {
		var size int64
		for _, f := range s.mediaFiles(t, ".part") {
			if st, err := os.Stat(f); err == nil {
				size = max(size, st.Size())
			}
		}
		if size >= minBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 s .part file in the spool after 30 s (have %v)", s.mediaFiles(t, ".part"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.kill()
	p.kill()

	s2 := startServer(t, s.dataDir, media...)
	msgs := s2.waitMessages(t, "1001", 1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("after restart 1001 has %+v", msgs)
	}
	got := s2.audio(t, "1001", msgs[0].ID)
	obj, ok := (s3Bucket{srv, srv.Client(t)}).get(t, "default/1001/"+msgs[0].ID+".wav")
	if !ok || !bytes.Equal(obj, got) {
		t.Fatalf("served audio differs from the object (present %v)", ok)
	}
	if left := s2.mediaFiles(t, ".part", ".part.json"); len(left) > 0 {
		t.Errorf("spool not emptied after recovery: %v", left)
	}
	w, err := parseWAV(got)
	if err != nil {
		t.Fatal(err)
	}
	rec := w.samples
	if len(rec) < 3*8000 {
		t.Fatalf("recovered message holds %d samples, want at least 3 s", len(rec))
	}
	rec = rec[:len(rec)-160]
	dec := siptest.RoundTrip(siptest.PCMU, longSource(t))
	if off, ok := findOffset(rec, dec); !ok {
		t.Errorf("the recovered audio is not found in the sent audio")
	} else if n, first := mismatches(rec, dec, off, 0, len(rec), nil); n > 0 {
		t.Errorf("%d recovered samples differ from the sent audio, first at %d", n, first)
	}
}

// azurite is the Azure emulator of the package, started by TestMain
// before the call tests run; azuriteErr says why there is none.
var (
	azurite    *azuritetest.Server
	azuriteErr error
)

// sharedAzurite returns the package's emulator, or fails the test in CI
// (skips it elsewhere) with the reason and the install hint.
func sharedAzurite(t *testing.T) *azuritetest.Server {
	t.Helper()
	if azurite == nil {
		skipOrFail(t, fmt.Sprint(azuriteErr))
	}
	return azurite
}
