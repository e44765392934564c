package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/miekg/dns"
)

// Config holds the tunables of a server. Dependencies (the logger, the clock)
// are constructor arguments, not fields.
type Config struct {
	// Addr is the "host:port" the server listens on, UDP and TCP alike.
	// Port 0 picks one free port that is used for both. Start uses it; New
	// ignores it.
	Addr string
	// Zones are the zones served, each authoritative for its origin and
	// everything below it (a more specific zone wins over an enclosing one).
	Zones []ZoneConfig
	// Keys are the TSIG keys accepted on requests. Every key may update every
	// zone; UPDATE is refused (NOTAUTH) unless signed by one of them.
	Keys []Key
	// AllowAXFR enables zone transfers. Even then AXFR is answered only over
	// TCP and only to requests signed with one of Keys.
	AllowAXFR bool
}

// ZoneConfig names one zone and where its initial data comes from: exactly
// one of File and Text is set. The data is RFC 1035 master-file text and must
// contain the zone's SOA and at least one NS record at the origin.
type ZoneConfig struct {
	// Origin is the zone apex, e.g. "dsn.example.com." (a trailing dot is
	// added when missing).
	Origin string
	// File is the path of a master file ($INCLUDE is not allowed).
	File string
	// Text is master-file text, for zones built in code (see DevZone).
	Text string
}

// DefaultConfig returns a loopback configuration with no zones and no keys:
// it answers REFUSED to everything until zones are added.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:0"}
}

// Validate checks every field and names the first bad one in its error, e.g.
// "dnsserver: Zones[0].Origin: ...". It does not read zone files.
func (c Config) Validate() error {
	if err := validateAddr(c.Addr); err != nil {
		return fmt.Errorf("dnsserver: Addr: %w", err)
	}
	origins := make(map[string]int, len(c.Zones))
	for i, z := range c.Zones {
		if err := z.validate(); err != nil {
			return fmt.Errorf("dnsserver: Zones[%d].%w", i, err)
		}
		o := canonical(z.Origin)
		if j, dup := origins[o]; dup {
			return fmt.Errorf("dnsserver: Zones[%d].Origin: %q already served by Zones[%d]", i, z.Origin, j)
		}
		origins[o] = i
	}
	names := make(map[string]int, len(c.Keys))
	for i, k := range c.Keys {
		if err := k.Validate(); err != nil {
			return fmt.Errorf("dnsserver: Keys[%d]: %w", i, err)
		}
		n := canonical(k.Name)
		if j, dup := names[n]; dup {
			return fmt.Errorf("dnsserver: Keys[%d].Name: %q already used by Keys[%d]", i, k.Name, j)
		}
		names[n] = i
	}
	if c.AllowAXFR && len(c.Keys) == 0 {
		return errors.New("dnsserver: AllowAXFR: transfers need a TSIG key but Keys is empty")
	}
	return nil
}

func validateAddr(addr string) error {
	if addr == "" {
		return errors.New("empty; want host:port")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q: want a number 0-65535", port)
	} else if p == 0 && port != "0" {
		return fmt.Errorf("port %q: write 0 for a free port", port)
	}
	return nil
}

func (z ZoneConfig) validate() error {
	if err := validateName(z.Origin); err != nil {
		return fmt.Errorf("Origin: %w", err)
	}
	switch {
	case z.File == "" && z.Text == "":
		return errors.New("File: neither File nor Text is set")
	case z.File != "" && z.Text != "":
		return errors.New("File: both File and Text are set; use one")
	}
	return nil
}

func validateName(name string) error {
	if name == "" {
		return errors.New("empty domain name")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("%q is not a valid domain name", name)
	}
	return nil
}
