package partition

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NetConfig describes the network the fleet runs in.
type NetConfig struct {
	// Nodes is how many node namespaces to create (one address each).
	Nodes int
	// Subnet is the first three octets of the /24 used inside the
	// namespaces (e.g. "10.77.0"); node i (from 1) gets Subnet.i. The
	// addresses exist only inside namespaces this package creates, so the
	// host's own interfaces and routes are never involved.
	Subnet string
	// IP is the path of the iproute2 ip command.
	IP string
}

// DefaultNetConfig returns a 6-node network on 10.77.0.0/24.
func DefaultNetConfig() NetConfig {
	return NetConfig{Nodes: 6, Subnet: "10.77.0", IP: "ip"}
}

// Validate checks the configuration.
func (c NetConfig) Validate() error {
	var errs []error
	if c.Nodes < 2 || c.Nodes > 250 {
		errs = append(errs, fmt.Errorf("partition: NetConfig.Nodes must be in 2..250, got %d", c.Nodes))
	}
	if ip := net.ParseIP(c.Subnet + ".1").To4(); ip == nil || !ip.IsPrivate() {
		errs = append(errs, fmt.Errorf("partition: NetConfig.Subnet %q must be three octets of a private IPv4 /24", c.Subnet))
	}
	if c.IP == "" {
		errs = append(errs, errors.New("partition: NetConfig.IP must name the ip command"))
	}
	return errors.Join(errs...)
}

// namePrefix starts the name of every namespace this package creates; the
// creating process's PID follows it, so that namespaces left by a process
// that died without cleaning up can be recognised and removed.
const namePrefix = "dsnp"

// Net is a set of network namespaces created for one run: one namespace
// per node, each with one veth whose other end is a port of a bridge in a
// separate bridge namespace. The bridge namespace holds two bridges; Cut
// moves one side's ports to the second bridge, which splits the fleet in
// two without touching any firewall, and Heal moves them back. Nothing is
// created in the namespace the test runs in.
//
// Methods are safe for concurrent use except Close, which must be last.
type Net struct {
	cfg    NetConfig
	prefix string
	nodes  []string // namespace names, index i = node i+1
	byIP   map[string]string
	bridge string // bridge namespace
	made   []string
}

// NewNet creates the namespaces, bridges and veths. rng picks the run's
// name suffix. On error, whatever was created is removed again.
func NewNet(cfg NetConfig, rng *rand.Rand) (*Net, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Net{cfg: cfg, byIP: map[string]string{},
		prefix: fmt.Sprintf("%s%dx%04x-", namePrefix, os.Getpid(), rng.Intn(1<<16))}
	n.bridge = n.prefix + "br"
	for i := 1; i <= cfg.Nodes; i++ {
		ns := n.prefix + "n" + strconv.Itoa(i)
		n.nodes = append(n.nodes, ns)
		n.byIP[n.Addr(i)] = ns
	}
	if err := n.create(); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

func (n *Net) create() error {
	if err := n.addNS(n.bridge); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("link set lo up\n")
	for _, br := range []string{"bra", "brb"} {
		fmt.Fprintf(&b, "link add %s type bridge\nlink set %s up\n", br, br)
	}
	for i := range n.nodes {
		fmt.Fprintf(&b, "link add v%d type veth peer name eth0 netns %s\n", i+1, n.nodes[i])
		fmt.Fprintf(&b, "link set v%d master bra\nlink set v%d up\n", i+1, i+1)
	}
	for _, ns := range n.nodes {
		if err := n.addNS(ns); err != nil {
			return err
		}
	}
	if err := n.batch(n.bridge, b.String()); err != nil {
		return err
	}
	for i, ns := range n.nodes {
		cmds := fmt.Sprintf("link set lo up\naddr add %s/24 dev eth0\nlink set eth0 up\n", n.Addr(i+1))
		if err := n.batch(ns, cmds); err != nil {
			return err
		}
	}
	return nil
}

func (n *Net) addNS(name string) error {
	if out, err := exec.Command(n.cfg.IP, "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("partition: ip netns add %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	n.made = append(n.made, name)
	return nil
}

// batch runs ip commands (one per line) inside namespace ns.
func (n *Net) batch(ns, cmds string) error {
	cmd := exec.Command(n.cfg.IP, "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("partition: ip -n %s -batch: %w: %s\n%s", ns, err, strings.TrimSpace(string(out)), cmds)
	}
	return nil
}

// Addr is node i's address (i from 1).
func (n *Net) Addr(i int) string { return n.cfg.Subnet + "." + strconv.Itoa(i) }

// Namespace is the namespace that holds address ip ("" if none).
func (n *Net) Namespace(ip string) string { return n.byIP[ip] }

// Names lists every namespace of the run (bridge first).
func (n *Net) Names() []string { return append([]string{n.bridge}, n.nodes...) }

// Exec is the command prefix that runs a program in the namespace holding
// ip (ip netns exec execs the program, which keeps its PID).
func (n *Net) Exec(ip string) []string {
	return []string{n.cfg.IP, "netns", "exec", n.byIP[ip]}
}

// Cut moves the bridge ports of the given nodes (numbers from 1) to the
// second bridge: they still reach each other, and no longer the rest.
func (n *Net) Cut(side []int) error { return n.setMaster(side, "brb") }

// Heal moves the given nodes' ports back to the main bridge.
func (n *Net) Heal(side []int) error { return n.setMaster(side, "bra") }

func (n *Net) setMaster(side []int, br string) error {
	var b strings.Builder
	for _, i := range side {
		fmt.Fprintf(&b, "link set v%d master %s\n", i, br)
	}
	return n.batch(n.bridge, b.String())
}

// Close deletes every namespace of the run, which destroys its veths and
// bridges. Processes still running inside keep their namespace alive until
// they exit, so stop them first.
func (n *Net) Close() error {
	var errs []error
	for i := len(n.made) - 1; i >= 0; i-- {
		if out, err := exec.Command(n.cfg.IP, "netns", "del", n.made[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("partition: ip netns del %s: %w: %s", n.made[i], err, strings.TrimSpace(string(out))))
		}
	}
	n.made = nil
	return errors.Join(errs...)
}

// SweepStale deletes namespaces an earlier run of this package left behind
// when its process died before cleaning up (their names carry the PID of a
// process that no longer exists). It returns the names deleted.
func SweepStale(ipCmd string) ([]string, error) {
	out, err := exec.Command(ipCmd, "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("partition: ip netns list: %w", err)
	}
	var gone []string
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], namePrefix) {
			continue
		}
		rest := strings.TrimPrefix(f[0], namePrefix)
		x := strings.IndexByte(rest, 'x')
		if x <= 0 || !strings.Contains(rest[x:], "-") {
			continue
		}
		pid, err := strconv.Atoi(rest[:x])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
			continue // its creator still runs
		}
		if o, err := exec.Command(ipCmd, "netns", "del", f[0]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("partition: ip netns del %s: %w: %s", f[0], err, strings.TrimSpace(string(o))))
			continue
		}
		gone = append(gone, f[0])
	}
	return gone, errors.Join(errs...)
}

// Do runs f on a thread switched into namespace ns; sockets f creates stay
// in ns after it returns.
func Do(ns string, f func() error) error {
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("partition: %w", err)
	}
	defer orig.Close()
	if err := setns(target.Fd()); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("partition: setns %s: %w", ns, err)
	}
	ferr := f()
	if err := setns(orig.Fd()); err != nil {
		// The thread is stuck in ns: leave it locked, so the runtime
		// discards it when this goroutine exits.
		return errors.Join(ferr, fmt.Errorf("partition: setns back: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(fd uintptr) error { return unix.Setns(int(fd), unix.CLONE_NEWNET) }

// DialContext dials addr from inside the namespace that holds its IP, so
// the test (in its own namespace) reaches a node's admin API through the
// node's own namespace, whichever side of a cut it is on.
func (n *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("partition: dial %s: %w", addr, err)
	}
	ns := n.byIP[host]
	if ns == "" {
		return nil, fmt.Errorf("partition: dial %s: no namespace holds %s", addr, host)
	}
	var c net.Conn
	err = Do(ns, func() error {
		var d net.Dialer
		var derr error
		c, derr = d.DialContext(ctx, network, addr)
		return derr
	})
	return c, err
}

// HTTPClient returns a client whose connections are made by DialContext.
func (n *Net) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: n.DialContext, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second,
	}}
}

// ListenUDP opens a UDP socket on ip (port 0) inside the namespace that
// holds ip.
func (n *Net) ListenUDP(ip string) (*net.UDPConn, error) {
	ns := n.byIP[ip]
	if ns == "" {
		return nil, fmt.Errorf("partition: listen %s: no namespace holds it", ip)
	}
	var c *net.UDPConn
	err := Do(ns, func() error {
		var lerr error
		c, lerr = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		return lerr
	})
	return c, err
}
