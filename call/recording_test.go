package call

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// fullDisk passes writes through until limit bytes, then fails them with
// ENOSPC as a full file system would (a short write, then the error).
type fullDisk struct {
	io.WriteSeeker
	left int64
}

func (d *fullDisk) Write(p []byte) (int, error) {
	n := int(min(int64(len(p)), max(d.left, 0)))
	n, err := d.WriteSeeker.Write(p[:n])
	d.left -= int64(n)
	if err == nil && n < len(p) {
		err = &os.PathError{Op: "write", Path: "part", Err: syscall.ENOSPC}
	}
	return n, err
}

type createdMessages []*store.Message

func (c *createdMessages) CreateMessage(_ context.Context, m *store.Message) error {
	*c = append(*c, m)
	return nil
}

// A recording that runs out of space mid-way stops, keeps every sample
// that reached the disk with a valid header, and becomes a message.
func TestRecorderNoSpaceKeepsAudio(t *testing.T) {
	blobs, err := store.NewFSBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const header, kept = 44, 16050      // 2.006 s of PCM16 reach the disk
	limit := int64(header + 2*kept + 1) // plus half a sample, cut off
	meta := partMeta{Tenant: "default", Mailbox: "1001", ID: store.NewMessageID(), ReceivedAt: time.Now().UTC(), Format: "pcm16"}
	rec, err := newRecorderTo(blobs, newWriters(), meta, media.FormatPCM16, 60, 0, 500, func(w io.WriteSeeker) io.WriteSeeker {
		return &fullDisk{WriteSeeker: w, left: limit}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Up to the frame that sends the fourth half second to the file,
	// which fails: no write comes after it, yet the recording must stop
	// (the file is written behind; its writer reports the failure).
	tone := media.Tone(700, 4*time.Second, 0.5)[:4*4096+160]
	for f := tone; len(f) > 0; f = f[min(160, len(f)):] {
		rec.WriteFrame(f[:min(160, len(f))])
	}
	select {
	case e := <-rec.ended:
		if e != endNoSpace {
			t.Fatalf("recording ended %v, want no space", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the recording did not signal the full disk")
	}
	dur, err := rec.finish()
	if err != nil {
		t.Fatalf("finish after ENOSPC: %v", err)
	}
	if want := int64(kept * 1000 / media.SampleRate); dur != want {
		t.Errorf("duration %d ms, want %d", dur, want)
	}
	var got createdMessages
	m, err := rec.commit(context.Background(), &got, dur, false)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if len(got) != 1 || got[0].ID != meta.ID {
		t.Fatalf("messages created: %+v", got)
	}
	f, err := blobs.Open(m.MediaKey)
	if err != nil {
		t.Fatalf("the recording is gone: %v", err)
	}
	defer f.Close()
	pcm, err := media.ReadWAV(f)
	if err != nil {
		t.Fatalf("stored WAV: %v", err)
	}
	if !slices.Equal(pcm, tone[:kept]) {
		t.Errorf("stored %d samples; want the first %d sent, unchanged", len(pcm), kept)
	}
	if parts, _ := blobs.Parts(); len(parts) != 0 {
		t.Errorf("parts left: %v", parts)
	}
}

// TestRecorderG711: a recording given its frames as G.711 codes (as the
// receiver does on the way to a PCM16 file) ends at the same point, for
// the same reason, with the same file, as one given them decoded.
func TestRecorderG711(t *testing.T) {
	loud := make([]byte, 3*media.SampleRate)
	for i := range loud {
		loud[i] = byte(i % 0x70) // large samples, both signs
	}
	quiet := bytes.Repeat([]byte{0xFF}, 3*media.SampleRate)
	for _, tc := range []struct {
		name            string
		codes           []byte
		max, silenceSec int
		end             recordEnd
	}{
		{"silence ends it", append(slices.Clone(loud), quiet...), 60, 2, endSilence},
		{"maximum ends it", append(slices.Clone(loud), quiet...), 2, 0, endMax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files [2][]byte
			var durs [2]int64
			for i, codes := range []bool{false, true} {
				blobs, err := store.NewFSBlobs(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				meta := partMeta{Tenant: "default", Mailbox: "1001", ID: store.NewMessageID(), ReceivedAt: time.Now().UTC(), Format: "pcm16"}
				rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, tc.max, tc.silenceSec, 500)
				if err != nil {
					t.Fatal(err)
				}
				h := &handoffSink{}
				if codes && h.WriteG711(media.PCMU, tc.codes[:160]) {
					t.Fatal("the hand-off took codes before the recorder was there")
				}
				h.handOver(rec)
				pcm := make([]int16, 160)
				for f := tc.codes; len(f) > 0; f = f[160:] {
					if codes {
						if !h.WriteG711(media.PCMU, f[:160]) {
							t.Fatal("codes refused")
						}
						continue
					}
					media.PCMU.Decode(pcm, f[:160])
					h.WriteFrame(pcm)
				}
				select {
				case e := <-rec.ended:
					if e != tc.end {
						t.Fatalf("ended %v, want %v", e, tc.end)
					}
				default:
					t.Fatal("the recording did not end")
				}
				if durs[i], err = rec.finish(); err != nil {
					t.Fatal(err)
				}
				var got createdMessages
				m, err := rec.commit(context.Background(), &got, durs[i], false)
				if err != nil {
					t.Fatal(err)
				}
				f, err := blobs.Open(m.MediaKey)
				if err != nil {
					t.Fatal(err)
				}
				files[i], err = io.ReadAll(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			if durs[0] != durs[1] || !bytes.Equal(files[0], files[1]) {
				t.Fatalf("codes: %d ms, %d bytes; decoded: %d ms, %d bytes", durs[1], len(files[1]), durs[0], len(files[0]))
			}
			if durs[0] < 2000 || durs[0] > 3500 {
				t.Fatalf("duration %d ms", durs[0])
			}
		})
	}
}
