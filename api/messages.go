package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vmserver/voicemail/store"
)

type messageJSON struct {
	ID          string    `json:"id"`
	Mailbox     string    `json:"mailbox"`
	MailboxType string    `json:"mailbox_type,omitempty"`
	Folder      string    `json:"folder"`
	CallerID    string    `json:"caller_id"`
	CallerE164  string    `json:"caller_e164"`
	CallerName  string    `json:"caller_name"`
	ReceivedAt  time.Time `json:"received_at"`
	DurationMS  int64     `json:"duration_ms"`
	Urgent      bool      `json:"urgent"`
	Read        bool      `json:"read"`
	Size        int64     `json:"size"`
}

func toMessageJSON(m *store.Message) messageJSON {
	return messageJSON{
		ID: m.ID, Mailbox: m.Mailbox, Folder: m.Folder, CallerID: m.CallerID, CallerE164: m.CallerE164,
		CallerName: m.CallerName, ReceivedAt: m.ReceivedAt, DurationMS: m.DurationMS,
		Urgent: m.Urgent, Read: m.Read, Size: m.Size,
	}
}

// messageFilter reads folder, caller_id, cursor and limit.
func messageFilter(r *http.Request, tenant string) (store.MessageFilter, error) {
	limit, err := limitParam(r)
	if err != nil {
		return store.MessageFilter{}, err
	}
	q := r.URL.Query()
	folder := q.Get("folder")
	if folder != "" && !store.ValidFolder(folder) {
		return store.MessageFilter{}, invalid("folder", "folder must be new, old, work, family or friends")
	}
	return store.MessageFilter{Tenant: tenant, Folder: folder, CallerID: strings.TrimSpace(q.Get("caller_id")),
		After: q.Get("cursor"), Limit: limit}, nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, p principal) error {
	mb, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	f, err := messageFilter(r, p.tenant)
	if err != nil {
		return err
	}
	f.Mailbox = mb.Number
	items, next, err := s.cfg.Store.ListMessages(r.Context(), f)
	if err != nil {
		return err
	}
	out := list[messageJSON]{Items: make([]messageJSON, 0, len(items)), Next: next}
	for i := range items {
		j := toMessageJSON(&items[i])
		j.MailboxType = mb.Type
		out.Items = append(out.Items, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// userMessages lists one user's personal messages and those of the group
// mailboxes it belongs to ("global"), merged in id (time) order.
func (s *Server) userMessages(w http.ResponseWriter, r *http.Request, p principal) error {
	n := r.PathValue("number")
	if !p.admin() && n != p.mailbox {
		return forbidden("a user token may list only its own messages")
	}
	mb, err := s.cfg.Store.GetMailbox(r.Context(), p.tenant, n)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("mailbox " + n)
	}
	if err != nil {
		return err
	}
	vt := r.URL.Query().Get("voicemail_type")
	if vt == "" {
		vt = "all"
	}
	if vt != "all" && vt != "personal" && vt != "global" {
		return invalid("voicemail_type", "voicemail_type must be all, personal or global")
	}
	f, err := messageFilter(r, p.tenant)
	if err != nil {
		return err
	}
	types := map[string]string{}
	if vt != "global" {
		types[mb.Number] = "personal"
	}
	if vt != "personal" {
		groups, err := s.cfg.Store.GroupsOf(r.Context(), p.tenant, mb.Number)
		if err != nil {
			return err
		}
		for _, g := range groups {
			types[g.Number] = "global"
		}
	}
	var all []store.Message
	more := false
	for number := range types {
		f.Mailbox = number
		items, next, err := s.cfg.Store.ListMessages(r.Context(), f)
		if err != nil {
			return err
		}
		all = append(all, items...)
		more = more || next != ""
	}
	slices.SortFunc(all, func(a, b store.Message) int { return strings.Compare(a.ID, b.ID) })
	out := list[messageJSON]{Items: []messageJSON{}}
	if len(all) > f.Limit {
		all, more = all[:f.Limit], true
	}
	if more && len(all) > 0 {
		out.Next = all[len(all)-1].ID
	}
	for i := range all {
		j := toMessageJSON(&all[i])
		j.MailboxType = store.TypePersonal
		if types[all[i].Mailbox] == "global" {
			j.MailboxType = store.TypeGroup
		}
		out.Items = append(out.Items, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) message(r *http.Request, p principal) (*store.Message, *store.Mailbox, error) {
	mb, err := s.mailbox(r, p)
	if err != nil {
		return nil, nil, err
	}
	id := r.PathValue("id")
	m, err := s.cfg.Store.GetMessage(r.Context(), p.tenant, mb.Number, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, notFound("message " + id)
	}
	return m, mb, err
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request, p principal) error {
	m, mb, err := s.message(r, p)
	if err != nil {
		return err
	}
	j := toMessageJSON(m)
	j.MailboxType = mb.Type
	writeJSON(w, http.StatusOK, j)
	return nil
}

type messagePatch struct {
	Folder *string `json:"folder"`
	Read   *bool   `json:"read"`
	Urgent *bool   `json:"urgent"`
}

// patchMessage moves or flags a message through the store, so MWI and
// events follow.
func (s *Server) patchMessage(w http.ResponseWriter, r *http.Request, p principal) error {
	m, mb, err := s.message(r, p)
	if err != nil {
		return err
	}
	var in messagePatch
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Folder != nil {
		if !store.ValidFolder(*in.Folder) {
			return invalid("folder", "folder must be new, old, work, family or friends")
		}
		m.Folder = *in.Folder
	}
	if in.Read != nil {
		m.Read = *in.Read
	}
	if in.Urgent != nil {
		m.Urgent = *in.Urgent
	}
	if err := s.cfg.Store.UpdateMessage(r.Context(), m); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("message " + m.ID)
		}
		return err
	}
	j := toMessageJSON(m)
	j.MailboxType = mb.Type
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request, p principal) error {
	mb, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	m, err := s.cfg.Store.DeleteMessage(r.Context(), p.tenant, mb.Number, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("message " + id)
	}
	if err != nil {
		return err
	}
	// The row is gone (the message has disappeared everywhere); a failure
	// to remove the file only leaves an orphan, which the orphan sweep
	// removes (docs/storage.md).
	if err := s.cfg.Blobs.Delete(m.MediaKey); err != nil {
		s.cfg.Logger.Warn("delete message audio", "key", m.MediaKey, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getAudio serves the WAV; http.ServeContent answers Range requests.
func (s *Server) getAudio(w http.ResponseWriter, r *http.Request, p principal) error {
	m, _, err := s.message(r, p)
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
	serveRanged(w, r, m.ID+".wav", m.ReceivedAt, f)
	return nil
}

type forwardInput struct {
	To string `json:"to"`
}

// forwardMessage copies the audio into another mailbox of the tenant and
// creates the new message through the store (message_created, MWI).
func (s *Server) forwardMessage(w http.ResponseWriter, r *http.Request, p principal) error {
	src, _, err := s.message(r, p)
	if err != nil {
		return err
	}
	var in forwardInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if !isNumber(in.To, 1, 32) {
		return invalid("to", "to must be a mailbox number")
	}
	if in.To == src.Mailbox {
		return unprocessable("to", "a message cannot be forwarded to its own mailbox")
	}
	ctx := r.Context()
	dst, err := s.cfg.Store.GetMailbox(ctx, p.tenant, in.To)
	if errors.Is(err, store.ErrNotFound) {
		return unprocessable("to", "mailbox "+in.To+" does not exist")
	}
	if err != nil {
		return err
	}
	if dst.MaxMessages > 0 {
		c, err := s.cfg.Store.CountMessages(ctx, p.tenant, dst.Number)
		if err != nil {
			return err
		}
		if c.New+c.Old >= dst.MaxMessages {
			return conflict("to", "mailbox "+in.To+" is full")
		}
	}
	f, err := s.cfg.Blobs.Open(src.MediaKey)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("audio of message " + src.ID)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	m := &store.Message{ID: store.NewMessageID(), Tenant: p.tenant, Mailbox: dst.Number, Folder: store.FolderNew,
		CallerID: src.CallerID, CallerE164: src.CallerE164, CallerName: src.CallerName,
		DurationMS: src.DurationMS, Urgent: src.Urgent, Size: src.Size}
	m.MediaKey = store.MediaKey(p.tenant, dst.Number, m.ID)
	// Audio first, durable; the row after (docs/storage.md).
	if err := s.cfg.Blobs.Put(m.MediaKey, f); err != nil {
		return err
	}
	if size, err := s.cfg.Blobs.Stat(m.MediaKey); err == nil {
		m.Size = size
	}
	if err := s.cfg.Store.CreateMessage(ctx, m); err != nil {
		_ = s.cfg.Blobs.Delete(m.MediaKey)
		if errors.Is(err, store.ErrNotFound) {
			return unprocessable("to", "mailbox "+in.To+" does not exist")
		}
		return err
	}
	j := toMessageJSON(m)
	j.MailboxType = dst.Type
	writeCreated(w, "/api/v1/mailboxes/"+dst.Number+"/messages/"+m.ID, j)
	return nil
}
