package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/vmserver/voicemail/api"
	"github.com/vmserver/voicemail/config"
	"github.com/vmserver/voicemail/gdpr"
	"github.com/vmserver/voicemail/mail"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/prompts"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/store"
)

// drainTimeout bounds how long SIGTERM waits for calls in progress.
const drainTimeout = 60 * time.Second

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	config.Register(fs)
	demo := fs.Bool("demo", false, "create the demo tenant and mailboxes 1001, 1002 and group 8000 if absent")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := config.Load(fs, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "voicemail: %v\n", err)
		return 2
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runServer(ctx, cfg, *demo, log); err != nil {
		fmt.Fprintf(os.Stderr, "voicemail: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(cfg *config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

func runServer(ctx context.Context, cfg *config.Config, demo bool, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	token, generated, err := adminToken(cfg)
	if err != nil {
		return err
	}
	raw, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer raw.Close()
	// Every change goes through the bus: MWI, events and mail follow it.
	changes := store.NewChanges()
	st := store.Notifying(raw, changes)
	blobs, err := openMedia(cfg)
	if err != nil {
		return err
	}
	if err := st.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("default tenant: %w", err)
	}
	if demo {
		if err := seedDemo(ctx, st); err != nil {
			return err
		}
	}
	format, err := media.ParseFormat(cfg.RecordingFormat)
	if err != nil {
		return fmt.Errorf("config key recording.format: %w", err)
	}
	ps, err := prompts.Load(cfg.PromptsDir)
	if err != nil {
		return fmt.Errorf("config key prompts.dir: %w", err)
	}
	rec, removed, err := vsip.Recover(ctx, st, blobs, cfg.RecordingMinSeconds, log)
	if err != nil {
		return err
	}
	if rec+removed > 0 {
		log.Info("recovered interrupted recordings", "saved", rec, "removed", removed)
	}

	// Email (SPEC §11) follows the bus; mailer stays nil (no collectors) when smtp.host is empty.
	var mailer *mail.Notifier
	if cfg.SMTPHost != "" {
		mc := mail.ConfigFrom(cfg)
		mc.Store, mc.Changes, mc.Blobs, mc.Logger = st, changes, blobs, log
		if mailer, err = mail.New(mc); err != nil {
			return err
		}
		mailer.Start()
		defer mailer.Stop()
	}

	publicIP, bindIP, err := addresses(cfg)
	if err != nil {
		return err
	}
	engine, err := media.NewEngine(media.EngineConfig{IP: bindIP, PortMin: cfg.RTPPortMin, PortMax: cfg.RTPPortMax, Logger: log})
	if err != nil {
		return err
	}
	defer engine.Close()

	var tlsConf *tls.Config
	var listeners []vsip.Listener
	for _, l := range cfg.SIPListen {
		listeners = append(listeners, vsip.Listener{Transport: l.Transport, Addr: l.Addr})
		if l.Transport == "tls" && tlsConf == nil {
			cert, err := tls.LoadX509KeyPair(cfg.SIPTLSCert, cfg.SIPTLSKey)
			if err != nil {
				return fmt.Errorf("config key sip.tls_cert: %w", err)
			}
			tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
	}
	srv, err := vsip.New(vsip.Config{
		Listeners: listeners, TLS: tlsConf, PublicIP: publicIP, AccessNumbers: cfg.AccessNumbers,
		AnswerDelay: cfg.SIPAnswerDelay, MaxCalls: cfg.SIPMaxCalls, OverloadLateness: cfg.SIPOverloadLateness,
		Recording: vsip.Recording{MaxSeconds: cfg.RecordingMaxSeconds, MinSeconds: cfg.RecordingMinSeconds,
			SilenceSeconds: cfg.RecordingSilenceSeconds, Format: format},
		LoginMaxAttempts: cfg.LoginMaxAttempts, LoginLockout: cfg.LoginLockout,
	}, vsip.Deps{Store: st, Changes: changes, Blobs: blobs, Engine: engine, Prompts: ps, Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	sipCtx, sipStop := context.WithCancel(context.Background())
	defer sipStop()
	if err := srv.Listen(sipCtx); err != nil {
		return err
	}
	// MWI follows the bus; stored subscriptions get a NOTIFY with the current state.
	go releaseWhenIdle(ctx, srv.ActiveCalls)
	if err := srv.StartMWI(ctx); err != nil {
		return fmt.Errorf("mwi: %w", err)
	}
	defer srv.StopMWI()

	// GDPR (SPEC §9) and retention (SPEC §10): the sweeper and the drop folder.
	gdprSvc, err := gdpr.New(gdpr.Config{Store: st, Blobs: blobs, DataDir: cfg.DataDir, Logger: log,
		ForgetGrace: cfg.GDPRForgetGrace, RetentionDays: cfg.RetentionDays, SweepInterval: cfg.GDPRSweepInterval,
		ExportTTL: cfg.GDPRExportTTL, SubmitDir: cfg.GDPRSubmitDir, ResultDir: cfg.GDPRResultDir})
	if err != nil {
		return err
	}
	if err := gdprSvc.Start(); err != nil {
		return fmt.Errorf("config key gdpr.submit_dir: %w", err)
	}
	defer gdprSvc.Stop()

	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("config key http.listen: %w", err)
	}
	// The API owns /metrics; SIP collectors go in api.Config.Collectors.
	apiSrv := api.New(api.Config{Store: st, Changes: changes, Blobs: blobs, AdminToken: token, Logger: log,
		GreetingFormat: format, LoginLockout: cfg.LoginLockout, ActiveCalls: srv.ActiveCalls, GDPR: gdprSvc,
		Collectors: append(srv.Collectors(), mailer.Collectors()...)})
	defer apiSrv.Close()
	httpSrv := &http.Server{
		Handler:           apiSrv,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	log.Info("voicemail ready", "http", ln.Addr().String(), "sip", cfg.SIPListen, "public_addr", publicIP.String(), "data_dir", cfg.DataDir)
	if generated || demo {
		printWelcome(cfg, token, generated, demo, publicIP)
	}

	<-ctx.Done()
	log.Info("shutting down: draining calls", "active", srv.ActiveCalls())
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	srv.Drain(dctx)
	cancel()
	srv.StopMWI() // before the listeners close: subscriptions stay stored for the next start
	sipStop()
	gdprSvc.Stop() // a drop-folder file in progress finishes; its events still reach the API
	apiSrv.Close() // ends SSE streams, persists pending webhook events
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	_ = httpSrv.Shutdown(hctx)
	log.Info("stopped")
	return nil
}

// addresses returns the address we advertise and the one RTP binds to.
func addresses(cfg *config.Config) (public, bind net.IP, err error) {
	host, _, _ := net.SplitHostPort(cfg.SIPListen[0].Addr)
	bind = net.ParseIP(host)
	if bind == nil {
		bind = net.IPv4zero
	}
	if cfg.SIPPublicAddr != "" {
		public = net.ParseIP(cfg.SIPPublicAddr)
		if public == nil {
			addrs, err := net.LookupIP(cfg.SIPPublicAddr)
			if err != nil || len(addrs) == 0 {
				return nil, nil, fmt.Errorf("config key sip.public_addr: cannot resolve %q", cfg.SIPPublicAddr)
			}
			public = addrs[0]
		}
	} else if !bind.IsUnspecified() {
		public = bind
	} else {
		public = vsip.FirstNonLoopback()
	}
	return public, bind, nil
}

// adminToken returns the configured token, or the one kept in data_dir,
// generating it at first start (SPEC §2).
func adminToken(cfg *config.Config) (token string, generated bool, err error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, false, nil
	}
	path := filepath.Join(cfg.DataDir, "admin_token")
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", false, err
	}
	token = hex.EncodeToString(buf)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	return token, true, nil
}

// seedDemo creates the demo mailboxes of SPEC §2 when absent.
func seedDemo(ctx context.Context, st store.Store) error {
	pin, err := store.HashPIN("1234")
	if err != nil {
		return err
	}
	for _, m := range []store.Mailbox{
		{Number: "1001", Name: "Alice", Type: "personal"},
		{Number: "1002", Name: "Bob", Type: "personal"},
		{Number: "8000", Name: "Support", Type: "group", Members: []string{"1001", "1002"}},
	} {
		m.Tenant, m.PINHash, m.AskPassword, m.AttachAudio = store.DefaultTenant, pin, true, true
		if err := st.CreateMailbox(ctx, &m); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("demo mailbox %s: %w", m.Number, err)
		}
	}
	return nil
}

func printWelcome(cfg *config.Config, token string, generated, demo bool, public net.IP) {
	if generated {
		fmt.Printf("Admin token (kept in %s): %s\n", filepath.Join(cfg.DataDir, "admin_token"), token)
	} else if demo {
		fmt.Printf("Admin token: %s\n", token)
	}
	if !demo {
		return
	}
	sipAddr := cfg.SIPListen[0].Addr
	if host, port, err := net.SplitHostPort(sipAddr); err == nil && net.ParseIP(host).IsUnspecified() {
		sipAddr = net.JoinHostPort(public.String(), port)
	}
	fmt.Printf("Demo tenant \"default\": mailboxes 1001 (Alice, PIN 1234), 1002 (Bob, PIN 1234), group 8000 (Alice and Bob).\n")
	fmt.Printf("Leave a message for 1001 (from the repository root):\n  sipp -sf testcalls/scenarios/leave_message.xml -s 1001 -m 1 -nostdin -i 127.0.0.1 -p 5070 -mp 16000 %s\n", sipAddr)
	fmt.Printf("List the messages:\n  curl -s -H 'Authorization: Bearer %s' http://%s/api/v1/mailboxes/1001/messages\n", token, cfg.HTTPListen)
}

// releaseWhenIdle gives the heap of a finished load back to the OS: the Go
// runtime keeps freed pages until its scavenger gets to them, so RSS would
// stay at its peak long after the calls (issue 8).
func releaseWhenIdle(ctx context.Context, active func() int) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	busy, idleTicks := false, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if active() > 0 {
			busy, idleTicks = true, 0
			continue
		}
		if idleTicks++; busy && idleTicks >= 2 {
			debug.FreeOSMemory()
			busy = false
		}
	}
}
