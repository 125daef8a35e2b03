package mail

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/template"
	"time"
	_ "time/tzdata" // mailbox time zones work on hosts without a zoneinfo database

	"github.com/vmserver/voicemail/store"
)

// Data is what the subject and body templates see.
type Data struct {
	Tenant        string
	MailboxNumber string
	MailboxName   string // may be empty
	MailboxType   string // "personal" or "group"
	MessageID     string
	CallerID      string // as received (From / P-Asserted-Identity user)
	CallerNumber  string // the E.164 form when derivable, else CallerID
	CallerName    string // may be empty
	Caller        string // "Name <number>", "number" or "an unknown caller"
	Duration      time.Duration
	DurationText  string    // "0:08", "1:02:03"
	Received      time.Time // in the mailbox time zone
	ReceivedText  string    // "Monday, 2 January 2006 at 15:04:05 CET"
	TimeZone      string    // the zone's name, e.g. "Europe/Paris"
	AudioURL      string    // the message's audio in the REST API
	Urgent        bool
	Attached      bool // the WAV is attached to this mail
}

// DefaultSubject and DefaultBody are the templates used when
// smtp.subject_template / smtp.body_template are empty.
const (
	DefaultSubject = `{{if .Urgent}}Urgent n{{else}}N{{end}}ew voicemail for {{.MailboxNumber}}{{with .MailboxName}} ({{.}}){{end}} from {{.Caller}}`
	DefaultBody    = `{{with .MailboxName}}{{.}},

{{end}}You have a new {{if .Urgent}}urgent {{end}}voicemail message in {{if eq .MailboxType "group"}}group {{end}}mailbox {{.MailboxNumber}}.

From:     {{.Caller}}
Received: {{.ReceivedText}}
Duration: {{.DurationText}}
Listen:   {{.AudioURL}}
{{if .Attached}}
The recording is attached.
{{end}}`
)

// templates holds the parsed subject and body.
type templates struct {
	subject, body *template.Template
}

// loadTemplate parses text, or the file it names as "@path"; "" gives def.
func loadTemplate(key, text, def string) (*template.Template, error) {
	if text == "" {
		text = def
	} else if p, ok := strings.CutPrefix(text, "@"); ok {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("config key %s: %w", key, err)
		}
		text = string(b)
	}
	t, err := template.New(key).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("config key %s: %w", key, err)
	}
	// Catch references to fields that do not exist at start-up, not at the
	// first voicemail.
	if err := t.Execute(&bytes.Buffer{}, sampleData()); err != nil {
		return nil, fmt.Errorf("config key %s: %w", key, err)
	}
	return t, nil
}

func sampleData() Data {
	return Data{Tenant: "default", MailboxNumber: "1001", MailboxName: "Alice", MailboxType: store.TypePersonal,
		MessageID: "0190", CallerID: "+14155550100", CallerNumber: "+14155550100", CallerName: "Bob",
		Caller: "Bob <+14155550100>", Duration: 8 * time.Second, DurationText: "0:08",
		Received: time.Unix(0, 0).UTC(), ReceivedText: "Thursday, 1 January 1970 at 00:00:00 UTC",
		TimeZone: "UTC", AudioURL: "http://127.0.0.1:8080/api/v1/mailboxes/1001/messages/0190/audio"}
}

// render executes both templates. The subject is folded onto one line.
func (t *templates) render(d Data) (subject, body string, err error) {
	var b bytes.Buffer
	if err := t.subject.Execute(&b, d); err != nil {
		return "", "", fmt.Errorf("subject template: %w", err)
	}
	subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.body.Execute(&b, d); err != nil {
		return "", "", fmt.Errorf("body template: %w", err)
	}
	return subject, b.String(), nil
}

// newData builds the template data of a message.
func newData(publicURL string, mb *store.Mailbox, m *store.Message, attached bool) Data {
	loc := time.UTC
	if mb.Timezone != "" {
		if l, err := time.LoadLocation(mb.Timezone); err == nil {
			loc = l
		}
	}
	recv := m.ReceivedAt.In(loc)
	number := m.CallerE164
	if number == "" {
		number = m.CallerID
	}
	caller := "an unknown caller"
	switch {
	case m.CallerName != "" && number != "":
		caller = m.CallerName + " <" + number + ">"
	case number != "":
		caller = number
	case m.CallerName != "":
		caller = m.CallerName
	}
	d := time.Duration(m.DurationMS) * time.Millisecond
	return Data{
		Tenant: m.Tenant, MailboxNumber: mb.Number, MailboxName: mb.Name, MailboxType: mb.Type,
		MessageID: m.ID, CallerID: m.CallerID, CallerNumber: number, CallerName: m.CallerName, Caller: caller,
		Duration: d, DurationText: durationText(d),
		Received: recv, ReceivedText: recv.Format("Monday, 2 January 2006 at 15:04:05 MST"), TimeZone: loc.String(),
		AudioURL: AudioURL(publicURL, m), Urgent: m.Urgent, Attached: attached,
	}
}

// AudioURL is the REST API address of a message's WAV.
func AudioURL(publicURL string, m *store.Message) string {
	u := strings.TrimRight(publicURL, "/") + "/api/v1/mailboxes/" + url.PathEscape(m.Mailbox) +
		"/messages/" + url.PathEscape(m.ID) + "/audio"
	if m.Tenant != "" && m.Tenant != store.DefaultTenant {
		u += "?tenant=" + url.QueryEscape(m.Tenant)
	}
	return u
}

// durationText is m:ss, or h:mm:ss from an hour on; rounded to the second.
func durationText(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
