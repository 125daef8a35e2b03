package prompts

import (
	"strconv"
	"time"
)

// Digits spells a digit string one key at a time: "1001" ->
// digits/1 digits/0 digits/0 digits/1; '*' -> digits/star, '#' -> digits/pound.
// Any other character ('+', '-', spaces, letters) is skipped.
func Digits(number string) []string {
	out := make([]string, 0, len(number))
	for _, r := range number {
		switch {
		case r >= '0' && r <= '9':
			out = append(out, "digits/"+string(r))
		case r == '*':
			out = append(out, "digits/star")
		case r == '#':
			out = append(out, "digits/pound")
		}
	}
	return out
}

// Number says n in words (American style, no "and"): 0..999999, e.g.
// 105 -> num/1 num/hundred num/5; 2024 -> num/2 num/thousand num/20 num/4.
// Outside that range (negative or a million and more) it falls back to
// Digits of the absolute value.
func Number(n int) []string {
	if n < 0 || n > 999999 {
		if n < 0 {
			return Digits(strconv.FormatUint(uint64(-(n+1))+1, 10))
		}
		return Digits(strconv.Itoa(n))
	}
	if n == 0 {
		return []string{"num/0"}
	}
	var out []string
	if n >= 1000 {
		out = appendHundreds(out, n/1000)
		out = append(out, "num/thousand")
		n %= 1000
	}
	return appendHundreds(out, n)
}

// appendHundreds appends 1..999 (nothing for 0).
func appendHundreds(out []string, n int) []string {
	if n >= 100 {
		out = append(out, num(n/100), "num/hundred")
		n %= 100
	}
	switch {
	case n == 0:
	case n < 20:
		out = append(out, num(n))
	default:
		out = append(out, num(n/10*10))
		if n%10 != 0 {
			out = append(out, num(n%10))
		}
	}
	return out
}

func num(n int) string { return "num/" + strconv.Itoa(n) }

// Counted says a count with its noun: 0 -> vm-no + plural ("no messages"),
// 1 -> num/1 + singular ("one message"), n -> Number(n) + plural.
// singular and plural are prompt names, e.g. "vm-message", "vm-messages".
func Counted(n int, singular, plural string) []string {
	switch n {
	case 0:
		return []string{"vm-no", plural}
	case 1:
		return []string{"num/1", singular}
	}
	return append(Number(n), plural)
}

var weekdays = [...]string{
	time.Sunday: "day/sunday", time.Monday: "day/monday", time.Tuesday: "day/tuesday",
	time.Wednesday: "day/wednesday", time.Thursday: "day/thursday", time.Friday: "day/friday",
	time.Saturday: "day/saturday",
}

var months = [...]string{
	time.January: "month/january", time.February: "month/february", time.March: "month/march",
	time.April: "month/april", time.May: "month/may", time.June: "month/june",
	time.July: "month/july", time.August: "month/august", time.September: "month/september",
	time.October: "month/october", time.November: "month/november", time.December: "month/december",
}

// Date says the day of t relative to now, both taken in t's location:
// "today", "yesterday", else weekday, month and ordinal day
// ("Monday March third"), followed by the year when it differs from now's.
func Date(t, now time.Time) []string {
	now = now.In(t.Location())
	y, m, d := t.Date()
	ny, nm, nd := now.Date()
	if y == ny && m == nm && d == nd {
		return []string{"today"}
	}
	// Noon avoids DST edge cases when stepping back one calendar day.
	py, pm, pd := time.Date(ny, nm, nd-1, 12, 0, 0, 0, t.Location()).Date()
	if y == py && m == pm && d == pd {
		return []string{"yesterday"}
	}
	out := []string{weekdays[t.Weekday()], months[m], "ord/" + strconv.Itoa(d)}
	if y != ny {
		out = append(out, Number(y)...)
	}
	return out
}

// Time says the clock time of t in t's location, 12-hour style:
// 15:05 -> "3 oh 5 P M"; 10:00 -> "10 o'clock A M"; 0:30 -> "12 30 A M".
func Time(t time.Time) []string {
	h, m := t.Hour(), t.Minute()
	ampm := "time/am"
	if h >= 12 {
		ampm = "time/pm"
	}
	h12 := h % 12
	if h12 == 0 {
		h12 = 12
	}
	out := Number(h12)
	switch {
	case m == 0:
		out = append(out, "time/oclock")
	case m < 10:
		out = append(out, "time/oh", num(m))
	default:
		out = append(out, Number(m)...)
	}
	return append(out, ampm)
}

// DateTime is Date, "at", then Time: "today at 3 oh 5 P M",
// "Monday March third at 10 o'clock A M". Everything is said in t's
// location, so convert t to the mailbox time zone first.
func DateTime(t, now time.Time) []string {
	out := Date(t, now)
	out = append(out, "vm-at")
	return append(out, Time(t)...)
}
