package sip

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// callerOf returns the caller's number and name: P-Asserted-Identity when
// present (a trusted network asserted it), else From.
func callerOf(req *sip.Request) (number, name string) {
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
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

// E164 returns the E.164 form of a caller number when it can be derived
// without guessing a country: "+1 781-555-1212" -> "+17815551212"; "00"
// international prefix too. Otherwise "".
func E164(s string) string {
	s = strings.TrimSpace(s)
	var digits strings.Builder
	plus := false
	for i, r := range s {
		switch {
		case r == '+' && i == 0:
			plus = true
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return ""
		}
	}
	d := digits.String()
	if !plus && strings.HasPrefix(d, "00") {
		d, plus = d[2:], true
	}
	if !plus || len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return ""
	}
	return "+" + d
}
