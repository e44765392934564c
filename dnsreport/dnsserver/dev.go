package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultENUMSuffix is the ENUM zone of RFC 6116.
const DefaultENUMSuffix = "e164.arpa."

// DevZone returns master-file text for an otherwise empty zone: an SOA
// (serial 1, hostmaster.<origin> as contact, ttl also as the negative-caching
// TTL), one NS naming nsHost and, when nsHost lies inside origin and nsAddr
// is valid, its A or AAAA glue. Every record gets ttl (whole seconds).
// Invalid names surface when the text is parsed (ParseZone, New, Start).
func DevZone(origin, nsHost string, nsAddr netip.Addr, ttl time.Duration) string {
	origin, nsHost = dns.Fqdn(origin), dns.Fqdn(nsHost)
	secs := uint32(ttl / time.Second)
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL %d\n", origin, secs)
	fmt.Fprintf(&b, "@ IN SOA %s hostmaster.%s 1 3600 600 86400 %d\n", nsHost, origin, secs)
	fmt.Fprintf(&b, "@ IN NS %s\n", nsHost)
	if nsAddr.IsValid() && dns.IsSubDomain(origin, nsHost) {
		typ := "A"
		if nsAddr.Unmap().Is6() {
			typ = "AAAA"
		}
		fmt.Fprintf(&b, "%s IN %s %s\n", nsHost, typ, nsAddr.Unmap())
	}
	return b.String()
}

// DevConfig returns the configuration of the -dev mode server: loopback on a
// free port, an empty zone for domain (name server ns.<domain> at 127.0.0.1)
// and an empty ENUM zone enumSuffix (DefaultENUMSuffix when empty), both
// updatable with key, which may also transfer them.
func DevConfig(domain, enumSuffix string, key Key) Config {
	if enumSuffix == "" {
		enumSuffix = DefaultENUMSuffix
	}
	ns := "ns." + dns.Fqdn(domain)
	const ttl = 30 * time.Second
	cfg := DefaultConfig()
	cfg.Zones = []ZoneConfig{
		{Origin: dns.Fqdn(domain), Text: DevZone(domain, ns, netip.MustParseAddr("127.0.0.1"), ttl)},
		{Origin: dns.Fqdn(enumSuffix), Text: DevZone(enumSuffix, ns, netip.Addr{}, ttl)},
	}
	cfg.Keys = []Key{key}
	cfg.AllowAXFR = true
	return cfg
}
