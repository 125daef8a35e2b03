// Package phone is the one place that turns a written telephone number into
// its E.164 form. The deposit stores a caller's number in that form and a
// GDPR request names numbers in it, so both must agree on every input
// (docs/architecture.md).
package phone

import "strings"

// E.164 numbers have at most 15 digits; the shortest in use have 7
// (+683 4002, Niue). Country codes never start with 0.
const (
	minDigits = 7
	maxDigits = 15
)

// E164 returns the E.164 form of a number written in E.123 international
// form: "+1 781 555 1212" → "+17815551212". Spaces, dashes, dots,
// parentheses and no-break spaces are ignored and a "tel:" prefix is
// allowed. A number without its country code ("617 555 1313") or with the
// "00" dialling prefix instead of "+" is not accepted: ok is false.
func E164(s string) (e164 string, ok bool) {
	s = trimTel(s)
	if !strings.HasPrefix(s, "+") {
		return "", false
	}
	return normal(s[1:])
}

// Caller returns the E.164 form of a caller number from signalling (a From
// or P-Asserted-Identity user part), or "" when it cannot be derived without
// guessing a country. Besides what E164 accepts, the international
// dialling prefix "00" stands for "+" (0041446681800 → +41446681800): PBXs
// send caller numbers that way.
func Caller(s string) string {
	s = trimTel(s)
	rest, plus := strings.CutPrefix(s, "+")
	if !plus {
		var ok bool
		if rest, ok = strings.CutPrefix(s, "00"); !ok {
			return ""
		}
	}
	e, _ := normal(rest)
	return e
}

func trimTel(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		s = strings.TrimSpace(s[4:])
	}
	return s
}

// normal checks the digits after the "+" and returns "+" and the digits.
func normal(s string) (string, bool) {
	var d strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			d.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '\u00a0':
		default:
			return "", false
		}
	}
	digits := d.String()
	if len(digits) < minDigits || len(digits) > maxDigits || digits[0] == '0' {
		return "", false
	}
	return "+" + digits, true
}
