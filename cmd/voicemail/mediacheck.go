package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmserver/voicemail/config"
	"github.com/vmserver/voicemail/reconcile"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/mediastore"
)

const mediaUsage = `usage: voicemail media check [--fix] [--config FILE | serve's flags]

Lists the media that no message row (visible or GDPR-hidden) or mailbox
owns and that is older than media.orphan_grace: what the server's orphan
sweep removes (docs/storage.md). With --fix it removes them, under the same
lease as the servers' sweep (it waits for none: if a server is sweeping,
it says so and exits 3). Exit status: 0 nothing (left) to remove, 1 orphans
found without --fix (or not all removed), 2 usage, 3 busy.
It reads the configured db and media directly (no running server needed).
`

func mediaCmd(args []string) int {
	return mediaMain(args, os.Stdout, os.Stderr)
}

func mediaMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, mediaUsage)
			return 0
		}
		fmt.Fprint(stderr, mediaUsage)
		return 2
	}
	fs := flag.NewFlagSet("media check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fix := fs.Bool("fix", false, "remove the orphans")
	config.Register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, mediaUsage)
			return 0
		}
		fmt.Fprintf(stderr, "voicemail media check: %v\n%s", err, mediaUsage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "voicemail media check: unexpected argument %q\n%s", fs.Arg(0), mediaUsage)
		return 2
	}
	cfg, err := config.Load(fs, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "voicemail media check: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := mediaCheck(ctx, cfg, *fix, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "voicemail media check: %v\n", err)
	}
	return code
}

func mediaCheck(ctx context.Context, cfg *config.Config, fix bool, out io.Writer) (int, error) {
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return 1, err
	}
	defer st.Close()
	// A spool of its own: a running server's spool is not this
	// process's to clean (opening an object store cleans its spool).
	spool, err := os.MkdirTemp("", "voicemail-media-check-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(spool)
	blobs, err := mediastore.Open(cfg.Media, mediaOptions(cfg, spool))
	if err != nil {
		return 1, err
	}
	r, err := reconcile.New(reconcile.Config{Store: st, Blobs: blobs, Grace: cfg.MediaOrphanGrace,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 1, err
	}
	var rep reconcile.Report
	if fix {
		rep, err = r.Sweep(ctx)
		r.Stop() // gives the lease back at once
		if err == nil && rep.Skipped {
			return 3, errors.New("another instance is sweeping the media now; try again later")
		}
	} else {
		rep, err = r.Check(ctx, false)
	}
	if err != nil {
		return 1, err
	}
	for _, k := range rep.Orphans {
		fmt.Fprintln(out, k)
	}
	fmt.Fprintf(out, "checked %d, younger than %s %d, orphans %d, removed %d, failed %d\n",
		rep.Checked, cfg.MediaOrphanGrace, rep.Young, len(rep.Orphans), rep.Removed, rep.Failures)
	if len(rep.Orphans) > rep.Removed {
		return 1, nil
	}
	return 0, nil
}
