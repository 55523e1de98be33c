package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/churnwatch/churnwatch/internal/subproc"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// procLog is the file that collects the output of every run of the
// processor, with a line of the test's own before each start and kill.
type procLog struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func newProcLog(path string) (*procLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &procLog{path: path, f: f}, nil
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (l *procLog) note(format string, args ...any) {
	fmt.Fprintf(l, "crashtest %s: %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func (l *procLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Close()
}

// tail returns the last n lines of the log.
func (l *procLog) tail(n int) string {
	b, err := os.ReadFile(l.path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// process is one `churnwatch run`.
type process struct {
	n       int
	cmd     *exec.Cmd
	started time.Time
	out     *joinWatcher
	exited  chan struct{} // closed once the process has exited
	err     error         // how it exited, once exited is closed
}

// startProcess runs `churnwatch run` with args, its output appended to log.
// The environment is the test's without CHURNWATCH_ settings, so that only
// args configure it.
func startProcess(n int, bin string, args []string, log *procLog, groups ...string) (*process, error) {
	cmd := exec.Command(bin, append([]string{"run"}, args...)...)
	cmd.Env = subproc.Env()
	w := newJoinWatcher(log, groups)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = subproc.DieWithParent()
	log.note("start %d: %s %s", n, filepath.Base(bin), strings.Join(cmd.Args[1:], " "))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{n: n, cmd: cmd, started: time.Now(), out: w, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// kill sends SIGKILL and waits until the process is gone.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and waits up to grace for a clean exit.
func (p *process) stop(grace time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("exited after SIGTERM: %w", p.err)
		}
		return nil
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("still running %s after SIGTERM; killed", grace)
	}
}

// sleep waits d, or fails when the process exits meanwhile.
func (p *process) sleep(d time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("run %d exited by itself after %s: %v", p.n, time.Since(p.started).Round(time.Millisecond), p.err)
	case <-time.After(d):
		return nil
	}
}

// waitJoined waits until every watched consumer group logged a generation.
func (p *process) waitJoined(timeout time.Duration) error {
	select {
	case <-p.out.joined:
		return nil
	case <-p.exited:
		return fmt.Errorf("run %d exited by itself before joining its consumer groups: %v", p.n, p.err)
	case <-time.After(timeout):
		return fmt.Errorf("run %d did not join its consumer groups within %s", p.n, timeout)
	}
}

// errStillWaiting is the error of until when the deadline passed.
var errStillWaiting = errors.New("still waiting")

// until checks cond every interval until it holds, and fails when the
// deadline passes (saying what was awaited, and status() when given) or
// the process exits first.
func (p *process) until(deadline time.Time, every time.Duration, what string, status func() string, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			more := ""
			if status != nil {
				more = "; " + status()
			}
			return fmt.Errorf("run %d: %w for %s after %s (%v)%s", p.n, errStillWaiting, what, time.Since(p.started).Round(time.Millisecond), err, more)
		}
		if err := p.sleep(every); err != nil {
			return err
		}
	}
}

// joinWatcher passes a process's output to the log and notices the
// "consumer group generation" lines of the watched groups.
type joinWatcher struct {
	log    *procLog
	line   []byte
	want   map[string]bool
	joined chan struct{}
}

func newJoinWatcher(log *procLog, groups []string) *joinWatcher {
	w := &joinWatcher{log: log, want: map[string]bool{}, joined: make(chan struct{})}
	for _, g := range groups {
		w.want[g] = true
	}
	return w
}

// Write is called by one goroutine at a time: the process's stdout and
// stderr are the same writer.
func (w *joinWatcher) Write(p []byte) (int, error) {
	if _, err := w.log.Write(p); err != nil {
		return 0, err
	}
	if len(w.want) == 0 {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.observe(string(w.line[:i]))
		w.line = w.line[i+1:]
	}
	w.line = append([]byte(nil), w.line...)
	return len(p), nil
}

func (w *joinWatcher) observe(line string) {
	if !strings.Contains(line, `msg="consumer group generation"`) {
		return
	}
	for _, f := range strings.Fields(line) {
		if g, ok := strings.CutPrefix(f, "group="); ok && w.want[g] {
			delete(w.want, g)
			if len(w.want) == 0 {
				close(w.joined)
			}
		}
	}
}

// evictMembers removes every member of groups, as an operator removes the
// members of an instance known to be dead: the next instance then joins at
// once instead of waiting for the broker to expire the dead one's session.
// It returns how many members were removed.
func evictMembers(ctx context.Context, cl *kgo.Client, groups ...string) (int, error) {
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, groups...)
	if err != nil {
		return 0, fmt.Errorf("describe groups: %w", err)
	}
	n := 0
	for _, g := range described.Sorted() {
		if g.Err != nil {
			return n, fmt.Errorf("describe group %s: %w", g.Group, g.Err)
		}
		if len(g.Members) == 0 {
			continue
		}
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = g.Group
		for _, m := range g.Members {
			rm := kmsg.NewLeaveGroupRequestMember()
			rm.MemberID = m.MemberID
			req.Members = append(req.Members, rm)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return n, fmt.Errorf("leave group %s: %w", g.Group, err)
		}
		if resp.ErrorCode != 0 {
			return n, fmt.Errorf("leave group %s: error code %d", g.Group, resp.ErrorCode)
		}
		for _, m := range resp.Members {
			if m.ErrorCode != 0 {
				return n, fmt.Errorf("remove member %s of group %s: error code %d", m.MemberID, g.Group, m.ErrorCode)
			}
			n++
		}
	}
	return n, nil
}

// failWithLog prints the tail of the processor's log when t failed.
func failWithLog(t *testing.T, log *procLog) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the processor's log %s:\n%s", log.path, log.tail(80))
		}
		log.close()
	})
}
