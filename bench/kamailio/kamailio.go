package kamailio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dsn-ims/dsn/bench/internal/sippbench"
	"github.com/dsn-ims/dsn/deploy/fleet"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Kamailio's Debian package ships for).
const clockTicks = 100

// Config is how a Kamailio process is started.
type Config struct {
	// Binary is the kamailio executable.
	Binary string
	// Kamcmd is the kamcmd executable, which reads statistics and
	// shared-memory use over the ctl socket.
	Kamcmd string
	// File is the configuration file (bench/kamailio/kamailio.cfg).
	File string
	// IP and Port are the UDP address Kamailio listens on.
	IP   string
	Port int
	// Children is the number of UDP worker processes (-n). Kamailio also
	// runs a main process, timers and the ctl handler.
	Children int
	// ShmMB is the shared memory in MiB (-m): transactions and the
	// location table live there.
	ShmMB int
	// PkgMB is each process's private memory in MiB (-M).
	PkgMB int
	// Ready bounds the wait until the ctl socket answers.
	Ready time.Duration
	// Settle bounds Recover's wait for transactions to end after a
	// failed step.
	Settle time.Duration
}

// DefaultConfig is a Kamailio for the 2-core benchmark machine: 4 UDP
// workers (two per core: a worker blocks only on its socket), 2 GiB of
// shared memory (with 256 MiB its transactions ran out of it at 1,600
// calls/s, long before the CPU did; it is mapped, not touched, so what is
// not used costs nothing), 8 MiB of private memory per process.
func DefaultConfig() Config {
	return Config{Binary: "kamailio", Kamcmd: "kamcmd", File: "kamailio.cfg", IP: "127.0.0.1",
		Children: 4, ShmMB: 2048, PkgMB: 8, Ready: 20 * time.Second, Settle: 90 * time.Second}
}

// Validate checks the fields against each other.
func (c Config) Validate() error {
	switch {
	case c.Binary == "" || c.Kamcmd == "" || c.File == "":
		return errors.New("kamailio: Binary, Kamcmd and File are required")
	case c.IP == "" || c.Port <= 0 || c.Port > 65535:
		return fmt.Errorf("kamailio: bad listen address %s:%d", c.IP, c.Port)
	case c.Children < 1:
		return fmt.Errorf("kamailio: Children %d < 1", c.Children)
	case c.ShmMB < 16 || c.PkgMB < 2:
		return fmt.Errorf("kamailio: ShmMB %d (>= 16) or PkgMB %d (>= 2) too small", c.ShmMB, c.PkgMB)
	case c.Ready <= 0 || c.Settle <= 0:
		return errors.New("kamailio: Ready and Settle must be positive")
	}
	return nil
}

// Server is a running Kamailio.
type Server struct {
	cfg     Config
	dir     string
	ctl     string // unix:<path> of the ctl socket
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	exitErr error
}

var _ sippbench.System = (*Server)(nil)

// Start runs Kamailio with cfg in the foreground (-DD, its own process
// group) and waits until its ctl socket answers; the test's cleanup stops
// it.
func Start(t fleet.TB, cfg Config) (*Server, error) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	file, err := filepath.Abs(cfg.File)
	if err != nil {
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	s := &Server{cfg: cfg, dir: t.TempDir(), exited: make(chan struct{})}
	run := filepath.Join(s.dir, "run") // Kamailio's runtime directory, its own
	if err := os.Mkdir(run, 0o700); err != nil {
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	s.ctl = "unix:" + filepath.Join(s.dir, "ctl")
	s.logPath = filepath.Join(s.dir, "kamailio.log")
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	s.cmd = exec.Command(cfg.Binary, "-f", file, "-DD", "-E", "-T",
		"-m", strconv.Itoa(cfg.ShmMB), "-M", strconv.Itoa(cfg.PkgMB), "-n", strconv.Itoa(cfg.Children),
		"-l", fmt.Sprintf("udp:%s:%d", cfg.IP, cfg.Port), "-Y", run, "-w", s.dir,
		"-A", fmt.Sprintf("CTL_SOCKET=%q", s.ctl))
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("kamailio: start: %w", err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(cfg.Ready)
	for {
		if _, err := s.rpc("core.uptime"); err == nil {
			return s, nil
		} else if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("kamailio: ctl socket did not answer within %s: %w\n%s", cfg.Ready, err, s.LogTail(20))
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("kamailio: exited at start (%v):\n%s", s.exitErr, s.LogTail(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Addr is the host:port Kamailio listens on.
func (s *Server) Addr() string { return fmt.Sprintf("%s:%d", s.cfg.IP, s.cfg.Port) }

// Config is what the server was started with.
func (s *Server) Config() Config { return s.cfg }

func (s *Server) String() string { return "kamailio" }

// Stop ends Kamailio: SIGTERM to the main process (which stops its
// children), then SIGKILL to its process group after 10 s.
func (s *Server) Stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// LogTail is the last n lines of Kamailio's log.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rpc runs one kamcmd command against the ctl socket.
func (s *Server) rpc(args ...string) (string, error) {
	cmd := exec.Command(s.cfg.Kamcmd, append([]string{"-s", s.ctl}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kamailio: kamcmd %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Shm is Kamailio's shared-memory use in bytes (core.shmmem real_used:
// the allocations with the allocator's overhead).
func (s *Server) Shm() (int64, error) { return s.shmmem("real_used") }

// shmmem reads one field of core.shmmem.
func (s *Server) shmmem(field string) (int64, error) {
	out, err := s.rpc("core.shmmem")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("kamailio: core.shmmem: %w", err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("kamailio: core.shmmem: no %s in %q", field, out)
}

// ShmMax is the most shared memory Kamailio has used since it started
// (core.shmmem max_used), in bytes.
func (s *Server) ShmMax() (int64, error) { return s.shmmem("max_used") }

// Stat reads one statistic by its full name, e.g.
// "usrloc:location_contacts" or "tmx:active_transactions".
func (s *Server) Stat(name string) (int64, error) {
	_, short, _ := strings.Cut(name, ":") // kamcmd looks statistics up by name alone
	if short == "" {
		short = name
	}
	out, err := s.rpc("stats.get_statistics", short)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && strings.TrimSpace(k) == name {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("kamailio: %s: %w", name, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("kamailio: statistic %s not in %q", name, out)
}

// procStat is what the benchmark reads of one process in /proc.
type procStat struct {
	pid, pgrp    int
	utime, stime int64 // clock ticks
}

// parseStat parses /proc/<pid>/stat (the command may hold spaces and
// parentheses: the fields start after the last ')').
func parseStat(b []byte) (procStat, error) {
	var p procStat
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return p, errors.New("kamailio: malformed /proc stat")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return p, fmt.Errorf("kamailio: /proc stat pid: %w", err)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 { // state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
		return p, errors.New("kamailio: short /proc stat")
	}
	p.pid = pid
	if p.pgrp, err = strconv.Atoi(f[2]); err != nil {
		return p, fmt.Errorf("kamailio: /proc stat pgrp: %w", err)
	}
	if p.utime, err = strconv.ParseInt(f[11], 10, 64); err != nil {
		return p, fmt.Errorf("kamailio: /proc stat utime: %w", err)
	}
	if p.stime, err = strconv.ParseInt(f[12], 10, 64); err != nil {
		return p, fmt.Errorf("kamailio: /proc stat stime: %w", err)
	}
	return p, nil
}

// group lists the processes of Kamailio's process group: the main process
// and every child it forked.
func (s *Server) group() ([]procStat, error) {
	pg := s.cmd.Process.Pid
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("kamailio: %w", err)
	}
	var out []procStat
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		p, err := parseStat(b)
		if err != nil || p.pgrp != pg {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kamailio: no process in group %d", pg)
	}
	return out, nil
}

// pss sums the proportional set size of the processes (shared memory
// counted once across them), in bytes.
func pss(ps []procStat) float64 {
	var sum float64
	for _, p := range ps {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p.pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Pss:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				sum += kb * 1024
				break
			}
		}
	}
	return sum
}

// Processes is how many processes Kamailio runs.
func (s *Server) Processes() int {
	ps, _ := s.group()
	return len(ps)
}

// Sample reads the CPU time of all of Kamailio's processes; with full
// (the gc of the interface: Kamailio has no garbage collector) also their
// memory (PSS, shared memory counted once).
func (s *Server) Sample(full bool) (sippbench.Sample, error) {
	x := sippbench.Sample{At: time.Now()}
	ps, err := s.group()
	if err != nil {
		return x, err
	}
	var ticks int64
	for _, p := range ps {
		ticks += p.utime + p.stime
	}
	x.CPU = float64(ticks) / clockTicks
	if full {
		x.RSS = pss(ps)
	}
	return x, nil
}

// Recover waits, after a failed step, until Kamailio's transactions of
// the step are gone (at most 5 left, or Settle passed) and it is quiet.
func (s *Server) Recover(t fleet.TB, _ sippbench.Sample) {
	t.Helper()
	start := time.Now()
	var n int64
	for time.Since(start) < s.cfg.Settle {
		var err error
		if n, err = s.Stat("tmx:active_transactions"); err != nil {
			t.Fatal(err)
		}
		if n <= 5 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("after the failed step: %d Kamailio transactions left after %.1fs", n, time.Since(start).Seconds())
	sippbench.WaitQuiet(t, s, 30*time.Second)
}
