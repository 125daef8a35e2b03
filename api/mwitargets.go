package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/vmserver/voicemail/store"
)

// Unsolicited MWI targets (docs/mwi.md): the SIP side stops notifying a
// target that answers 481/405/489 or subscribes itself, and records why in
// the store. These routes show that state and let an operator start the
// target again.

// mwiTargetJSON is one entry of a mailbox's mwi_targets with its state.
type mwiTargetJSON struct {
	Target    string     `json:"target"`
	State     string     `json:"state"`            // active or stopped
	Reason    string     `json:"reason,omitempty"` // the status code that stopped it, or "subscribed"
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
}

// mwiTargets lists the mailbox's targets with their state.
func (s *Server) mwiTargets(w http.ResponseWriter, r *http.Request, p principal) error {
	m, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	items, err := s.targetStates(r, m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list[mwiTargetJSON]{Items: items})
	return nil
}

func (s *Server) targetStates(r *http.Request, m *store.Mailbox) ([]mwiTargetJSON, error) {
	stops, err := s.cfg.Store.ListMWITargetStops(r.Context())
	if err != nil {
		return nil, err
	}
	stopped := map[string]store.MWITargetStop{}
	for _, st := range stops {
		if st.Tenant == m.Tenant && st.Mailbox == m.Number {
			stopped[st.Target] = st
		}
	}
	items := make([]mwiTargetJSON, 0, len(m.MWITargets))
	for _, t := range m.MWITargets {
		it := mwiTargetJSON{Target: t, State: "active"}
		if st, ok := stopped[t]; ok {
			at := st.At.UTC()
			it.State, it.Reason, it.StoppedAt = "stopped", st.Reason, &at
		}
		items = append(items, it)
	}
	return items, nil
}

// resumeMWITarget starts a stopped target again: {"target": "sip:…"}.
func (s *Server) resumeMWITarget(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	m, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	var in struct {
		Target string `json:"target"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Target == "" {
		return invalid("target", "target is required")
	}
	if !slices.Contains(m.MWITargets, in.Target) {
		return notFound("mwi target " + in.Target + " of mailbox " + m.Number)
	}
	ctx := r.Context()
	if err := s.cfg.Store.ResumeMWITarget(ctx, m.Tenant, m.Number, in.Target); err != nil {
		return err
	}
	// The running MWI notifier keeps its stops in memory and forgets one
	// when the target leaves the mailbox's list; listing it again starts it
	// with the current state. Two updates, each a mailbox_updated change,
	// do exactly that without reaching into the SIP side.
	idx := slices.Index(m.MWITargets, in.Target)
	without := *m
	without.MWITargets = slices.Delete(slices.Clone(m.MWITargets), idx, idx+1)
	if err := s.cfg.Store.UpdateMailbox(ctx, &without); err != nil {
		return err
	}
	// Re-read, so that a change made meanwhile by another request is kept.
	fresh, err := s.cfg.Store.GetMailbox(ctx, m.Tenant, m.Number)
	if err != nil {
		return err
	}
	if !slices.Contains(fresh.MWITargets, in.Target) {
		fresh.MWITargets = slices.Insert(fresh.MWITargets, min(idx, len(fresh.MWITargets)), in.Target)
	}
	if err := s.cfg.Store.UpdateMailbox(ctx, fresh); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mwiTargetJSON{Target: in.Target, State: "active"})
	return nil
}
