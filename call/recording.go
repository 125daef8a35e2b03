package call

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vmserver/voicemail/diskspace"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/phone"
	"github.com/vmserver/voicemail/store"
)

// MessageCreator is the store method that turns a recording into a message.
type MessageCreator interface {
	CreateMessage(ctx context.Context, m *store.Message) error
}

// partMeta is the sidecar of a recording in progress: what start-up
// recovery needs to turn a crashed recording into a message (docs/storage.md).
type partMeta struct {
	Tenant     string    `json:"tenant"`
	Mailbox    string    `json:"mailbox"`
	ID         string    `json:"id"`
	CallerID   string    `json:"caller_id"`
	CallerName string    `json:"caller_name"`
	ReceivedAt time.Time `json:"received_at"`
	Format     string    `json:"format"`
}

// recorder streams received audio into a WAV part on the volume and watches
// for the limits that end a recording. WriteFrame runs on the media receive
// goroutine, the rest on the call goroutine.
type recorder struct {
	// What every frame touches first, together (see media.Session).
	mu sync.Mutex
	limits
	wav        *media.WAVWriter
	err        error
	noSpace    bool // the disk filled up: finish kept what reached the file
	durationMS int64

	meta  partMeta
	blobs store.Blobs
	log   *slog.Logger
	file  *store.BlobFile
	out   *writeBehind // the WAV's way to file
}

// limits ends a recording at its maximum length or after enough silence;
// both recorders (to a file, in memory) embed it and call it under their
// lock.
type limits struct {
	sil          media.SilenceDetector // a value: a pointer was one more cache line per frame
	silenceLimit int64                 // samples; 0 = off
	maxSamples   int64                 // 0 = off
	tail         int64                 // samples of trailing silence kept (recording.tail_ms)
	ended        chan recordEnd        // buffered 1: silence or max reached
	stopped      bool                  // no more frames
}

func newLimits(maxSeconds, silenceSeconds, tailMS int) limits {
	return limits{
		tail:         int64(max(tailMS, 0)) * media.SampleRate / 1000,
		sil:          *media.NewSilenceDetector(media.DefaultSilenceThreshold),
		silenceLimit: int64(silenceSeconds) * media.SampleRate,
		maxSamples:   int64(maxSeconds) * media.SampleRate,
		ended:        make(chan recordEnd, 1),
	}
}

// fits is how many of n new samples fit after have (all when unlimited).
func (l *limits) fits(n int, have int64) int {
	if l.maxSamples > 0 {
		return int(min(int64(n), max(l.maxSamples-have, 0)))
	}
	return n
}

// check feeds the new samples to the silence detector and signals the end
// when total samples reach the maximum or the silence lasts long enough.
func (l *limits) check(pcm []int16, total int64) {
	l.decide(l.sil.Feed(pcm), total)
}

func (l *limits) decide(run, total int64) {
	switch {
	case l.maxSamples > 0 && total >= l.maxSamples:
		l.signal(endMax)
	case l.silenceLimit > 0 && run >= l.silenceLimit:
		l.signal(endSilence)
	}
}

// checkG711 is check for a frame of G.711 codes.
func (l *limits) checkG711(c media.Codec, codes []byte, total int64) {
	l.decide(l.sil.FeedG711(c, codes), total)
}

// trailingTrim is how many samples of the total to cut at the end: the
// trailing silence beyond the kept tail, so the quiet decay of the last
// word stays (docs/configuration.md, recording.tail_ms).
// A recording that is all silence has no last word: it is trimmed whole.
func (l *limits) trailingTrim(total int64) int64 {
	run := l.sil.SilentRun()
	if run >= total {
		return total
	}
	return max(run-l.tail, 0)
}

func (l *limits) signal(e recordEnd) {
	l.stopped = true
	l.ended <- e
}

type recordEnd uint8

const (
	endSilence recordEnd = iota + 1
	endMax
	endNoSpace // a write failed for lack of space (recording stopped, kept)
)

func newRecorder(blobs store.Blobs, ws *writers, meta partMeta, f media.Format, maxSeconds, silenceSeconds, tailMS int) (*recorder, error) {
	return newRecorderTo(blobs, ws, meta, f, maxSeconds, silenceSeconds, tailMS, nil)
}

// newRecorderTo is newRecorder with the WAV written through wrap(file)
// when wrap is set: tests make writes fail at a chosen byte.
func newRecorderTo(blobs store.Blobs, ws *writers, meta partMeta, f media.Format, maxSeconds, silenceSeconds, tailMS int, wrap func(io.WriteSeeker) io.WriteSeeker) (*recorder, error) {
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)
	file, err := blobs.Create(key)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", key, err)
	}
	if err := blobs.WritePartMeta(key, meta); err != nil {
		_ = file.Abort()
		return nil, fmt.Errorf("recording %s: %w", key, err)
	}
	var to io.WriteSeeker = file
	if wrap != nil {
		to = wrap(file)
	}
	out := newWriteBehind(to, ws)
	w, err := media.NewWAVWriter(out, f)
	if err != nil {
		_ = file.Abort()
		return nil, fmt.Errorf("recording %s: %w", key, err)
	}
	r := &recorder{meta: meta, blobs: blobs, file: file, out: out, wav: w, limits: newLimits(maxSeconds, silenceSeconds, tailMS)}
	out.failed = r.writeFailed
	return r, nil
}

// writeFailed is told by the writer of a failed write of the file: the
// recording stops now (on a full disk, through the same end as a failed
// write seen by WriteFrame), not when the next frames would be written.
func (r *recorder) writeFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && !r.stopped {
		r.wrote(err)
	}
}

// WriteFrame implements media.FrameSink.
func (r *recorder) WriteFrame(pcm []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil || r.stopped {
		return
	}
	pcm = pcm[:r.fits(len(pcm), r.wav.Samples())]
	if r.wrote(r.wav.Write(pcm)) {
		r.check(pcm, r.wav.Samples())
	}
}

// WriteG711 implements media.G711Sink: the codes go to the WAV writer
// as they are when it keeps them so (media.WAVWriter.WriteG711).
func (r *recorder) WriteG711(c media.Codec, codes []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil || r.stopped {
		return true
	}
	codes = codes[:r.fits(len(codes), r.wav.Samples())]
	ok, err := r.wav.WriteG711(c, codes)
	if ok && r.wrote(err) {
		r.checkG711(c, codes, r.wav.Samples())
	}
	return ok
}

// wrote keeps a write's error and reports whether there was none. A full
// disk ends the recording; the call goroutine keeps what was written.
func (r *recorder) wrote(err error) bool {
	if err == nil {
		return true
	}
	r.err = err
	if diskspace.IsNoSpace(err) {
		r.signal(endNoSpace)
	}
	return false
}

// finish closes the WAV with trailing silence beyond the tail trimmed and returns its
// duration. The part stays until commit or discard.
func (r *recorder) finish() (durationMS int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true // no more frames
	if r.err == nil {
		err := r.wav.Truncate(r.trailingTrim(r.wav.Samples()))
		if err == nil {
			err = r.wav.Close()
		}
		if err == nil {
			return r.wav.Samples() * 1000 / media.SampleRate, nil
		}
		r.err = err
	}
	if !diskspace.IsNoSpace(r.err) {
		return 0, r.err
	}
	// The disk is full: the WAV writer is stuck on its error, but what
	// reached the file is audio. Its header is fixed from the file's
	// length (rewriting a header needs no new blocks); it is never
	// deleted for lack of space.
	r.noSpace = true
	_ = r.out.wait() // the file as the disk took it
	samples, err := media.FixWAV(r.file.File)
	if err != nil {
		return 0, fmt.Errorf("recording %s: out of space, fix WAV: %w", r.meta.ID, err)
	}
	return samples * 1000 / media.SampleRate, nil
}

// audio reads the finished recording back for review playback.
func (r *recorder) audio() ([]int16, error) {
	if _, err := r.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return media.ReadWAV(r.file)
}

func (r *recorder) discard() error {
	_ = r.out.wait() // no write after the part is gone
	return r.file.Abort()
}

// commit makes the audio durable, then the message row visible.
func (r *recorder) commit(ctx context.Context, st MessageCreator, durationMS int64, urgent bool) (*store.Message, error) {
	size, err := r.file.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if err := r.file.Commit(); err != nil {
		return nil, err
	}
	m := messageFrom(r.meta, durationMS, size, urgent)
	// ErrExists: another instance's recovery took this sidecar over (the
	// row is there, which is all that matters).
	if err := st.CreateMessage(ctx, m); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("recording %s: save message: %w", m.ID, err)
	}
	settle(r.blobs, m.MediaKey, r.log)
	return m, nil
}

// settle drops the sidecar of a committed recording whose row exists. A
// failure only leaves work for the recovery, which finds the row there.
func settle(blobs store.Blobs, key string, log *slog.Logger) {
	if err := blobs.SettlePart(key); err != nil {
		if log == nil {
			log = slog.Default()
		}
		log.Warn("recording: sidecar not removed; the recovery will", "key", key, "err", err)
	}
}

func messageFrom(meta partMeta, durationMS, size int64, urgent bool) *store.Message {
	return &store.Message{
		ID: meta.ID, Tenant: meta.Tenant, Mailbox: meta.Mailbox, Folder: "new",
		CallerID: meta.CallerID, CallerE164: phone.Caller(meta.CallerID), CallerName: meta.CallerName,
		ReceivedAt: meta.ReceivedAt, DurationMS: durationMS, Urgent: urgent, Size: size,
		MediaKey: store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID),
	}
}

// SidecarGrace is how long a sidecar without its part (a committed
// recording whose row may be missing) is left to its writer on a shared
// folder before another instance's recovery takes it over: the writer
// creates the row within seconds of the commit.
const SidecarGrace = 2 * time.Minute

// Recover finalizes the recordings that a crash left behind (docs/storage.md): each
// part long enough becomes a message, the others are removed. Parts that
// another live instance is still writing are left alone. Then committed
// recordings whose row was never written get it (RecoverUnsettled).
func Recover(ctx context.Context, st MessageCreator, blobs store.Blobs, minSeconds int, log *slog.Logger) (recovered, removed int, err error) {
	keys, err := blobs.Parts()
	if err != nil {
		return 0, 0, fmt.Errorf("recover: %w", err)
	}
	for _, key := range keys {
		// The lock first: a live writer (another instance on a shared
		// folder) may be between creating its part and writing its
		// sidecar, which is then empty for a moment.
		f, err := blobs.OpenPart(key)
		if err != nil {
			if errors.Is(err, store.ErrBusy) || errors.Is(err, store.ErrNotFound) {
				continue // still being recorded, or committed meanwhile
			}
			log.Warn("recover: open part", "key", key, "err", err)
			continue
		}
		meta, err := readPartMeta(blobs, key, log)
		if errors.Is(err, store.ErrNotFound) {
			// A crash between the part and its sidecar, or a power
			// loss that kept the part's name but not the sidecar's.
			var kerr error
			if meta, kerr = metaFromKey(key); kerr == nil {
				log.Warn("recover: part without sidecar; the recording is kept without its caller", "key", key)
				err = nil
			}
		}
		if err != nil {
			log.Warn("recover: part without metadata; removing", "key", key, "err", err)
			_ = blobs.RemovePart(key)
			f.Close()
			removed++
			continue
		}
		// The open part holds the lock: keep it until commit or removal.
		samples, ferr := media.FixWAV(f)
		size, _ := f.Seek(0, io.SeekEnd)
		if ferr != nil || samples < int64(minSeconds)*media.SampleRate || samples == 0 {
			log.Info("recover: removing short or broken recording", "key", key, "samples", samples, "err", ferr)
			_ = blobs.RemovePart(key)
			f.Close()
			removed++
			continue
		}
		err = blobs.CommitPart(key)
		f.Close()
		if err != nil {
			return recovered, removed, fmt.Errorf("recover %s: %w", key, err)
		}
		m := messageFrom(meta, samples*1000/media.SampleRate, size, false)
		err = st.CreateMessage(ctx, m)
		if errors.Is(err, store.ErrNotFound) {
			// The mailbox was deleted meanwhile: so goes its recording.
			log.Info("recover: mailbox deleted; removing its recording", "key", key)
			if err := blobs.Delete(key); err == nil {
				settle(blobs, key, log)
			}
			removed++
			continue
		}
		if err != nil && !errors.Is(err, store.ErrExists) {
			return recovered, removed, fmt.Errorf("recover %s: %w", key, err)
		}
		settle(blobs, key, log)
		log.Info("recover: recording saved as a message", "key", key, "duration_ms", m.DurationMS)
		recovered++
	}
	rec, rm, err := RecoverUnsettled(ctx, st, blobs, SidecarGrace, 0, time.Now(), log)
	return recovered + rec, removed + rm, err
}

// RecoverUnsettled finishes the recordings that were committed but whose
// sidecar is still there: the process died between the commit and the
// row, or between the row and SettlePart. When the committed blob exists
// its row is created from the sidecar (ErrExists is fine: the row was
// there), else the sidecar is stale and goes. A sidecar is left alone
// until its commit is older than grace, since a live writer may be
// between its commit and its row: on a shared folder another instance,
// in this instance's own spool (object stores, Private) only this
// process, so the start-up recovery passes privateGrace 0.
func RecoverUnsettled(ctx context.Context, st MessageCreator, blobs store.Blobs, grace, privateGrace time.Duration, now time.Time, log *slog.Logger) (recovered, removed int, err error) {
	side, err := blobs.Unsettled()
	if err != nil {
		return 0, 0, fmt.Errorf("recover: %w", err)
	}
	for _, sc := range side {
		wait := grace
		if sc.Private {
			wait = privateGrace
		}
		if now.Sub(sc.ModTime) < wait {
			continue
		}
		key := sc.Key
		meta, err := readPartMeta(blobs, key, log)
		if errors.Is(err, store.ErrNotFound) {
			continue // settled meanwhile by its writer
		}
		if err != nil {
			log.Warn("recover: unreadable sidecar; removing", "key", key, "err", err)
			_ = blobs.SettlePart(key)
			removed++
			continue
		}
		m, err := committedMessage(blobs, meta)
		if errors.Is(err, store.ErrNotFound) {
			// Never committed (a crash during a cleanup): nothing to save.
			_ = blobs.SettlePart(key)
			removed++
			continue
		}
		if err != nil {
			log.Warn("recover: committed recording unreadable; kept for the next pass", "key", key, "err", err)
			continue
		}
		err = st.CreateMessage(ctx, m)
		switch {
		case err == nil:
			log.Info("recover: committed recording saved as a message", "key", key, "duration_ms", m.DurationMS)
			recovered++
		case errors.Is(err, store.ErrExists):
			// The row was written; only the sidecar was left.
		case errors.Is(err, store.ErrNotFound):
			// The mailbox is gone: so goes its audio.
			log.Info("recover: mailbox deleted; removing its recording", "key", key)
			if err := blobs.Delete(key); err != nil {
				log.Warn("recover: delete recording", "key", key, "err", err)
				continue
			}
			removed++
		default:
			return recovered, removed, fmt.Errorf("recover %s: %w", key, err)
		}
		settle(blobs, key, log)
	}
	return recovered, removed, nil
}

// readPartMeta reads key's sidecar. The sidecar is written without fsync
// (store.FSBlobs.WritePartMeta), so after a power loss it may be empty or
// cut short: then the metadata is rebuilt from the key (tenant, mailbox,
// id; the time from the UUIDv7 id), without the caller, so that the
// recording is kept rather than lost or left an orphan (docs/storage.md).
// store.ErrNotFound when the sidecar is gone.
func readPartMeta(blobs store.Blobs, key string, log *slog.Logger) (partMeta, error) {
	var meta partMeta
	err := blobs.ReadPartMeta(key, &meta)
	if errors.Is(err, store.ErrNotFound) {
		return partMeta{}, err
	}
	if err == nil && store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID) == key {
		return meta, nil
	}
	fromKey, kerr := metaFromKey(key)
	if kerr != nil {
		if err == nil {
			err = fmt.Errorf("sidecar names another recording (%s/%s/%s)", meta.Tenant, meta.Mailbox, meta.ID)
		}
		return partMeta{}, fmt.Errorf("%w; %w", err, kerr)
	}
	log.Warn("recover: sidecar unreadable; the recording is kept without its caller", "key", key, "err", err)
	return fromKey, nil
}

// metaFromKey is the metadata a message key carries:
// "<tenant>/<mailbox>/<UUIDv7>.wav".
func metaFromKey(key string) (partMeta, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 || !strings.HasSuffix(parts[2], ".wav") {
		return partMeta{}, fmt.Errorf("key %q is not a message's", key)
	}
	id := strings.TrimSuffix(parts[2], ".wav")
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.String() != id {
		return partMeta{}, fmt.Errorf("key %q: %q is not a message id", key, id)
	}
	sec, nsec := u.Time().UnixTime()
	meta := partMeta{Tenant: parts[0], Mailbox: parts[1], ID: id, ReceivedAt: time.Unix(sec, nsec).UTC()}
	if store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID) != key {
		return partMeta{}, fmt.Errorf("key %q is not a message's", key)
	}
	return meta, nil
}

// committedMessage builds the row of a committed recording from its
// sidecar and its WAV header; store.ErrNotFound if it was never committed.
func committedMessage(blobs store.Blobs, meta partMeta) (*store.Message, error) {
	key := store.MediaKey(meta.Tenant, meta.Mailbox, meta.ID)
	f, err := blobs.Open(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// The header is all WAVSamples reads: no need to fetch the whole object.
	hdr := make([]byte, 4096)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	samples, err := media.WAVSamples(bytes.NewReader(hdr[:n]))
	if err != nil {
		return nil, err
	}
	return messageFrom(meta, samples*1000/media.SampleRate, fi.Size(), false), nil
}
