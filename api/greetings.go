package api

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

// greetingKinds are the greetings of docs/api.md (and their blob names).
var greetingKinds = []string{"unavailable", "busy", "temporary", "name"}

// wavTypes are the media types a greeting upload may declare.
var wavTypes = map[string]bool{"audio/wav": true, "audio/x-wav": true, "audio/wave": true,
	"audio/vnd.wave": true, "audio/x-pn-wav": true, "application/octet-stream": true}

func (s *Server) greetingKey(r *http.Request, p principal) (string, *store.Mailbox, error) {
	mb, err := s.mailbox(r, p)
	if err != nil {
		return "", nil, err
	}
	kind := r.PathValue("kind")
	for _, k := range greetingKinds {
		if k == kind {
			return store.GreetingKey(p.tenant, mb.Number, kind), mb, nil
		}
	}
	return "", nil, invalid("kind", "greeting kind must be unavailable, busy, temporary or name")
}

// putGreeting converts any PCM/µ-law/A-law WAV (8–48 kHz, mono or stereo)
// to the stored format (8000 Hz mono) and replaces the greeting atomically.
func (s *Server) putGreeting(w http.ResponseWriter, r *http.Request, p principal) error {
	key, _, err := s.greetingKey(r, p)
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !wavTypes[mt] {
			return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
				Message: "a greeting is a WAV file (Content-Type audio/wav)"}
		}
	}
	if r.ContentLength > s.cfg.MaxGreetingBytes {
		return tooLarge(s.cfg.MaxGreetingBytes)
	}
	out, samples, err := s.convertGreeting(http.MaxBytesReader(w, r.Body, s.cfg.MaxGreetingBytes))
	if err != nil {
		return err
	}
	if err := s.cfg.Blobs.Put(key, bytes.NewReader(out)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, greetingJSON{Kind: r.PathValue("kind"), Size: int64(len(out)),
		DurationMS: samples * 1000 / media.SampleRate, SampleRate: media.SampleRate, Format: s.cfg.GreetingFormat.String()})
	return nil
}

// convertGreeting streams an upload through the WAV decoder into the
// stored format. Memory stays bounded by greeting.max_seconds of output
// (about 1 MB a minute) and a few kilobytes of input, whatever is sent: a
// header announcing more than the limit is refused before the audio is
// read, and a header that lies is cut off at the limit.
func (s *Server) convertGreeting(body io.Reader) ([]byte, int64, error) {
	readErr := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(s.cfg.MaxGreetingBytes)
		}
		if errors.Is(err, media.ErrUnsupportedWAV) {
			return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
				Message: "not a supported WAV file (PCM 8/16-bit, µ-law or A-law, mono or stereo, 8–48 kHz): " + err.Error()}
		}
		return invalid("", "reading the body: "+err.Error())
	}
	dec, err := media.NewWAVDecoder(bufio.NewReaderSize(body, 32<<10))
	if err != nil {
		return nil, 0, readErr(err)
	}
	maxSamples := int64(s.cfg.MaxGreetingSeconds) * media.SampleRate
	if dec.DeclaredSamples() > maxSamples {
		return nil, 0, s.tooLong()
	}
	var buf memFile
	ww, err := media.NewWAVWriter(&buf, s.cfg.GreetingFormat)
	if err != nil {
		return nil, 0, err
	}
	pcm := make([]int16, 4096)
	var total int64
	for {
		n, err := dec.Read(pcm)
		if total += int64(n); total > maxSamples {
			return nil, 0, s.tooLong()
		}
		if werr := ww.Write(pcm[:n]); werr != nil {
			return nil, 0, werr
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, readErr(err)
		}
	}
	if total == 0 {
		return nil, 0, unprocessable("", "the WAV file holds no audio")
	}
	if err := ww.Close(); err != nil {
		return nil, 0, err
	}
	return buf.b, total, nil
}

func (s *Server) tooLong() *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_long",
		Message: "a greeting is at most " + strconv.Itoa(s.cfg.MaxGreetingSeconds) + " seconds long (greeting.max_seconds)"}
}

type greetingJSON struct {
	Kind       string `json:"kind"`
	Size       int64  `json:"size"`
	DurationMS int64  `json:"duration_ms"`
	SampleRate int    `json:"sample_rate"`
	Format     string `json:"format"`
}

func tooLarge(max int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
		Message: "the upload is larger than " + strconv.FormatInt(max, 10) + " bytes"}
}

func (s *Server) getGreeting(w http.ResponseWriter, r *http.Request, p principal) error {
	key, _, err := s.greetingKey(r, p)
	if err != nil {
		return err
	}
	f, err := s.cfg.Blobs.Open(key)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("greeting " + r.PathValue("kind"))
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var mod time.Time
	if fi, err := f.Stat(); err == nil {
		mod = fi.ModTime()
	}
	w.Header().Set("Content-Type", "audio/wav")
	serveRanged(w, r, r.PathValue("kind")+".wav", mod, f)
	return nil
}

func (s *Server) deleteGreeting(w http.ResponseWriter, r *http.Request, p principal) error {
	key, _, err := s.greetingKey(r, p)
	if err != nil {
		return err
	}
	if !s.cfg.Blobs.Exists(key) {
		return notFound("greeting " + r.PathValue("kind"))
	}
	if err := s.cfg.Blobs.Delete(key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// memFile is an in-memory io.WriteSeeker for the WAV writer.
type memFile struct {
	b   []byte
	off int64
}

func (m *memFile) Write(p []byte) (int, error) {
	end := m.off + int64(len(p))
	if end > int64(cap(m.b)) {
		// Double: Go's append grows big slices by 1.25×, which allocates
		// several times the final size on the way.
		nb := make([]byte, end, max(2*int64(cap(m.b)), end, 64<<10))
		copy(nb, m.b)
		m.b = nb
	} else if end > int64(len(m.b)) {
		m.b = m.b[:end]
	}
	copy(m.b[m.off:], p)
	m.off = end
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += int64(len(m.b))
	}
	if off < 0 {
		return 0, errors.New("memfile: negative offset")
	}
	m.off = off
	return off, nil
}
