package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vmserver/voicemail/api"
	"github.com/vmserver/voicemail/call"
	"github.com/vmserver/voicemail/config"
	"github.com/vmserver/voicemail/diskspace"
	"github.com/vmserver/voicemail/gdpr"
	"github.com/vmserver/voicemail/keyfile"
	"github.com/vmserver/voicemail/mail"
	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/mwi"
	"github.com/vmserver/voicemail/prompts"
	"github.com/vmserver/voicemail/reconcile"
	vsip "github.com/vmserver/voicemail/sip"
	"github.com/vmserver/voicemail/sipauth"
	"github.com/vmserver/voicemail/store"
	"github.com/vmserver/voicemail/web"
)

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // one error line, not the whole flag list
	config.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, "usage: voicemail serve [flags]\n\nEvery flag is also a YAML key and an environment variable; see docs/configuration.md.\n\n")
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(os.Stderr, "voicemail serve: %v (voicemail serve -h for help)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "voicemail serve: unexpected argument %q (voicemail serve -h for help)\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(fs, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "voicemail serve: %v\n", err)
		return 2
	}
	log := newLogger(cfg)
	// Libraries that log to slog's default (sipgo's header parser, for one)
	// use the same handler and format as the server.
	slog.SetDefault(log)
	cur := runtime.GOMAXPROCS(0)
	if n := minProcs(cur, os.Getenv("GOMAXPROCS")); n != cur {
		runtime.GOMAXPROCS(n)
		log.Info("two Go processors on one CPU, so that a blocking file or database call does not stall the media (GOMAXPROCS sets it)",
			"was", cur, "gomaxprocs", n)
	}
	setMemoryLimit(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runServer(ctx, cfg, cfg.Demo, log); err != nil {
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
	st, err := store.OpenWith(ctx, cfg.DB, store.Options{MaxConns: cfg.DBMaxConns, MaxIdleConns: cfg.DBMaxIdleConns,
		ConnMaxLifetime: cfg.DBConnMaxLifetime, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	// Every change is written to the store's change log in its own
	// transaction; the bus publishes that log (on PostgreSQL: every
	// instance's changes) to MWI, events and mail. It starts from the head
	// taken here, once all of them subscribed, so start-up changes
	// (recovered recordings, the demo) reach them too.
	changes := store.NewChanges()
	head, err := st.ChangeHead(ctx)
	if err != nil {
		return err
	}
	blobs, err := openMedia(cfg)
	if err != nil {
		return err
	}
	if err := st.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("default tenant: %w", err)
	}
	if demo {
		if err := seedDemo(ctx, st, cfg.SIPAuthRealm); err != nil {
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
	rec, removed, err := call.Recover(ctx, st, blobs, cfg.RecordingMinSeconds, log)
	if err != nil {
		return err
	}
	if rec+removed > 0 {
		log.Info("recovered interrupted recordings", "saved", rec, "removed", removed)
	}

	// Email (docs/email.md) follows the bus; mailer stays nil (no collectors) when smtp.host is empty.
	var mailer *mail.Notifier
	if cfg.SMTPHost != "" {
		if mailer, err = mail.New(mailConfig(cfg), mail.Deps{Store: st, Changes: changes, Blobs: blobs, Logger: log}); err != nil {
			return err
		}
		mailer.Start()
		defer mailer.Stop()
	}

	publicIP, bindIP, err := addresses(cfg)
	if err != nil {
		return err
	}
	engine, err := media.NewEngine(media.EngineConfig{IP: bindIP, PortMin: cfg.RTPPortMin, PortMax: cfg.RTPPortMax, Mux: cfg.MediaRTPMux, Logger: log})
	if err != nil {
		return err
	}
	defer engine.Close()

	var tlsConf *tls.Config
	var cert *vsip.Certificate
	var listeners []vsip.Listener
	for _, l := range cfg.SIPListen {
		listeners = append(listeners, vsip.Listener{Transport: l.Transport, Addr: l.Addr})
		if l.Transport == "tls" && tlsConf == nil {
			if cert, err = vsip.LoadCertificate(cfg.SIPTLSCert, cfg.SIPTLSKey, log); err != nil {
				return fmt.Errorf("config key sip.tls_cert: %w", err)
			}
			tlsConf = cert.Config()
		}
	}
	// SIGHUP reloads the TLS certificate (docs/operations.md): renewals
	// need no restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go reloadOnHUP(ctx, hup, cert, log)
	// Free space of the media and database folders (media.min_free):
	// /readyz, API writes (507) and new deposits (503).
	space := diskspace.New(diskspace.Config{Paths: spacePaths(cfg), Min: cfg.MediaMinFree, Logger: log})
	go space.Run(ctx)
	// Calls (package call) run on the dialogs signalling (package sip)
	// answers; MWI (package mwi) answers its SUBSCRIBEs and sends through it.
	calls := call.New(call.Config{
		Recording: call.Recording{MaxSeconds: cfg.RecordingMaxSeconds, MinSeconds: cfg.RecordingMinSeconds,
			SilenceSeconds: cfg.RecordingSilenceSeconds, TailMS: cfg.RecordingTailMS, Format: format},
		LoginMaxAttempts: cfg.LoginMaxAttempts, LoginLockout: cfg.LoginLockout,
	}, call.Deps{Store: st, Blobs: blobs, Prompts: ps, Logger: log, Space: space})
	sipCfg := vsip.Config{
		Listeners: listeners, TLS: tlsConf, PublicIP: publicIP, AccessNumbers: cfg.AccessNumbers,
		AnswerDelay: cfg.SIPAnswerDelay, MaxCalls: cfg.SIPMaxCalls, OverloadLateness: cfg.SIPOverloadLateness,
		TCPIdleTimeout: cfg.SIPTCPIdleTimeout, TCPMaxPerSource: cfg.SIPTCPMaxPerSource,
		RTPTimeout: cfg.MediaRTPTimeout, StrictRTPPackets: cfg.MediaStrictRTPPackets,
		Flood: floodConfig(cfg),
		SRTP:  cfg.MediaSRTP, SRTPAllowInsecure: cfg.MediaSRTPAllowInsecureKeys,
	}
	if err := sipTrust(ctx, cfg, st, &sipCfg); err != nil {
		return err
	}
	srv, err := vsip.New(sipCfg, vsip.Deps{Store: st, Engine: engine, Calls: calls, Logger: log,
		Auth: st, Registrations: st})
	if err != nil {
		return err
	}
	notifier := mwi.New(mwi.Deps{Server: srv, Store: st, Changes: changes, Logger: log,
		Instance: cfg.ClusterInstanceID, Heartbeat: cfg.ClusterHeartbeat})
	// Phones registered with digest get unsolicited NOTIFYs (mwi/registered.go).
	registered := mwi.NewRegistered(srv, st, changes, log)
	registered.Start()
	defer registered.Stop()
	defer srv.Close()
	sipCtx, sipStop := context.WithCancel(context.Background())
	defer sipStop()
	if err := srv.Listen(sipCtx); err != nil {
		return err
	}
	// MWI follows the bus; stored subscriptions get a NOTIFY with the current state.
	go releaseWhenIdle(ctx, srv.ActiveCalls)
	if err := notifier.Start(ctx); err != nil {
		return fmt.Errorf("mwi: %w", err)
	}
	defer notifier.Stop()

	// GDPR and retention (docs/gdpr.md): the sweeper and the drop folder.
	gdprSvc, err := gdpr.New(gdpr.Config{Store: st, Blobs: blobs, DataDir: cfg.DataDir, Logger: log,
		ForgetGrace: cfg.GDPRForgetGrace, RetentionDays: cfg.RetentionDays, SweepRate: cfg.RetentionSweepRate, SweepInterval: cfg.GDPRSweepInterval,
		ExportTTL: cfg.GDPRExportTTL, SubmitDir: cfg.GDPRSubmitDir, ResultDir: cfg.GDPRResultDir})
	if err != nil {
		return err
	}
	if err := gdprSvc.Start(); err != nil {
		return fmt.Errorf("config key gdpr.submit_dir: %w", err)
	}
	defer gdprSvc.Stop()

	// Media that no row owns (a crash between a row's deletion and its
	// blob's, a forward whose row failed) is swept by one instance at a
	// time; committed recordings still waiting for their row get it first.
	orphans, err := reconcile.New(reconcile.Config{Store: st, Blobs: blobs, Logger: log,
		Grace: cfg.MediaOrphanGrace, Interval: cfg.MediaOrphanSweepInterval,
		Settle: func(ctx context.Context) error {
			_, _, err := call.RecoverUnsettled(ctx, st, blobs, call.SidecarGrace, call.SidecarGrace, time.Now(), log)
			return err
		}})
	if err != nil {
		return err
	}
	orphans.Start()
	defer orphans.Stop()

	webhookPolicy, err := api.ParseWebhookAllow(cfg.WebhooksAllowHosts)
	if err != nil {
		return fmt.Errorf("config key webhooks.allow_hosts: %w", err)
	}
	webhookKey, err := keyfile.Load(filepath.Join(cfg.DataDir, "webhook_key"))
	if err != nil {
		return fmt.Errorf("webhook secrets: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("config key http.listen: %w", err)
	}
	if cfg.DebugPprofListen != "" {
		stopPprof, err := servePprof(cfg.DebugPprofListen, log)
		if err != nil {
			return fmt.Errorf("config key debug.pprof_listen: %w", err)
		}
		defer stopPprof()
	}
	// The API owns /metrics; SIP collectors go in api.Config.Collectors.
	apiSrv := api.New(api.Config{SIPAuthRealm: cfg.SIPAuthRealm, Store: st, Changes: changes, Blobs: blobs, AdminToken: token, Logger: log,
		GreetingFormat: format, LoginLockout: cfg.LoginLockout, ActiveCalls: srv.ActiveCalls, GDPR: gdprSvc,
		Collectors:         slices.Concat(srv.Collectors(), calls.Collectors(), notifier.Collectors(), mailer.Collectors(), space.Collectors(), orphans.Collectors()),
		MaxGreetingSeconds: cfg.GreetingMaxSeconds, Space: space, WebhookPolicy: webhookPolicy, WebhookKey: webhookKey,
		Web: web.Handler(),
		// Dead after three missed heartbeats, as for MWI (docs/mwi.md).
		WebhookConsumerLease: 3 * cfg.ClusterHeartbeat})
	defer apiSrv.Close()
	stopFollow := store.Follow(st, head, changes)
	defer stopFollow()
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
	if !demo {
		hintNoMailboxes(ctx, st, cfg)
	}

	<-ctx.Done()
	log.Info("shutting down: draining calls", "active", srv.ActiveCalls())
	dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownDrainTimeout)
	srv.Drain(dctx)
	cancel()
	notifier.Stop() // before the listeners close: subscriptions stay stored for the next start
	sipStop()
	gdprSvc.Stop() // a drop-folder file in progress finishes; its events still reach the API
	stopFollow()   // publishes the last committed changes
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = changes.Flush(fctx) // and lets every subscriber take them
	fcancel()
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
// generating it at first start (docs/configuration.md).
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

// seedDemo creates the demo mailboxes when absent (docs/configuration.md, key demo).
// demoSIPSecrets are the demo phones' digest secrets (docs/sip.md): a
// softphone pointed at `make run` registers and subscribes with them.
var demoSIPSecrets = map[string]string{"1001": "alice-demo", "1002": "bob-demo"}

func seedDemo(ctx context.Context, st store.Store, realmConfig string) error {
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
		secret, ok := demoSIPSecrets[m.Number]
		if !ok {
			continue
		}
		if _, err := st.GetSIPCredentials(ctx, store.DefaultTenant, m.Number); err == nil {
			continue // set before (perhaps changed since): kept
		}
		var domains []string
		if t, err := st.GetTenant(ctx, store.DefaultTenant); err == nil {
			domains = t.Domains
		}
		realm := sipauth.Realm(realmConfig, domains, store.DefaultTenant) // as the SIP server challenges
		c := &store.SIPCredentials{Tenant: store.DefaultTenant, Mailbox: m.Number, Realm: realm}
		if c.HA1MD5, err = sipauth.HA1(sipauth.MD5, m.Number, realm, secret); err != nil {
			return err
		}
		if c.HA1SHA256, err = sipauth.HA1(sipauth.SHA256, m.Number, realm, secret); err != nil {
			return err
		}
		if err := st.SetSIPCredentials(ctx, c); err != nil {
			return fmt.Errorf("demo mailbox %s: SIP secret: %w", m.Number, err)
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
	// The scenario ships in the source tree: print an absolute path when we
	// run from it, so that the line works from any folder.
	scenario, scenarioWhere := "testcalls/scenarios/leave_message.xml", " (from the repository root)"
	if abs, err := filepath.Abs(scenario); err == nil {
		if _, err := os.Stat(abs); err == nil {
			scenario, scenarioWhere = abs, ""
		}
	}
	if host, port, err := net.SplitHostPort(sipAddr); err == nil && net.ParseIP(host).IsUnspecified() {
		sipAddr = net.JoinHostPort(public.String(), port)
	}
	fmt.Printf("Demo tenant \"default\": mailboxes 1001 (Alice, PIN 1234), 1002 (Bob, PIN 1234), group 8000 (Alice and Bob).\n")
	fmt.Printf("A softphone may register and subscribe as 1001 (SIP password %s) or 1002 (%s).\n", demoSIPSecrets["1001"], demoSIPSecrets["1002"])
	fmt.Printf("Leave a message for 1001%s:\n  sipp -sf %s -s 1001 -m 1 -nostdin -i 127.0.0.1 -p 5070 -mp 16000 %s\n", scenarioWhere, scenario, sipAddr)
	fmt.Printf("List the messages:\n  curl -s -H 'Authorization: Bearer %s' http://%s/api/v1/mailboxes/1001/messages\n", token, cfg.HTTPListen)
}

// hintNoMailboxes says what to do next when no tenant has a mailbox yet:
// without one every call gets 404.
func hintNoMailboxes(ctx context.Context, st store.Store, cfg *config.Config) {
	tenants, err := st.ListTenants(ctx)
	if err != nil {
		return
	}
	for _, t := range tenants {
		if items, _, err := st.ListMailboxes(ctx, t.Name, "", 1); err != nil || len(items) > 0 {
			return
		}
	}
	token := fmt.Sprintf("\"$(cat %s)\"", filepath.Join(cfg.DataDir, "admin_token"))
	if cfg.AdminToken != "" {
		token = "<your auth.admin_token>" // never print a configured secret
	}
	fmt.Printf("No mailboxes yet: every call gets 404. Create one with\n"+
		"  voicemail mailbox add 1001 --name Alice --pin 1234 --server %s --token %s\n"+
		"or restart with --demo (YAML: demo: true) for the demo mailboxes 1001, 1002 and 8000.\n",
		localURL(cfg.HTTPListen), token)
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

// spacePaths are the folders whose file systems media.min_free guards:
// the local media volume and the SQLite database (remote stores have
// their own space to watch).
func spacePaths(cfg *config.Config) map[string]string {
	paths := map[string]string{}
	if p, ok := strings.CutPrefix(cfg.Media, "file://"); ok {
		paths["media"] = p
	}
	if p, ok := strings.CutPrefix(cfg.DB, "sqlite://"); ok {
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		paths["database"] = filepath.Dir(p)
	}
	return paths
}

// reloadOnHUP reloads the SIP TLS certificate on each SIGHUP until ctx
// ends; a pair that does not load keeps the current one (logged).
// Without a tls: listener SIGHUP is logged and ignored.
func reloadOnHUP(ctx context.Context, hup chan os.Signal, cert *vsip.Certificate, log *slog.Logger) {
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if cert == nil {
				log.Info("SIGHUP: nothing to reload (no tls: listener)")
				continue
			}
			_ = cert.Reload()
		}
	}
}
