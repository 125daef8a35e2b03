package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vmserver/voicemail/store"
)

type tenantJSON struct {
	Name      string    `json:"name"`
	Domains   []string  `json:"domains"`
	CreatedAt time.Time `json:"created_at"`
}

func toTenantJSON(t *store.Tenant) tenantJSON {
	return tenantJSON{Name: t.Name, Domains: nonNil(t.Domains), CreatedAt: t.CreatedAt}
}

type tenantInput struct {
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
}

// validName: what a tenant name may hold to be part of a media key.
func validName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_.+@", r):
		default:
			return false
		}
	}
	return true
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-.:[]", r):
		default:
			return false
		}
	}
	return true
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	var in tenantInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if !validName(in.Name) {
		return invalid("name", "name must be 1 to 64 letters, digits or -_.+@")
	}
	if err := limitDomains.checkList(in.Domains, strings.ToLower); err != nil {
		return err
	}
	for _, d := range in.Domains {
		if !validHost(d) {
			return invalid("domains", "domains must be host names or addresses")
		}
	}
	t := &store.Tenant{Name: in.Name, Domains: in.Domains}
	if err := s.cfg.Store.CreateTenant(r.Context(), t); err != nil {
		if errors.Is(err, store.ErrExists) {
			if _, gerr := s.cfg.Store.GetTenant(r.Context(), in.Name); gerr == nil {
				return conflict("name", "tenant "+in.Name+" exists")
			}
			return conflict("domains", "a domain already belongs to another tenant")
		}
		return err
	}
	writeCreated(w, "/api/v1/tenants/"+t.Name, toTenantJSON(t))
	return nil
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	all, err := s.cfg.Store.ListTenants(r.Context())
	if err != nil {
		return err
	}
	cursor := r.URL.Query().Get("cursor")
	out := list[tenantJSON]{Items: []tenantJSON{}}
	for i := range all {
		if all[i].Name <= cursor {
			continue
		}
		if len(out.Items) == limit {
			out.Next = out.Items[limit-1].Name
			break
		}
		out.Items = append(out.Items, toTenantJSON(&all[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	t, err := s.tenantParam(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTenantJSON(t))
	return nil
}

// deleteTenant removes an empty tenant with its tokens and webhooks.
func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	name := r.PathValue("tenant")
	if name == store.DefaultTenant {
		return conflict("tenant", "the default tenant cannot be deleted")
	}
	ctx := r.Context()
	err := s.cfg.Store.DeleteTenant(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("tenant " + name)
	case errors.Is(err, store.ErrExists):
		return conflict("tenant", "tenant "+name+" still has mailboxes; delete them first")
	case err != nil:
		return err
	}
	if err := s.cfg.Store.DeleteTokens(ctx, name, ""); err != nil {
		return err
	}
	hooks, err := s.cfg.Store.ListWebhooks(ctx, name)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if err := s.cfg.Store.DeleteWebhook(ctx, name, h.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
