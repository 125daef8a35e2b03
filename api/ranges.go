package api

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveRanged serves content like http.ServeContent, after bringing the
// Range header in line with RFC 9110 §14 where the standard library is
// more lenient or stricter (see normalizeRange).
func serveRanged(w http.ResponseWriter, r *http.Request, name string, mod time.Time, content io.ReadSeeker) {
	if len(r.Header.Values("Range")) > 0 {
		size, err := content.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = content.Seek(0, io.SeekStart)
		}
		if err != nil {
			http.Error(w, "seek failed", http.StatusInternalServerError)
			return
		}
		r = r.Clone(r.Context())
		if !normalizeRange(r.Header, size) && size == 0 && r.Header.Get("If-Range") == "" {
			// ServeContent answers 200 to any range of an empty body.
			w.Header().Set("Content-Range", "bytes */0")
			http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
			return
		}
	}
	http.ServeContent(w, r, name, mod, content)
}

// normalizeRange rewrites the Range header so that http.ServeContent (which
// still evaluates If-Range and the other preconditions first) answers as
// RFC 9110 §14.1–14.2 asks:
//   - a unit other than bytes (case-insensitive), or a header that is not
//     unit=set at all, is ignored: 200 with the whole body;
//   - more than limitRanges.Max ranges are ignored (a MAY of §14.1.1
//     against denial of service);
//   - an invalid bytes range-set (not 1*DIGIT, last-pos < first-pos, empty)
//     is unsatisfiable: 416;
//   - "-0" (a zero suffix-length) and a first-pos at or past the end are
//     unsatisfiable ranges (§14.1.1); when no satisfiable range is left the
//     answer is 416 with Content-Range: bytes */size, not 206;
//   - satisfiable ranges are passed on in canonical form.
//
// It reports false when the header is left unsatisfiable.
func normalizeRange(h http.Header, size int64) (ok bool) {
	vals := h.Values("Range")
	ok = true
	unsatisfiable := func() { h.Set("Range", "bytes="+strconv.FormatInt(size, 10)+"-"); ok = false }
	if len(vals) != 1 {
		h.Del("Range") // a repeated Range field is not a valid header: ignore it
		return ok
	}
	unit, set, isSet := strings.Cut(vals[0], "=")
	if !isSet || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		h.Del("Range")
		return ok
	}
	var specs []string
	for _, raw := range strings.Split(set, ",") {
		if raw = strings.Trim(raw, " \t"); raw != "" { // empty list elements are allowed (RFC 9110 §5.6.1)
			specs = append(specs, raw)
		}
	}
	if len(specs) == 0 {
		unsatisfiable()
		return ok
	}
	if int64(len(specs)) > limitRanges.Max {
		h.Del("Range")
		return ok
	}
	var keep []string
	for _, spec := range specs {
		first, last, isRange := strings.Cut(spec, "-")
		if !isRange {
			unsatisfiable()
			return ok
		}
		if first == "" { // suffix-range
			n, valid := digits(last)
			if !valid {
				unsatisfiable()
				return ok
			}
			if n > 0 && size > 0 {
				keep = append(keep, "-"+strconv.FormatInt(n, 10))
			}
			continue
		}
		a, valid := digits(first)
		if !valid {
			unsatisfiable()
			return ok
		}
		if last == "" {
			if a < size {
				keep = append(keep, strconv.FormatInt(a, 10)+"-")
			}
			continue
		}
		b, valid := digits(last)
		if !valid || b < a {
			unsatisfiable()
			return ok
		}
		if a < size {
			keep = append(keep, strconv.FormatInt(a, 10)+"-"+strconv.FormatInt(min(b, size-1), 10))
		}
	}
	if len(keep) == 0 {
		unsatisfiable()
		return ok
	}
	h.Set("Range", "bytes="+strings.Join(keep, ","))
	return ok
}

// digits parses 1*DIGIT (no sign, no spaces); values beyond int64 are
// clamped, which keeps them past any real size.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<62)/10 {
			n = 1 << 62
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
