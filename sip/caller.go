package sip

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// callerOf returns the caller's number and name: P-Asserted-Identity when a
// trusted proxy sent the request (from anyone else it is ignored: anyone
// may write one), else From.
func callerOf(req *sip.Request, trusted bool) (number, name string) {
	if h := Header(req, "P-Asserted-Identity"); h != nil && trusted {
		parts := splitHeaderList(h.Value())
		if len(parts) > 0 {
			var uri sip.Uri
			params := sip.NewParams()
			if dn, err := sip.ParseAddressValue(parts[0], &uri, &params); err == nil {
				if u := userOf(uriUser(uri)); u != "" {
					return u, dn
				}
			}
		}
	}
	if f := req.From(); f != nil {
		return userOf(uriUser(f.Address)), f.DisplayName
	}
	return "", ""
}

// uriUser is the user of a sip: URI or the number of a tel: URI.
func uriUser(u sip.Uri) string {
	if u.User != "" {
		return u.User
	}
	if strings.EqualFold(u.Scheme, "tel") {
		return u.Raw()
	}
	return ""
}
