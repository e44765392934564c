package dnsreport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Config gathers the tunables of the package's pieces. Each piece has its
// own section and constructor; Config exists so that a caller can hold,
// default and validate them together.
type Config struct {
	Client   ClientConfig
	Reporter ReporterConfig
	Resolver ResolverConfig
	Records  RecordConfig
}

// ClientConfig tunes the UPDATE client.
type ClientConfig struct {
	// Servers accept UPDATE for the zone; "host:port" (":53" when the port
	// is missing). They are tried in order for every update.
	Servers []string
	// Timeout bounds one exchange with one server.
	Timeout time.Duration
	// Insecure allows NewClient without a TSIG key, sending unsigned
	// UPDATEs. Only for servers that accept them by address; never the
	// default.
	Insecure bool
}

// ReporterConfig tunes the retry engine.
type ReporterConfig struct {
	// RetryMin is the wait after the first failure; it doubles per
	// failure up to RetryMax.
	RetryMin time.Duration
	RetryMax time.Duration
	// Jitter spreads each wait uniformly by ±Jitter of its length
	// (0 <= Jitter < 1) so that the several nodes deleting a dead
	// representative do not retry in lock step.
	Jitter float64
	// UpdateTimeout bounds one Update call over the whole server list.
	UpdateTimeout time.Duration
	// RefreshInterval re-applies intents marked Refresh (a
	// representative's own records) after each success, healing records
	// that were removed behind the node's back. 0 disables it.
	RefreshInterval time.Duration
}

// ResolverConfig tunes ENUM and RFC 3263 look-ups.
type ResolverConfig struct {
	// Server is the DNS server asked ("host:port", ":53" when the port is
	// missing), or "system" for the nameservers of ResolvConf.
	Server string
	// ResolvConf is read when Server is "system".
	ResolvConf string
	// Timeout bounds one query to one server.
	Timeout time.Duration
	// ENUMSuffix is the ENUM tree, normally "e164.arpa.".
	ENUMSuffix string
}

// RecordConfig shapes the records a representative publishes. All nodes of
// a fleet must agree on Priority and Weight (deletes match exact records).
type RecordConfig struct {
	TTL      time.Duration
	Priority uint16
	Weight   uint16
}

// DefaultConfig returns production defaults. Client.Servers is empty and
// must be set.
func DefaultConfig() Config {
	return Config{
		Client: ClientConfig{Timeout: 3 * time.Second},
		Reporter: ReporterConfig{
			RetryMin:        500 * time.Millisecond,
			RetryMax:        30 * time.Second,
			Jitter:          0.2,
			UpdateTimeout:   10 * time.Second,
			RefreshInterval: 5 * time.Minute,
		},
		Resolver: ResolverConfig{
			Server:     "system",
			ResolvConf: "/etc/resolv.conf",
			Timeout:    2 * time.Second,
			ENUMSuffix: DefaultENUMSuffix,
		},
		Records: RecordConfig{TTL: 30 * time.Second, Priority: 10, Weight: 10},
	}
}

// FastConfig is DefaultConfig with short timeouts and waits, for tests on
// loopback.
func FastConfig() Config {
	c := DefaultConfig()
	c.Client.Timeout = 500 * time.Millisecond
	c.Reporter.RetryMin = 10 * time.Millisecond
	c.Reporter.RetryMax = 200 * time.Millisecond
	c.Reporter.UpdateTimeout = 2 * time.Second
	c.Resolver.Timeout = 500 * time.Millisecond
	return c
}

// Validate checks every section.
func (c Config) Validate() error {
	return errors.Join(c.Client.Validate(), c.Reporter.Validate(), c.Resolver.Validate(), c.Records.Validate())
}

// Validate checks the server list and timeout.
func (c ClientConfig) Validate() error {
	if len(c.Servers) == 0 {
		return errors.New("dnsreport: no DNS server to send updates to (-dns-server)")
	}
	for _, s := range c.Servers {
		if _, err := NormalizeServer(s); err != nil {
			return err
		}
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("dnsreport: client timeout %v must be positive", c.Timeout)
	}
	return nil
}

// Validate checks that the waits are positive and ordered.
func (c ReporterConfig) Validate() error {
	switch {
	case c.RetryMin <= 0:
		return fmt.Errorf("dnsreport: RetryMin %v must be positive", c.RetryMin)
	case c.RetryMax < c.RetryMin:
		return fmt.Errorf("dnsreport: RetryMax %v is below RetryMin %v", c.RetryMax, c.RetryMin)
	case c.Jitter < 0 || c.Jitter >= 1:
		return fmt.Errorf("dnsreport: Jitter %v must be in [0, 1)", c.Jitter)
	case c.UpdateTimeout <= 0:
		return fmt.Errorf("dnsreport: UpdateTimeout %v must be positive", c.UpdateTimeout)
	case c.RefreshInterval < 0:
		return fmt.Errorf("dnsreport: RefreshInterval %v must not be negative", c.RefreshInterval)
	}
	return nil
}

// Validate checks the server, timeout and suffix.
func (c ResolverConfig) Validate() error {
	if c.Server == "" {
		return errors.New(`dnsreport: resolver server is empty (use "system" for /etc/resolv.conf)`)
	}
	if c.Server != "system" {
		if _, err := NormalizeServer(c.Server); err != nil {
			return err
		}
	} else if c.ResolvConf == "" {
		return errors.New(`dnsreport: resolver server "system" needs ResolvConf`)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("dnsreport: resolver timeout %v must be positive", c.Timeout)
	}
	if _, ok := dns.IsDomainName(c.ENUMSuffix); !ok || c.ENUMSuffix == "" {
		return fmt.Errorf("dnsreport: ENUM suffix %q is not a domain name", c.ENUMSuffix)
	}
	return nil
}

// Validate checks the TTL.
func (c RecordConfig) Validate() error {
	if c.TTL < time.Second {
		return fmt.Errorf("dnsreport: record TTL %v is below one second", c.TTL)
	}
	return nil
}

// Representative fills a Representative from the record settings.
func (c RecordConfig) Representative(zone, domain, label string, ips []netip.Addr, port uint16) Representative {
	return Representative{
		Zone: dns.CanonicalName(zone), Domain: dns.CanonicalName(domain), Label: label,
		IPs: append([]netip.Addr(nil), ips...), Port: port,
		TTL: c.TTL, Priority: c.Priority, Weight: c.Weight,
	}
}

// NormalizeServer turns "host", "host:port", "v6addr" or "[v6addr]:port"
// into "host:port" with port 53 when none is given.
func NormalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("dnsreport: empty DNS server address")
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip, 53).String(), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(s, ":") {
			return "", fmt.Errorf("dnsreport: DNS server %q: %v", s, err)
		}
		return net.JoinHostPort(s, "53"), nil
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("dnsreport: DNS server %q needs host and port", s)
	}
	return net.JoinHostPort(host, port), nil
}
