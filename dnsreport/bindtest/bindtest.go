package bindtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Zone is one primary zone: its origin and RFC 1035 master-file text
// (with SOA and NS; MinimalZone writes both).
type Zone struct {
	Origin string
	Text   string
}

// Config describes the server to start. Zero fields take the values of
// DefaultConfig.
type Config struct {
	// Zones are served as primaries, updatable with the key
	// (update-policy grant <key> zonesub ANY) and transferable with it.
	Zones []Zone
	// KeyName and Algorithm of the key tsig-keygen makes (defaults
	// "dsn-test-key", "hmac-sha256").
	KeyName   string
	Algorithm string
	// StartTimeout bounds the wait until named answers SOA for every zone
	// (default 20s).
	StartTimeout time.Duration
}

// DefaultConfig has no zones (add at least one), key "dsn-test-key"
// (hmac-sha256) and a 20s start timeout.
func DefaultConfig() Config {
	return Config{KeyName: "dsn-test-key", Algorithm: "hmac-sha256", StartTimeout: 20 * time.Second}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.KeyName == "" {
		c.KeyName = d.KeyName
	}
	if c.Algorithm == "" {
		c.Algorithm = d.Algorithm
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = d.StartTimeout
	}
	return c
}

// Validate checks the zones, key name and timeout (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Zones) == 0 {
		return errors.New("bindtest: no zones")
	}
	for i, z := range c.Zones {
		if _, ok := dns.IsDomainName(z.Origin); !ok || z.Origin == "" {
			return fmt.Errorf("bindtest: Zones[%d].Origin %q is not a domain name", i, z.Origin)
		}
	}
	for _, r := range strings.TrimSuffix(c.KeyName, ".") {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("bindtest: key name %q: use letters, digits, '-' and '.'", c.KeyName)
		}
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("bindtest: StartTimeout %v is negative", c.StartTimeout)
	}
	return nil
}

// Server is one named process with its own directory, port and key.
// Methods are safe for concurrent use.
type Server struct {
	dir     string
	addr    string
	keyName string
	zones   []string
	named   string
	timeout time.Duration

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	log  *os.File
}

// Named returns the path of the named binary (PATH, then /usr/sbin).
func Named() (string, error) { return Find("named") }

// TSIGKeygen returns the path of tsig-keygen.
func TSIGKeygen() (string, error) { return Find("tsig-keygen") }

// Dig returns the path of dig.
func Dig() (string, error) { return Find("dig") }

// Find returns the path of an installed tool: PATH first, then the sbin
// and bin directories BIND packages install into.
func Find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("bindtest: %s not found in PATH or /usr/sbin (install bind9, bind9-utils, bind9-dnsutils)", name)
}

// Availability tells a test what to do about missing binaries: skip (a
// reason, when a binary is missing and the CI variable is unset), fail
// (err, when one is missing and CI is set), or run (both empty).
func Availability(binaries ...string) (skip string, err error) {
	if len(binaries) == 0 {
		binaries = []string{"named", "tsig-keygen"}
	}
	for _, b := range binaries {
		if _, ferr := Find(b); ferr != nil {
			if os.Getenv("CI") != "" {
				return "", fmt.Errorf("%w (CI is set, so this is a failure)", ferr)
			}
			return ferr.Error() + "; skipping (set CI=true to make this a failure)", nil
		}
	}
	return "", nil
}

// TB is the part of testing.TB that Require uses (this package does not
// import testing).
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
	Cleanup(func())
}

// Require starts a server for a test: it skips or fails per Availability,
// fails the test when named does not come up, and closes the server at
// the end of the test.
func Require(tb TB, cfg Config) *Server {
	tb.Helper()
	skip, err := Availability("named", "tsig-keygen")
	if err != nil {
		tb.Fatal(err)
	}
	if skip != "" {
		tb.Skip(skip)
	}
	s, err := Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// Start writes named.conf, the zone files and a tsig-keygen key into a new
// temporary directory, starts named on a free 127.0.0.1 port and waits
// until it answers SOA for every zone.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := cfg.withDefaults()
	named, err := Named()
	if err != nil {
		return nil, err
	}
	keygen, err := TSIGKeygen()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bindtest-")
	if err != nil {
		return nil, fmt.Errorf("bindtest: %w", err)
	}
	s := &Server{dir: dir, keyName: strings.TrimSuffix(opts.KeyName, "."), named: named, timeout: opts.StartTimeout}
	fail := func(err error) (*Server, error) {
		_ = s.Close()
		return nil, err
	}
	key, err := exec.Command(keygen, "-a", opts.Algorithm, s.keyName).Output()
	if err != nil {
		return fail(fmt.Errorf("bindtest: tsig-keygen: %w", err))
	}
	if err := os.WriteFile(s.KeyFile(), key, 0o600); err != nil {
		return fail(fmt.Errorf("bindtest: %w", err))
	}
	for _, z := range opts.Zones {
		origin := dns.Fqdn(z.Origin)
		s.zones = append(s.zones, origin)
		if err := os.WriteFile(filepath.Join(dir, zoneFile(origin)), []byte(z.Text), 0o644); err != nil {
			return fail(fmt.Errorf("bindtest: %w", err))
		}
	}
	// A free port can be taken between probing and named binding it; try
	// a few.
	var lastErr error
	for try := 0; try < 3; try++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := os.WriteFile(s.confPath(), []byte(s.namedConf(port)), 0o644); err != nil {
			return fail(fmt.Errorf("bindtest: %w", err))
		}
		if lastErr = s.Start(); lastErr == nil {
			return s, nil
		}
		if !strings.Contains(s.Log(), "address in use") {
			break
		}
	}
	return fail(lastErr)
}

func zoneFile(origin string) string {
	name := strings.TrimSuffix(origin, ".")
	if name == "" {
		name = "root"
	}
	return "db." + name
}

func (s *Server) confPath() string { return filepath.Join(s.dir, "named.conf") }

func (s *Server) namedConf(port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "include %q;\n", s.KeyFile())
	fmt.Fprintf(&b, `options {
	directory %q;
	pid-file none;
	session-keyfile none;
	managed-keys-directory %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-transfer { key %q; };
};
controls { };
`, s.dir, s.dir, port, s.keyName)
	for _, z := range s.zones {
		fmt.Fprintf(&b, `zone %q {
	type primary;
	file %q;
	update-policy { grant %q zonesub ANY; };
};
`, z, zoneFile(z), s.keyName)
	}
	return b.String()
}

// freePort finds a port free for both UDP and TCP on 127.0.0.1.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("bindtest: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("bindtest: no free port on 127.0.0.1")
}

// Addr is "127.0.0.1:port"; it stays the same across Stop and Start.
func (s *Server) Addr() string { return s.addr }

// KeyFile is the key file tsig-keygen wrote (mode 0600).
func (s *Server) KeyFile() string { return filepath.Join(s.dir, "tsig.key") }

// KeyName is the TSIG key's name (without trailing dot).
func (s *Server) KeyName() string { return s.keyName }

// Dir is the server's directory (named.conf, zone files, journals,
// named.log).
func (s *Server) Dir() string { return s.dir }

// Log returns everything named has written so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "named.log"))
	if err != nil {
		return ""
	}
	return string(b)
}

// Start (re)starts named with the same configuration, port and data
// (journals included) and waits until it answers. It is a no-op when
// named is running.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() {
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "named.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bindtest: %w", err)
	}
	// -g: foreground, log to stderr; -n 1: one worker thread.
	cmd := exec.Command(s.named, "-g", "-n", "1", "-c", s.confPath())
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("bindtest: start named: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.log = cmd, done, logf
	if err := s.waitReady(); err != nil {
		s.stopLocked()
		return fmt.Errorf("%w\n--- named.log ---\n%s", err, tail(s.Log(), 60))
	}
	return nil
}

func (s *Server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// waitReady polls SOA of every zone until all answer NOERROR, named exits
// or the start timeout passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(s.timeout)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	pending := append([]string(nil), s.zones...)
	for len(pending) > 0 {
		select {
		case <-s.done:
			return fmt.Errorf("bindtest: named exited during start-up (%s)", s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bindtest: named at %s did not answer SOA for %v within %v", s.addr, pending, s.timeout)
		}
		m := new(dns.Msg)
		m.SetQuestion(pending[0], dns.TypeSOA)
		r, _, err := c.Exchange(m, s.addr)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			pending = pending[1:]
			continue
		}
		if zone := strings.TrimSuffix(pending[0], "."); strings.Contains(s.Log(), "zone "+zone+"/IN: not loaded due to errors") {
			return fmt.Errorf("bindtest: named could not load zone %s", pending[0])
		}
		select { // poll interval; an exit ends the wait at once
		case <-s.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Stop terminates named (SIGTERM, SIGKILL after 10s) and waits for it to
// exit. Zone data and journals stay for a later Start.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	if s.running() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	s.cmd = nil
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
	return nil
}

// Close stops named and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// MinimalZone is master-file text for an empty zone with SOA, NS
// ns.<origin> and its A glue 127.0.0.1, plus the given records (relative
// names are relative to origin).
func MinimalZone(origin string, records ...string) string {
	origin = dns.Fqdn(origin)
	var b bytes.Buffer
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 60\n", origin)
	fmt.Fprintf(&b, "@ IN SOA ns.%s hostmaster.%s 1 3600 600 86400 60\n", origin, origin)
	fmt.Fprintf(&b, "@ IN NS ns.%s\nns IN A 127.0.0.1\n", origin)
	for _, r := range records {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	return b.String()
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
