//go:build commitbench

package call

// The cost of one message commit (BENCHMARKS.md, "Commit cost"): N
// recordings, C at a time, through the real commit path (FSBlobs part and
// sidecar, WAV, fsync + rename + folder fsync, the SQLite row with its
// change-log event, the sidecar's removal) on a real folder on disk.
//
//	go test -tags commitbench -count=1 -run TestCommitCost -v ./call/
//
// COMMITBENCH_N (default 2000), COMMITBENCH_C (64), COMMITBENCH_SECONDS
// (audio per recording, 5) and COMMITBENCH_DIR (a folder on the disk to
// measure; default the test's temp dir) change the run. The test runs the
// workload twice in child processes: once plain for commits/s, once under
// strace -f -y for what each commit asks of the file system.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmserver/voicemail/media"
	"github.com/vmserver/voicemail/store"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestCommitWorkload is the child: it runs the workload and prints
// "commits N seconds S".
func TestCommitWorkload(t *testing.T) {
	dir := os.Getenv("COMMITBENCH_CHILD")
	if dir == "" {
		t.Skip("run by TestCommitCost")
	}
	n, c, secs := envInt("COMMITBENCH_N", 2000), envInt("COMMITBENCH_C", 64), envInt("COMMITBENCH_SECONDS", 5)
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "vm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, &store.Tenant{Name: store.DefaultTenant}); err != nil {
		t.Fatal(err)
	}
	const mailboxes = 100
	for i := range mailboxes {
		if err := st.CreateMailbox(ctx, &store.Mailbox{Tenant: store.DefaultTenant, Number: strconv.Itoa(1000 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	// Make the mailbox folders now: a first deposit's mkdir is not the
	// steady state.
	for i := range mailboxes {
		if err := os.MkdirAll(filepath.Join(blobs.Root(), store.DefaultTenant, strconv.Itoa(1000+i)), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	tone := media.Tone(440, time.Duration(secs)*time.Second, 0.5)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, c)
	)
	fmt.Println("COMMITBENCH start")
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				meta := partMeta{Tenant: store.DefaultTenant, Mailbox: strconv.Itoa(1000 + int(i)%mailboxes),
					ID: store.NewMessageID(), CallerID: "+33612345678", ReceivedAt: time.Now().UTC(), Format: "pcm16"}
				rec, err := newRecorder(blobs, newWriters(), meta, media.FormatPCM16, 120, 0, 500)
				if err != nil {
					errs <- err
					return
				}
				for f := tone; len(f) > 0; f = f[min(160, len(f)):] {
					rec.WriteFrame(f[:min(160, len(f))])
				}
				d, err := rec.finish()
				if err == nil {
					_, err = rec.commit(ctx, st, d, false)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Printf("COMMITBENCH commits %d seconds %.3f\n", n, el.Seconds())
}

type commitCounts struct {
	creates, renames, unlinks                 int
	fsyncWAV, fsyncDir, fsyncSidecar, fsyncDB int
	walBytes                                  int64 // written to the SQLite WAL
}

var (
	// A call interrupted by another thread's is logged twice, "name(args
	// <unfinished ...>" then "<... name resumed>) = r": the first line
	// counts (its result is taken as success), the second does not.
	straceCall = regexp.MustCompile(`^(?:\d+\s+)?(openat|fsync|fdatasync|rename|renameat|renameat2|unlink|unlinkat|pwrite64)\((.*)$`)
	// pwrite64(fd, "…"..., count, offset) or "… count, offset <unfinished ...>".
	pwriteCount = regexp.MustCompile(`, (\d+), \d+(?:\)| <unfinished)`)
	stracePath  = regexp.MustCompile(`"([^"]*)"|<([^>]*)>`)
)

// countStrace reads an strace -f -y log of the timed part of the workload.
func countStrace(t *testing.T, path string) commitCounts {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c commitCounts
	started := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "COMMITBENCH start") {
			started = true
			continue
		}
		if !started {
			continue
		}
		m := straceCall.FindStringSubmatch(line)
		if m == nil || strings.Contains(m[2], ") = -1 ") {
			continue
		}
		args := m[2]
		var paths []string
		for _, p := range stracePath.FindAllStringSubmatch(args, -1) {
			if p[2] != "unfinished ..." {
				paths = append(paths, p[1]+p[2])
			}
		}
		first := "" // fsync, pwrite64: the file of the descriptor
		if len(paths) > 0 {
			first = paths[0]
		}
		switch m[1] {
		case "openat":
			if strings.Contains(args, "O_CREAT") && len(paths) > 0 {
				c.creates++ // counted even when the file existed: an upper bound
			}
		case "pwrite64":
			if strings.HasSuffix(first, "-wal>") || strings.HasSuffix(first, "-wal") {
				if m := pwriteCount.FindStringSubmatch(args); m != nil {
					n, _ := strconv.ParseInt(m[1], 10, 64)
					c.walBytes += n
				}
			}
		case "rename", "renameat", "renameat2":
			c.renames++
		case "unlink", "unlinkat":
			c.unlinks++
		case "fsync", "fdatasync":
			switch {
			case strings.HasSuffix(first, ".db") || strings.HasSuffix(first, "-wal") || strings.HasSuffix(first, "-shm"):
				c.fsyncDB++
			case strings.HasSuffix(first, ".wav.part") || strings.HasSuffix(first, ".wav"):
				c.fsyncWAV++
			case strings.Contains(first, ".part.json"):
				c.fsyncSidecar++
			default:
				c.fsyncDir++
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

var commitLine = regexp.MustCompile(`COMMITBENCH commits (\d+) seconds ([0-9.]+)`)

func runChild(t *testing.T, strace string, n int) (commits int, seconds float64) {
	dir := os.Getenv("COMMITBENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "commitbench-"); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	args := []string{"-test.run=^TestCommitWorkload$", "-test.count=1", "-test.v"}
	var cmd *exec.Cmd
	if strace != "" {
		cmd = exec.Command("strace", append([]string{"-f", "-y", "-qq", "-o", strace,
			"-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,pwrite64,write",
			os.Args[0]}, args...)...)
	} else {
		cmd = exec.Command(os.Args[0], args...)
	}
	cmd.Env = append(os.Environ(), "COMMITBENCH_CHILD="+dir, "COMMITBENCH_N="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("workload: %v\n%s", err, out)
	}
	m := commitLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("workload printed no result:\n%s", out)
	}
	commits, _ = strconv.Atoi(string(m[1]))
	seconds, _ = strconv.ParseFloat(string(m[2]), 64)
	return commits, seconds
}

func TestCommitCost(t *testing.T) {
	if os.Getenv("COMMITBENCH_CHILD") != "" {
		t.Skip("child")
	}
	n, c, secs := envInt("COMMITBENCH_N", 2000), envInt("COMMITBENCH_C", 64), envInt("COMMITBENCH_SECONDS", 5)
	commits, seconds := runChild(t, "", n)
	t.Logf("%d recordings of %d s, %d at a time: %d commits in %.2f s = %.0f commits/s",
		n, secs, c, commits, seconds, float64(commits)/seconds)

	if _, err := exec.LookPath("strace"); err != nil {
		t.Logf("no strace (apt-get install strace): syscall counts skipped")
		return
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	sn := min(n, 500)
	commits, _ = runChild(t, log, sn)
	k := countStrace(t, log)
	per := func(v int) string { return strconv.FormatFloat(float64(v)/float64(commits), 'f', 2, 64) }
	t.Logf("per commit (strace, %d commits): file creations %s, renames %s, unlinks %s; fsync: WAV %s, folder %s, sidecar %s, SQLite %s; WAL %.1f KiB",
		commits, per(k.creates), per(k.renames), per(k.unlinks), per(k.fsyncWAV), per(k.fsyncDir), per(k.fsyncSidecar), per(k.fsyncDB),
		float64(k.walBytes)/1024/float64(commits))
}
