package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const messageHelp = `usage: voicemail message <subcommand> [flags]

subcommands:
  list MAILBOX [--folder F] [--caller NUMBER]   list a mailbox's messages
  show MAILBOX ID                                show one message
  download MAILBOX ID [--file OUT.wav]           save the audio (default ID.wav; - for stdout)
  move MAILBOX ID FOLDER                         move to new, old, work, family or friends
  delete MAILBOX ID                              delete a message

common flags: --server URL (VOICEMAIL_SERVER), --token T (VOICEMAIL_TOKEN),
  --config FILE (VOICEMAIL_CONFIG: find a local server as serve does),
  --tenant NAME (operator token), -o table|json
`

var messageCmds = map[string]func(c *client, fs *flag.FlagSet, args []string) error{
	"list":     messageList,
	"show":     messageShow,
	"download": messageDownload,
	"move":     messageMove,
	"delete":   messageDelete,
}

func messageCmd(args []string) int { return runClient("message", args, messageCmds, messageHelp) }

type cliMessage struct {
	ID         string    `json:"id"`
	Mailbox    string    `json:"mailbox"`
	Folder     string    `json:"folder"`
	CallerID   string    `json:"caller_id"`
	CallerE164 string    `json:"caller_e164"`
	CallerName string    `json:"caller_name"`
	ReceivedAt time.Time `json:"received_at"`
	DurationMS int64     `json:"duration_ms"`
	Urgent     bool      `json:"urgent"`
	Read       bool      `json:"read"`
	Size       int64     `json:"size"`
}

func msgPath(mailbox, id string) string {
	return "/api/v1/mailboxes/" + url.PathEscape(mailbox) + "/messages/" + url.PathEscape(id)
}

func seconds(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s" }

func messageList(c *client, fs *flag.FlagSet, args []string) error {
	folder := fs.String("folder", "", "only this folder")
	caller := fs.String("caller", "", "only this caller number")
	pos, err := parse(c, fs, args, "mailbox")
	if err != nil {
		return err
	}
	q := url.Values{}
	if *folder != "" {
		q.Set("folder", *folder)
	}
	if *caller != "" {
		q.Set("caller_id", *caller)
	}
	path := "/api/v1/mailboxes/" + url.PathEscape(pos[0]) + "/messages"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	items, raw, err := listAll[cliMessage](c, path)
	if err != nil {
		return err
	}
	if c.output == "json" {
		return c.printRawList(raw)
	}
	rows := make([][]string, 0, len(items))
	for _, m := range items {
		flags := ""
		if m.Urgent {
			flags += "urgent "
		}
		if m.Read {
			flags += "read"
		}
		rows = append(rows, []string{m.ID, m.Folder, m.CallerID, m.CallerName,
			m.ReceivedAt.Local().Format("2006-01-02 15:04:05"), seconds(m.DurationMS), flags})
	}
	c.table([]string{"ID", "FOLDER", "CALLER", "NAME", "RECEIVED", "LENGTH", "FLAGS"}, rows)
	return nil
}

func (c *client) printMessage(b []byte) error {
	if c.output == "json" {
		return c.printJSON(b)
	}
	var m cliMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %v", err)
	}
	c.fields([][2]string{
		{"id", m.ID}, {"mailbox", m.Mailbox}, {"folder", m.Folder}, {"caller", m.CallerID},
		{"caller e164", m.CallerE164}, {"caller name", m.CallerName},
		{"received", m.ReceivedAt.Format(time.RFC3339)}, {"length", seconds(m.DurationMS)},
		{"urgent", boolStr(m.Urgent)}, {"read", boolStr(m.Read)}, {"size", strconv.FormatInt(m.Size, 10) + " bytes"},
	})
	return nil
}

func messageShow(c *client, fs *flag.FlagSet, args []string) error {
	pos, err := parse(c, fs, args, "mailbox", "id")
	if err != nil {
		return err
	}
	b, err := c.do("GET", msgPath(pos[0], pos[1]), nil)
	if err != nil {
		return err
	}
	return c.printMessage(b)
}

func messageDownload(c *client, fs *flag.FlagSet, args []string) error {
	file := fs.String("file", "", "where to save the WAV (default ID.wav; - for stdout)")
	pos, err := parse(c, fs, args, "mailbox", "id")
	if err != nil {
		return err
	}
	res, err := c.send("GET", msgPath(pos[0], pos[1])+"/audio", nil, "", false)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if *file == "-" {
		_, err := io.Copy(c.out, res.Body)
		return err
	}
	out := *file
	if out == "" {
		out = pos[1] + ".wav"
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, res.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download: %v", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	if c.output == "json" {
		b, _ := json.Marshal(map[string]any{"file": out, "bytes": n})
		return c.printJSON(b)
	}
	fmt.Fprintf(c.out, "saved %s (%d bytes)\n", out, n)
	return nil
}

func messageMove(c *client, fs *flag.FlagSet, args []string) error {
	pos, err := parse(c, fs, args, "mailbox", "id", "folder")
	if err != nil {
		return err
	}
	b, err := c.do("PATCH", msgPath(pos[0], pos[1]), map[string]string{"folder": pos[2]})
	if err != nil {
		return err
	}
	return c.printMessage(b)
}

func messageDelete(c *client, fs *flag.FlagSet, args []string) error {
	pos, err := parse(c, fs, args, "mailbox", "id")
	if err != nil {
		return err
	}
	if _, err := c.do("DELETE", msgPath(pos[0], pos[1]), nil); err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON([]byte(`{"deleted":` + strconv.Quote(pos[1]) + `}`))
	}
	fmt.Fprintf(c.out, "message %s deleted\n", pos[1])
	return nil
}
