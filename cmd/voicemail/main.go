// Command voicemail is the SIP voicemail server and its command-line client
// (README.md, docs/README.md).
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// version and revision are set by the linker (see the Makefile):
// -ldflags "-X main.version=… -X main.revision=…".
var (
	version  = "dev"
	revision = ""
)

const usage = `usage: voicemail <command> [flags]

commands:
  serve     run the SIP voicemail server (voicemail serve -h for flags)
  mailbox   list|add|show|update|delete mailboxes through the REST API
  message   list|show|download|move|delete messages through the REST API
  migrate   --from DB --from-media MEDIA --to DB --to-media MEDIA: copy an installation
  media     check [--fix]: list (remove) the media no message or mailbox owns
  gdpr      -p exportme|forgetme|undoforget -i REQUEST.json -o OUTDIR [-u TOKEN]: GDPR requests
  version   print the version
`

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "mailbox":
		return mailboxCmd(args[1:])
	case "message":
		return messageCmd(args[1:])
	case "gdpr":
		return gdprCmd(args[1:])
	case "migrate":
		return migrateCmd(args[1:])
	case "media":
		return mediaCmd(args[1:])
	case "version", "--version", "-v":
		fmt.Printf("voicemail %s (commit %s, %s)\n", version, commit(), runtime.Version())
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "voicemail: unknown command %q\n%s", args[0], usage)
	return 2
}

func commit() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
