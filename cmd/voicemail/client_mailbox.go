package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

const mailboxHelp = `usage: voicemail mailbox <subcommand> [flags]

subcommands:
  list                     list the mailboxes
  add NUMBER [fields]      create a mailbox
  show NUMBER              show one mailbox
  update NUMBER [fields]   change the given fields
  delete NUMBER            delete a mailbox with its messages and greetings
  mwi-resume NUMBER URI    notify a stopped MWI target again (see mailbox show)

fields: --name, --pin, --type personal|group, --members 1001,1002, --email,
  --attach-audio, --delete-after-email, --max-messages, --max-seconds,
  --review, --ask-password, --operator, --timezone, --language,
  --mwi-targets sip:a@h,sip:b@h, --retention-days,
  --sip-secret S (SIP digest secret of the mailbox's phone; write-only, "" removes it)

common flags: --server URL (VOICEMAIL_SERVER), --token T (VOICEMAIL_TOKEN),
  --config FILE (VOICEMAIL_CONFIG: find a local server as serve does),
  --tenant NAME (operator token), -o table|json
`

var mailboxCmds = map[string]func(c *client, fs *flag.FlagSet, args []string) error{
	"list":       mailboxList,
	"add":        func(c *client, fs *flag.FlagSet, args []string) error { return mailboxWrite(c, fs, args, true) },
	"show":       mailboxShow,
	"update":     func(c *client, fs *flag.FlagSet, args []string) error { return mailboxWrite(c, fs, args, false) },
	"delete":     mailboxDelete,
	"mwi-resume": mailboxMWIResume,
}

func mailboxCmd(args []string) int { return runClient("mailbox", args, mailboxCmds, mailboxHelp) }

type cliMailbox struct {
	Number           string   `json:"number"`
	Name             string   `json:"name"`
	Type             string   `json:"type"`
	Members          []string `json:"members"`
	Email            string   `json:"email"`
	AttachAudio      bool     `json:"attach_audio"`
	DeleteAfterEmail bool     `json:"delete_after_email"`
	MaxMessages      int      `json:"max_messages"`
	MaxSeconds       int      `json:"max_seconds"`
	Review           bool     `json:"review"`
	AskPassword      bool     `json:"ask_password"`
	Operator         string   `json:"operator"`
	Timezone         string   `json:"timezone"`
	Language         string   `json:"language"`
	MWITargets       []string `json:"mwi_targets"`
	RetentionDays    int      `json:"retention_days"`
	HasPIN           bool     `json:"has_pin"`
	SIPSecretSet     bool     `json:"sip_secret_set"`
	CreatedAt        string   `json:"created_at"`
	UpdatedAt        string   `json:"updated_at"`
}

// listAll follows the cursors of a list route.
func listAll[T any](c *client, path string) ([]T, []json.RawMessage, error) {
	var items []T
	var raw []json.RawMessage
	cursor := ""
	for {
		p := path
		if cursor != "" {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = "&"
			}
			p += sep + "cursor=" + url.QueryEscape(cursor)
		}
		b, err := c.do("GET", p, nil)
		if err != nil {
			return nil, nil, err
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, nil, fmt.Errorf("the server sent invalid JSON: %v", err)
		}
		for _, it := range page.Items {
			var v T
			if err := json.Unmarshal(it, &v); err != nil {
				return nil, nil, fmt.Errorf("the server sent invalid JSON: %v", err)
			}
			items, raw = append(items, v), append(raw, it)
		}
		if page.Next == "" || page.Next == cursor {
			return items, raw, nil
		}
		cursor = page.Next
	}
}

func (c *client) printRawList(raw []json.RawMessage) error {
	if raw == nil {
		raw = []json.RawMessage{}
	}
	b, _ := json.Marshal(raw)
	return c.printJSON(b)
}

func mailboxList(c *client, fs *flag.FlagSet, args []string) error {
	if _, err := parse(c, fs, args); err != nil {
		return err
	}
	items, raw, err := listAll[cliMailbox](c, "/api/v1/mailboxes")
	if err != nil {
		return err
	}
	if c.output == "json" {
		return c.printRawList(raw)
	}
	rows := make([][]string, 0, len(items))
	for _, m := range items {
		rows = append(rows, []string{m.Number, m.Name, m.Type, strings.Join(m.Members, ","), m.Email})
	}
	c.table([]string{"NUMBER", "NAME", "TYPE", "MEMBERS", "EMAIL"}, rows)
	return nil
}

// cliMWITarget is one unsolicited MWI target with its state.
type cliMWITarget struct {
	Target    string `json:"target"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	StoppedAt string `json:"stopped_at"`
}

// mwiTargetStates describes each target: "sip:a@h (active)" or
// "sip:b@h (stopped: 481 at …)". An older server without the route gets the
// bare list.
func (c *client) mwiTargetStates(m cliMailbox) string {
	if len(m.MWITargets) == 0 {
		return ""
	}
	b, err := c.do("GET", "/api/v1/mailboxes/"+url.PathEscape(m.Number)+"/mwi_targets", nil)
	var page struct {
		Items []cliMWITarget `json:"items"`
	}
	if err != nil || json.Unmarshal(b, &page) != nil {
		return strings.Join(m.MWITargets, ",")
	}
	parts := make([]string, 0, len(page.Items))
	for _, t := range page.Items {
		if t.State == "stopped" {
			parts = append(parts, fmt.Sprintf("%s (stopped: %s at %s; voicemail mailbox mwi-resume %s %s)", t.Target, stopReason(t.Reason), t.StoppedAt, m.Number, t.Target))
		} else {
			parts = append(parts, t.Target+" ("+t.State+")")
		}
	}
	return strings.Join(parts, ", ")
}

func stopReason(r string) string {
	switch r {
	case "subscribed":
		return "the phone subscribed itself"
	case "":
		return "unknown"
	}
	return "answered " + r
}

func mailboxMWIResume(c *client, fs *flag.FlagSet, args []string) error {
	pos, err := parse(c, fs, args, "number", "uri")
	if err != nil {
		return err
	}
	b, err := c.do("POST", "/api/v1/mailboxes/"+url.PathEscape(pos[0])+"/mwi_targets/resume", map[string]string{"target": pos[1]})
	if err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON(b)
	}
	fmt.Fprintf(c.out, "mwi target %s of mailbox %s notified again\n", pos[1], pos[0])
	return nil
}

func (c *client) printMailbox(b []byte) error {
	if c.output == "json" {
		return c.printJSON(b)
	}
	var m cliMailbox
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %v", err)
	}
	c.fields([][2]string{
		{"number", m.Number}, {"name", m.Name}, {"type", m.Type}, {"members", strings.Join(m.Members, ",")},
		{"pin set", boolStr(m.HasPIN)}, {"sip secret set", boolStr(m.SIPSecretSet)}, {"email", m.Email}, {"attach audio", boolStr(m.AttachAudio)},
		{"delete after email", boolStr(m.DeleteAfterEmail)}, {"max messages", strconv.Itoa(m.MaxMessages)},
		{"max seconds", strconv.Itoa(m.MaxSeconds)}, {"review", boolStr(m.Review)}, {"ask password", boolStr(m.AskPassword)},
		{"operator", m.Operator}, {"timezone", m.Timezone}, {"language", m.Language},
		{"mwi targets", c.mwiTargetStates(m)}, {"retention days", strconv.Itoa(m.RetentionDays)},
		{"created", m.CreatedAt}, {"updated", m.UpdatedAt},
	})
	return nil
}

func mailboxShow(c *client, fs *flag.FlagSet, args []string) error {
	pos, err := parse(c, fs, args, "number")
	if err != nil {
		return err
	}
	b, err := c.do("GET", "/api/v1/mailboxes/"+url.PathEscape(pos[0]), nil)
	if err != nil {
		return err
	}
	return c.printMailbox(b)
}

// mailboxWrite is add (POST) and update (PATCH): only the flags given are sent.
func mailboxWrite(c *client, fs *flag.FlagSet, args []string, create bool) error {
	str := map[string]*string{}
	for _, f := range []string{"name", "pin", "type", "email", "operator", "timezone", "language", "sip-secret"} {
		str[f] = fs.String(f, "", "mailbox "+f)
	}
	lists := map[string]*string{"members": fs.String("members", "", "group members, comma-separated"),
		"mwi-targets": fs.String("mwi-targets", "", "SIP URIs for unsolicited NOTIFY, comma-separated")}
	ints := map[string]*int{}
	for _, f := range []string{"max-messages", "max-seconds", "retention-days"} {
		ints[f] = fs.Int(f, 0, f)
	}
	bools := map[string]*bool{}
	for _, f := range []string{"attach-audio", "delete-after-email", "review", "ask-password"} {
		bools[f] = fs.Bool(f, false, f+" (true|false)")
	}
	pos, err := parse(c, fs, args, "number")
	if err != nil {
		return err
	}
	body := map[string]any{}
	if create {
		body["number"] = pos[0]
	}
	key := func(f string) string { return strings.ReplaceAll(f, "-", "_") }
	fs.Visit(func(f *flag.Flag) {
		switch {
		case str[f.Name] != nil:
			body[key(f.Name)] = *str[f.Name]
		case lists[f.Name] != nil:
			l := []string{}
			for _, v := range strings.Split(*lists[f.Name], ",") {
				if v = strings.TrimSpace(v); v != "" {
					l = append(l, v)
				}
			}
			body[key(f.Name)] = l
		case ints[f.Name] != nil:
			body[key(f.Name)] = *ints[f.Name]
		case bools[f.Name] != nil:
			body[key(f.Name)] = *bools[f.Name]
		}
	})
	if !create && len(body) == 0 {
		return usagef("nothing to update: give at least one field flag")
	}
	var b []byte
	if create {
		b, err = c.do("POST", "/api/v1/mailboxes", body)
	} else {
		b, err = c.do("PATCH", "/api/v1/mailboxes/"+url.PathEscape(pos[0]), body)
	}
	if err != nil {
		return err
	}
	return c.printMailbox(b)
}

func mailboxDelete(c *client, fs *flag.FlagSet, args []string) error {
	pos, err := parse(c, fs, args, "number")
	if err != nil {
		return err
	}
	if _, err := c.do("DELETE", "/api/v1/mailboxes/"+url.PathEscape(pos[0]), nil); err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON([]byte(`{"deleted":` + strconv.Quote(pos[0]) + `}`))
	}
	fmt.Fprintf(c.out, "mailbox %s deleted\n", pos[0])
	return nil
}
