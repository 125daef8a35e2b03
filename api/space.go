package api

import (
	"net/http"

	"github.com/vmserver/voicemail/diskspace"
)

// SpaceMonitor tells when the media or database file system is below
// media.min_free (diskspace.Monitor).
type SpaceMonitor interface {
	Low() (bool, string)
	Check() (bool, string)
}

// spaceRoutes are the writes refused with 507 while space is low: those
// that store audio or add rows. Deletions, logins, message flags and GDPR
// forget/undo stay open, so that space can be freed through the API.
var spaceRoutes = map[string]bool{
	"POST /api/v1/tenants":                                  true,
	"POST /api/v1/tenants/{tenant}/tokens":                  true,
	"POST /api/v1/mailboxes":                                true,
	"PATCH /api/v1/mailboxes/{number}":                      true,
	"PUT /api/v1/mailboxes/{number}/greetings/{kind}":       true,
	"POST /api/v1/mailboxes/{number}/messages/{id}/forward": true,
	"POST /api/v1/webhooks":                                 true,
	"POST /api/v1/gdpr/export":                              true,
	"PUT /api/v1/retention":                                 true,
}

func insufficientStorage(reason string) *apiError {
	return &apiError{Status: http.StatusInsufficientStorage, Code: "insufficient_storage",
		Message: "not enough free disk space: " + reason}
}

// needSpace wraps h to answer 507 while space is low.
func (s *Server) needSpace(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		if s.cfg.Space != nil {
			if low, reason := s.cfg.Space.Low(); low {
				return insufficientStorage(reason)
			}
		}
		return h(w, r, p)
	}
}

// noSpace turns a "no space left" error from anywhere below into 507 and
// has the monitor look again at once.
func (s *Server) noSpace(err error) *apiError {
	if !diskspace.IsNoSpace(err) {
		return nil
	}
	reason := "no space left on device"
	if s.cfg.Space != nil {
		if low, why := s.cfg.Space.Check(); low {
			reason = why
		}
	}
	return insufficientStorage(reason)
}
