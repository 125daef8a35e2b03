package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmserver/voicemail/config"
	"github.com/vmserver/voicemail/migrate"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/store/mediastore"
)

const migrateUsage = `usage: voicemail migrate --from DB --from-media MEDIA --to DB --to-media MEDIA [--workers N] [--config FILE]

Copies tenants, mailboxes, greetings, messages (audio first, then the row)
and webhooks from one installation to another, e.g.
  voicemail migrate --from sqlite:///var/lib/voicemail/voicemail.db --from-media file:///var/lib/voicemail/media \
    --to postgres://vm@db/voicemail --to-media 's3://vm-media/prod?region=eu-west-3'
It is idempotent: run it again after an interruption, or to catch up.
Object store credentials: s3.access_key/s3.secret_key, azure.account_key/azure.sas_token
(--config file or VOICEMAIL_* variables), else AWS_* / AZURE_STORAGE_* variables.
--from and --from-media default to the configured db and media.
`

func migrateCmd(args []string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, migrateUsage) }
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "source database URL")
	fromMedia := fs.String("from-media", "", "source media URL")
	to := fs.String("to", "", "target database URL")
	toMedia := fs.String("to-media", "", "target media URL")
	workers := fs.Int("workers", 4, "messages copied in parallel")
	config.Register(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Print(migrateUsage)
			return 0
		}
		fmt.Fprintf(os.Stderr, "voicemail migrate: %v\n%s", err, migrateUsage)
		return 2
	}
	cfg, err := config.Load(fs, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "voicemail migrate: %v\n", err)
		return 2
	}
	if *from == "" {
		*from = cfg.DB
	}
	if *fromMedia == "" {
		*fromMedia = cfg.Media
	}
	if *to == "" || *toMedia == "" {
		fmt.Fprintf(os.Stderr, "voicemail migrate: --to and --to-media are required\n%s", migrateUsage)
		return 2
	}
	if *from == *to || *fromMedia == *toMedia {
		fmt.Fprintln(os.Stderr, "voicemail migrate: the source and the target must differ")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runMigrate(ctx, cfg, *from, *fromMedia, *to, *toMedia, *workers, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "voicemail migrate: %v\n", err)
		return 1
	}
	return 0
}

func runMigrate(ctx context.Context, cfg *config.Config, from, fromMedia, to, toMedia string, workers int, out, errOut *os.File) error {
	// Object stores spool whole files before an upload; nothing stays.
	spool, err := os.MkdirTemp("", "voicemail-migrate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(spool)
	src, err := store.Open(ctx, from)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer src.Close()
	dst, err := store.Open(ctx, to)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer dst.Close()
	srcMedia, err := mediastore.Open(fromMedia, mediaOptions(cfg, spool+"/from"))
	if err != nil {
		return fmt.Errorf("source media: %w", err)
	}
	dstMedia, err := mediastore.Open(toMedia, mediaOptions(cfg, spool+"/to"))
	if err != nil {
		return fmt.Errorf("target media: %w", err)
	}
	for name, b := range map[string]store.Blobs{"source media": srcMedia, "target media": dstMedia} {
		if err := b.Ping(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	p := newProgress(errOut)
	start := time.Now()
	rep, err := migrate.Run(ctx, migrate.Options{
		From: src, FromMedia: srcMedia, To: dst, ToMedia: dstMedia,
		Workers: workers, Progress: p.update,
	})
	p.finish()
	fmt.Fprintf(out, "tenants %d copied %d present; mailboxes %d copied %d present; greetings %d copied %d present; "+
		"messages %d copied %d present; webhooks %d copied %d present; %d audio bytes in %s\n",
		rep.Tenants.Copied, rep.Tenants.Present, rep.Mailboxes.Copied, rep.Mailboxes.Present,
		rep.Greetings.Copied, rep.Greetings.Present, rep.Messages.Copied, rep.Messages.Present,
		rep.Webhooks.Copied, rep.Webhooks.Present, rep.Bytes, time.Since(start).Round(time.Millisecond))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "verified: every source mailbox and message is in the target with its audio")
	return nil
}

// progress draws a bar on a terminal, or prints a line every few seconds
// when the output is a file or a pipe (logs).
type progress struct {
	mu    sync.Mutex
	w     *os.File
	tty   bool
	last  time.Time
	start time.Time
	cur   migrate.Progress
	drawn bool
}

func newProgress(w *os.File) *progress {
	fi, err := w.Stat()
	return &progress{w: w, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, start: time.Now()}
}

func (p *progress) update(m migrate.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.Done > p.cur.Done {
		p.cur = m
	}
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if time.Since(p.last) < every && m.Done < m.Total {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	m := p.cur
	rate := float64(m.Done) / max(time.Since(p.start).Seconds(), 0.001)
	if !p.tty {
		fmt.Fprintf(p.w, "migrate: %d/%d messages, %d MB, %.0f msg/s\n", m.Done, m.Total, m.Bytes>>20, rate)
		return
	}
	const width = 30
	fill := width
	pct := 100.0
	if m.Total > 0 {
		fill = int(min(m.Done, m.Total) * width / m.Total)
		pct = float64(m.Done) * 100 / float64(m.Total)
	}
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %d/%d messages %d MB %.0f msg/s ",
		strings.Repeat("#", fill), strings.Repeat(" ", width-fill), pct, m.Done, m.Total, m.Bytes>>20, rate)
	p.drawn = true
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur.Done > 0 {
		p.draw()
	}
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
