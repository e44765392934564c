package auth

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Trusted is a set of IP networks whose requests need no Digest
// authentication (-trusted), e.g. the IMS CSCFs. The zero value and a nil
// *Trusted are empty. Immutable after ParseTrusted; safe for concurrent
// use.
type Trusted struct {
	prefixes []netip.Prefix
}

// ParseTrusted parses a comma-separated list of IPv4/IPv6 addresses and
// CIDR prefixes: "10.0.0.0/8, 192.0.2.7, 2001:db8::/32, ::1". White space
// around entries is ignored and "" gives an empty set. A prefix with bits
// set below its length ("10.0.0.1/8") is refused as a likely typo, and so
// is a /0 (use -auth-open to accept everyone). IPv4-mapped IPv6 entries
// are stored as IPv4. Errors wrap ErrTrusted and name the entry.
func ParseTrusted(list string) (*Trusted, error) {
	t := &Trusted{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrTrusted, f, err)
		}
		if !slices.Contains(t.prefixes, p) {
			t.prefixes = append(t.prefixes, p)
		}
	}
	return t, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR prefix")
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zoned address not allowed")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address or CIDR prefix")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("host bits set (did you mean %v, or the single address %v?)", p.Masked(), p.Addr())
	}
	if a := p.Addr(); a.Is4In6() {
		// Masked above, so a mapped prefix is at least /96.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("trusts every address; use -auth-open instead")
	}
	return p, nil
}

// Contains reports whether a is in one of the networks. IPv4-mapped IPv6
// addresses match their IPv4 form; zones are ignored.
func (t *Trusted) Contains(a netip.Addr) bool {
	if t == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Len is the number of networks in the set.
func (t *Trusted) Len() int {
	if t == nil {
		return 0
	}
	return len(t.prefixes)
}

// Prefixes returns a copy of the networks, in the order given.
func (t *Trusted) Prefixes() []netip.Prefix {
	if t == nil {
		return nil
	}
	return slices.Clone(t.prefixes)
}

// String renders the set as ParseTrusted accepts it (single addresses as
// /32 or /128).
func (t *Trusted) String() string {
	if t == nil {
		return ""
	}
	parts := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}
