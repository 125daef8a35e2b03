package testcalls

// Kamailio (the front proxy of deploy/kamailio, docs/operations.md) and a
// headless baresip, started by the failover tests on free loopback ports
// in temporary folders.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	kamailioHint = "Kamailio 5.6 is not installed (apt-get install kamailio)"
	baresipHint  = "baresip is not installed (apt-get install baresip-core)"
)

// proxy is a running Kamailio in front of a cluster.
type proxy struct {
	port int
	dir  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

func (p *proxy) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// startProxy renders deploy/kamailio/kamailio.cfg with a local file that
// listens on a free port and dispatches to the instances, and runs it in the
// foreground. As root it drops to nobody/nogroup.
func startProxy(t *testing.T, instances []*server) *proxy {
	t.Helper()
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		skipOrFail(t, kamailioHint)
	}
	p := &proxy{port: freePort(t), dir: t.TempDir(), log: &syncBuffer{}, done: make(chan struct{})}
	if err := os.Chmod(p.dir, 0o755); err != nil { // nobody reads the config and writes the control socket
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "kamailio", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var ds strings.Builder
	for _, s := range instances {
		fmt.Fprintf(&ds, "1 sip:%s 0 0\n", s.sipAddr())
	}
	local := fmt.Sprintf("listen=udp:127.0.0.1:%d\nlisten=tcp:127.0.0.1:%d\n#!define DS_LIST \"%s\"\n#!define CTL_SOCK \"unix:%s\"\n",
		p.port, p.port, filepath.Join(p.dir, "dispatcher.list"), filepath.Join(p.dir, "kamailio_ctl"))
	for name, body := range map[string]string{"kamailio.cfg": string(cfg), "kamailio-local.cfg": local, "dispatcher.list": ds.String()} {
		if err := os.WriteFile(filepath.Join(p.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-DD", "-E", "-f", filepath.Join(p.dir, "kamailio.cfg"), "-Y", p.dir, "-w", p.dir,
		"-P", filepath.Join(p.dir, "kamailio.pid"), "-m", "64", "-M", "8"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody", "-g", "nogroup")
		// Its control socket lives in the folder: nobody creates and removes it.
		if u, err := user.Lookup("nobody"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			_ = os.Chown(p.dir, uid, gid)
		}
	}
	if out, err := exec.Command(bin, append([]string{"-c"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("kamailio -c rejects the rendered config: %v\n%s", err, tail(string(out), 40))
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its children go with it
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start kamailio: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("kamailio log:\n%s", tail(p.log.String(), 80))
		}
	})
	// Ready when it answers an OPTIONS to itself.
	deadline := time.Now().Add(15 * time.Second)
	for !p.ping() {
		select {
		case <-p.done:
			t.Fatalf("kamailio exited at start-up:\n%s", tail(p.log.String(), 60))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio does not answer OPTIONS on %s after 15 s:\n%s", p.addr(), tail(p.log.String(), 60))
		}
	}
	return p
}

// ping sends OPTIONS sip:<proxy> and reports a 200 within 300 ms.
func (p *proxy) ping() bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return false
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		p.addr(), port, randToken(), randToken()[:8], p.addr(), randToken())
	dst, _ := net.ResolveUDPAddr("udp", p.addr())
	if _, err := c.WriteToUDP([]byte(msg), dst); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4096)
	n, _, err := c.ReadFromUDP(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200")
}

// viaPorts lists the ports of the Via headers of a SIP message, top first.
func viaPorts(msg string) []int {
	var out []int
	for _, m := range regexp.MustCompile(`(?mi)^(?:Via|v):\s*SIP/2\.0/\w+\s+[\d.]+:(\d+)`).FindAllStringSubmatch(msg, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// sentBy returns the index of the instance whose Via is in msg (a request
// it sent through the proxy), or -1.
func sentBy(msg string, instances []*server) int {
	for _, port := range viaPorts(msg) {
		for i, s := range instances {
			if s.sipPort == port {
				return i
			}
		}
	}
	return -1
}

// softphone is a headless baresip with one account, SIP trace on.
type softphone struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startProxiedBaresip registers sip:<user>@127.0.0.1 through the proxy, with MWI
// (baresip subscribes to message-summary after a successful REGISTER).
// Audio modules stay unloaded: it never takes a call here.
//
// The account is created through baresip's console once its main loop runs,
// not from the accounts file: baresip 1.0.0's mwi module walks its list of
// subscriptions from a 1 ms start timer and re-subscribes each one, appending
// to the list it walks. When the REGISTER's 200 OK is handled before that
// timer fires (Kamailio answers in microseconds; a loaded machine delays
// baresip's main loop), the walk never ends: thousands of SUBSCRIBEs a second,
// no NOTIFY ever read, Kamailio out of memory. Created later, the account's
// REGISTER cannot be answered before the timer has fired on an empty list.
func startProxiedBaresip(t *testing.T, p *proxy, user string) *softphone {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		skipOrFail(t, baresipHint)
	}
	dir := t.TempDir()
	port, consPort := freePort(t), freePort(t)
	config := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
module_path		/usr/lib/baresip/modules
module			g711.so
module_app		account.so
module_app		menu.so
module_app		mwi.so
module			cons.so
cons_listen		127.0.0.1:%d
`, port, consPort)
	account := fmt.Sprintf("<sip:%s@127.0.0.1>;outbound=\"sip:%s\";regint=600;mwi=yes;answermode=manual", user, p.addr())
	for name, body := range map[string]string{"config": config, "accounts": "", "contacts": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sp := &softphone{out: &syncBuffer{}, done: make(chan struct{})}
	sp.cmd = exec.Command(bin, "-f", dir, "-s") // -s: SIP trace on stdout
	sp.cmd.Dir = dir
	sp.cmd.Stdout, sp.cmd.Stderr = sp.out, sp.out
	if err := sp.cmd.Start(); err != nil {
		t.Fatalf("start baresip: %v", err)
	}
	go func() { _ = sp.cmd.Wait(); close(sp.done) }()
	t.Cleanup(func() {
		_ = sp.cmd.Process.Kill()
		<-sp.done
		if t.Failed() {
			t.Logf("baresip output:\n%s", tail(sp.out.String(), 120))
		}
	})
	sp.waitOutput(t, "baresip is ready.", 20*time.Second)
	// "ready" is printed just before the main loop; 100 ms later the start
	// timer is due whenever the loop first polls, which also reads the command.
	time.Sleep(100 * time.Millisecond)
	cons, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", consPort))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if _, err := fmt.Fprintf(cons, "/uanew %s\n", account); err != nil {
		t.Fatalf("baresip console: %v", err)
	}
	sp.waitOutput(t, "REGISTER sip:", 10*time.Second)
	return sp
}

// waitOutput waits until baresip has printed want.
func (sp *softphone) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	sp.poll(t, timeout, func() bool { return strings.Contains(sp.out.String(), want) },
		func() string {
			return fmt.Sprintf("baresip did not print %q within %v:\n%s", want, timeout, tail(sp.out.String(), 60))
		})
}

// poll checks done every 20 ms until it holds; it fails the test with
// failure() after timeout, or at once if baresip exits.
func (sp *softphone) poll(t *testing.T, timeout time.Duration, done func() bool, failure func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		select {
		case <-sp.done:
			t.Fatalf("baresip exited:\n%s", tail(sp.out.String(), 60))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal(failure())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// notifies returns the NOTIFY requests in baresip's SIP trace.
func (sp *softphone) notifies() []string {
	var out []string
	for _, block := range strings.Split(sp.out.String(), "\n\n") {
		if i := strings.Index(block, "NOTIFY sip:"); i >= 0 {
			out = append(out, block[i:])
		}
	}
	return out
}

// waitNotify waits for a NOTIFY (from index from on) containing want.
func (sp *softphone) waitNotify(t *testing.T, want string, from int, timeout time.Duration) (string, int) {
	t.Helper()
	var (
		got   string
		index int
		n     []string
	)
	sp.poll(t, timeout, func() bool {
		n = sp.notifies()
		for i := from; i < len(n); i++ {
			if strings.Contains(n[i], want) {
				got, index = n[i], i
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("baresip got no NOTIFY with %q within %v (%d NOTIFYs)", want, timeout, len(n))
	})
	return got, index
}
