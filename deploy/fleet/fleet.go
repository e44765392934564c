// Package fleet runs the product as an operator would, for end-to-end tests
// and benchmarks: real dsn-node processes on 127.0.0.x, SIPp, and BIND9.
// Each process binds port 0 and the harness learns its addresses from its
// "node: serving" log line, which is also the readiness signal.
//
// It takes a TB (satisfied by *testing.T and *testing.B) instead of
// importing package testing, so benchmarks under bench/ can use it.
package fleet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TB is the part of testing.TB the harness uses.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/dsn-node once per test run.
func Binary(t TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dsn-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "dsn-node")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/dsn-ims/dsn/cmd/dsn-node").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// requireTool skips (outside CI) or fails (in CI) when a binary is missing.
func RequireTool(t TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/usr/bin"} {
			if _, e := os.Stat(filepath.Join(d, name)); e == nil {
				return filepath.Join(d, name)
			}
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (deploy/test.sh installs it)", name)
		}
		t.Skipf("%s not installed; run deploy/test.sh to install it", name)
	}
	return p
}

type Fleet struct {
	t       TB
	Dir     string
	KeyFile string
	Domain  string
	procs   []*Proc
	// Prefix, if set, returns the command a node's process runs under,
	// e.g. {"ip", "netns", "exec", NS}; the dsn-node binary and its
	// arguments follow it. It must exec the binary (keep its PID), so that
	// Kill and Term signal the node itself.
	Prefix func(name, ip string) []string
	// HTTP, if set, is the client the admin API is reached with (e.g. one
	// that dials inside the node's network namespace).
	HTTP *http.Client
}

type Proc struct {
	f       *Fleet
	Name    string
	IP      string
	Args    []string
	SIP     string
	Cluster string
	Admin   string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	exitErr error
}

func New(t TB, domain string) *Fleet {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(key, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &Fleet{t: t, Dir: dir, KeyFile: key, Domain: domain}
	t.Cleanup(f.StopAll)
	return f
}

// start runs one node on ip, joining the given cluster addresses, and waits
// until it serves.
func (f *Fleet) Start(name, ip string, join []string, extra ...string) *Proc {
	f.t.Helper()
	p, err := f.TryStart(name, ip, f.KeyFile, join, extra...)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *Fleet) TryStart(name, ip, keyFile string, join []string, extra ...string) (*Proc, error) {
	args := []string{
		"-name", name, "-domain", f.Domain,
		"-sip", ip + ":0", "-cluster", ip + ":0", "-admin", ip + ":0",
		"-cluster-key-file", keyFile, "-log-level", "debug", "-auth-open",
		"-trusted", "127.0.0.1", // the test CSCF: SIPp callers on 127.0.0.1 may leave the DSN (IMS calls)
	}
	if len(join) > 0 {
		args = append(args, "-join", strings.Join(join, ","))
	}
	args = append(args, extra...)
	return f.Exec(name, ip, args)
}

// Exec runs dsn-node with exactly args (no defaults added) and waits until
// it serves; the log must be JSON (the default) for the readiness line.
func (f *Fleet) Exec(name, ip string, args []string) (*Proc, error) {
	p := &Proc{f: f, Name: name, IP: ip, Args: args, exited: make(chan struct{}),
		logPath: filepath.Join(f.Dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	outFile, err := os.Create(p.logPath + ".stdout")
	if err != nil {
		return nil, err
	}
	bin, argv := Binary(f.t), args
	if f.Prefix != nil {
		if pre := f.Prefix(name, ip); len(pre) > 0 {
			bin, argv = pre[0], append(append(append([]string(nil), pre[1:]...), bin), args...)
		}
	}
	p.cmd = exec.Command(bin, argv...)
	p.cmd.Stdout = outFile
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	f.procs = append(f.procs, p)
	ready := make(chan map[string]any, 1)
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if !sent && strings.Contains(line, `"node: serving"`) {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil {
					ready <- m
					sent = true
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		p.exitErr = p.cmd.Wait()
		outFile.Close()
		close(p.exited)
	}()
	select {
	case m := <-ready:
		p.SIP, _ = m["sip"].(string)
		p.Cluster, _ = m["cluster"].(string)
		p.Admin, _ = m["admin"].(string)
		return p, nil
	case <-p.exited:
		return p, fmt.Errorf("%s exited before serving (%v):\n%s", name, p.exitErr, p.LogTail(30))
	case <-time.After(30 * time.Second):
		p.Kill()
		return p, fmt.Errorf("%s did not serve within 30s:\n%s", name, p.LogTail(30))
	}
}

// Stdout returns what the process printed on standard output so far.
func (p *Proc) Stdout() string {
	b, _ := os.ReadFile(p.logPath + ".stdout")
	return string(b)
}

func (p *Proc) LogTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kill sends SIGKILL (a crash) and waits for the exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// term sends SIGTERM (graceful leave) and waits for the exit, returning
// the exit error.
func (p *Proc) Term(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %s after SIGTERM", p.Name, timeout)
	}
}

// Signal sends sig to the process (SIGHUP: reload the cluster keys).
func (p *Proc) Signal(sig os.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// LogCount counts the log lines that contain s so far.
func (p *Proc) LogCount(s string) int {
	b, _ := os.ReadFile(p.logPath)
	return strings.Count(string(b), s)
}

func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (f *Fleet) StopAll() {
	for _, p := range f.procs {
		if p.Alive() {
			p.Kill()
		}
	}
	if f.t.Failed() {
		if keep := os.Getenv("DSN_E2E_LOGS"); keep != "" {
			os.MkdirAll(keep, 0o755)
			for _, p := range f.procs {
				b, _ := os.ReadFile(p.logPath)
				os.WriteFile(filepath.Join(keep, filepath.Base(p.logPath)), b, 0o644)
			}
		}
		for _, p := range f.procs {
			f.t.Logf("--- log of %s (%v):\n%s", p.Name, p.Args, p.LogTail(60))
		}
	}
}

// getJSON fetches an admin API path into v.
func (p *Proc) GetJSON(path string, v any) (int, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	if p.f.HTTP != nil {
		c = p.f.HTTP
	}
	res, err := c.Get("http://" + p.Admin + path)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if v == nil {
		return res.StatusCode, nil
	}
	return res.StatusCode, json.NewDecoder(res.Body).Decode(v)
}

type Status struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	SIP         string `json:"sip"`
	Predecessor *struct {
		Name string `json:"name"`
	} `json:"predecessor"`
	Successors []struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	} `json:"successors"`
	Representative  bool `json:"representative"`
	Representatives []struct {
		Name string `json:"name"`
		SIP  string `json:"sip"`
	} `json:"representatives"`
	DNS *struct {
		Watching []struct {
			Peer struct {
				Name string `json:"name"`
			} `json:"peer"`
			Roles []string `json:"roles"`
			InSet bool     `json:"in_set"`
		} `json:"watching"`
	} `json:"dns"`
	Registrations struct {
		Owned   int `json:"owned"`
		Replica int `json:"replica"`
	} `json:"registrations"`
}

func (p *Proc) Status() (Status, error) {
	var st Status
	_, err := p.GetJSON("/v1/status", &st)
	return st, err
}

// eventually polls cond every 50 ms until it returns nil or d passes.
func Eventually(t TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s: %v", what, d, err)
}

// RingConsistent checks that the live processes form one ring: every
// node's predecessor is the previous ID among them and its successor list
// starts with the next min(N-1, 3) IDs in order (lookups answer from
// successor lists, so a list still missing a new node gives wrong owners).
func RingConsistent(ps []*Proc) error {
	type entry struct {
		id, name, pred string
		succs          []string
	}
	var es []entry
	for _, p := range ps {
		st, err := p.Status()
		if err != nil {
			return err
		}
		e := entry{id: st.ID, name: st.Name}
		for _, s := range st.Successors {
			e.succs = append(e.succs, s.Name)
		}
		if st.Predecessor != nil {
			e.pred = st.Predecessor.Name
		}
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].id < es[j].id })
	n := len(es)
	if n < 2 {
		return nil
	}
	depth := min(n-1, 3)
	for i, e := range es {
		for k := 0; k < depth; k++ {
			want := es[(i+1+k)%n].name
			if len(e.succs) <= k || e.succs[k] != want {
				return fmt.Errorf("%s: successor[%d] is %v, want %q", e.name, k, e.succs, want)
			}
		}
		if wantPred := es[(i-1+n)%n].name; e.pred != wantPred {
			return fmt.Errorf("%s: predecessor %q, want %q", e.name, e.pred, wantPred)
		}
	}
	return nil
}
