package phone

import (
	"strings"
	"testing"
)

func TestE164AndCaller(t *testing.T) {
	for _, tc := range []struct {
		in         string
		e164       string // E164 (requests: E.123 international form)
		caller     string // Caller (signalling: "00" allowed too)
		sameAsE164 bool
	}{
		{in: "+1 781 555 1212", e164: "+17815551212"},
		{in: "+17815551212", e164: "+17815551212"},
		{in: "+1-781-555-1212", e164: "+17815551212"},
		{in: "+1 (781) 555.1212", e164: "+17815551212"},
		{in: "tel:+44 20 7946 0958", e164: "+442079460958"},
		{in: "TEL:+44 20 7946 0958", e164: "+442079460958"},
		{in: "  +33 1 23 45 67 89 ", e164: "+33123456789"},
		{in: "+33\u00a01 23 45 67 89", e164: "+33123456789"},
		{in: "+683 4002", e164: "+6834002"}, // 7 digits: Niue
		{in: "+683 400", e164: ""},
		{in: "+123456789012345", e164: "+123456789012345"},
		{in: "+1234567890123456", e164: ""},
		{in: "0041446681800", e164: "", caller: "+41446681800"},
		{in: "0033 1 23 45 67 89", e164: "", caller: "+33123456789"},
		{in: "00683 4002", e164: "", caller: "+6834002"},
		{in: "000 123 4567", e164: ""},
		{in: "617 555 1313", e164: ""},
		{in: "6175551313", e164: ""},
		{in: "1001", e164: ""},
		{in: "+0 123 4567", e164: ""},
		{in: "+1 781 555 1212 ext 3", e164: ""},
		{in: "+12", e164: ""},
		{in: "++17815551212", e164: ""},
		{in: "+1781+5551212", e164: ""},
		{in: "anonymous", e164: ""},
		{in: "jane@example.com", e164: ""},
		{in: "", e164: ""},
	} {
		wantCaller := tc.caller
		if wantCaller == "" {
			wantCaller = tc.e164
		}
		got, ok := E164(tc.in)
		if got != tc.e164 || ok != (tc.e164 != "") {
			t.Errorf("E164(%q) = %q %v, want %q", tc.in, got, ok, tc.e164)
		}
		if got := Caller(tc.in); got != wantCaller {
			t.Errorf("Caller(%q) = %q, want %q", tc.in, got, wantCaller)
		}
	}
}

// FuzzE164 checks the invariants both entry points share: the result is
// "+" and 7 to 15 digits not starting with 0, normalising is idempotent,
// and whatever E164 accepts Caller accepts the same way.
func FuzzE164(f *testing.F) {
	for _, s := range []string{"+1 781 555 1212", "+683 4002", "0041446681800", "tel:+44 20 7946 0958", "617 555 1313", "", "+", "00", "tel:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, ok := E164(s)
		c := Caller(s)
		if ok != (e != "") {
			t.Fatalf("E164(%q) = %q, %v", s, e, ok)
		}
		if ok && c != e {
			t.Fatalf("E164(%q) = %q but Caller = %q", s, e, c)
		}
		for _, out := range []string{e, c} {
			if out == "" {
				continue
			}
			d := strings.TrimPrefix(out, "+")
			if len(d) == len(out) || len(d) < minDigits || len(d) > maxDigits || d[0] == '0' || strings.Trim(d, "0123456789") != "" {
				t.Fatalf("%q normalised to %q", s, out)
			}
			if again, ok := E164(out); !ok || again != out {
				t.Fatalf("E164(%q) = %q, not idempotent", out, again)
			}
		}
	})
}
