package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/vmserver/voicemail/store"
)

type messageJSON struct {
	ID         string    `json:"id"`
	Mailbox    string    `json:"mailbox"`
	Folder     string    `json:"folder"`
	CallerID   string    `json:"caller_id"`
	CallerE164 string    `json:"caller_e164"`
	CallerName string    `json:"caller_name"`
	ReceivedAt time.Time `json:"received_at"`
	DurationMS int64     `json:"duration_ms"`
	Urgent     bool      `json:"urgent"`
	Read       bool      `json:"read"`
	Size       int64     `json:"size"`
}

func toMessageJSON(m *store.Message) messageJSON {
	return messageJSON{
		ID: m.ID, Mailbox: m.Mailbox, Folder: m.Folder, CallerID: m.CallerID, CallerE164: m.CallerE164,
		CallerName: m.CallerName, ReceivedAt: m.ReceivedAt, DurationMS: m.DurationMS,
		Urgent: m.Urgent, Read: m.Read, Size: m.Size,
	}
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, p principal) error {
	mb, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	folder := q.Get("folder")
	if folder != "" && !store.ValidFolder(folder) {
		return invalid("folder", "folder must be new, old, work, family or friends")
	}
	items, next, err := s.cfg.Store.ListMessages(r.Context(), store.MessageFilter{
		Tenant: p.tenant, Mailbox: mb.Number, Folder: folder, CallerID: q.Get("caller_id"),
		After: q.Get("cursor"), Limit: limit,
	})
	if err != nil {
		return err
	}
	out := list[messageJSON]{Items: make([]messageJSON, 0, len(items)), Next: next}
	for i := range items {
		out.Items = append(out.Items, toMessageJSON(&items[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) message(r *http.Request, p principal) (*store.Message, error) {
	mb, err := s.mailbox(r, p)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	m, err := s.cfg.Store.GetMessage(r.Context(), p.tenant, mb.Number, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("message " + id)
	}
	return m, err
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request, p principal) error {
	m, err := s.message(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMessageJSON(m))
	return nil
}

// getAudio serves the WAV; http.ServeContent answers Range requests.
func (s *Server) getAudio(w http.ResponseWriter, r *http.Request, p principal) error {
	m, err := s.message(r, p)
	if err != nil {
		return err
	}
	f, err := s.cfg.Blobs.Open(m.MediaKey)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("audio of message " + m.ID)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Disposition", `attachment; filename="`+m.ID+`.wav"`)
	http.ServeContent(w, r, m.ID+".wav", m.ReceivedAt, f)
	return nil
}
