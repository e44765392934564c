package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/bindtest"
)

// DNSOptions extend NewDNS for interworking tests: more zones in BIND (an
// IMS domain next to the DSN domain and e164.arpa) and more flags for the
// nodes started by NewDNSWith and AddWith (Add and Restart do not use them).
type DNSOptions struct {
	// Zones are served by BIND besides the DSN domain and e164.arpa: SOA
	// and NS only, updatable and transferable with the fleet's TSIG key.
	Zones []string
	// Resolver makes every node resolve ENUM and RFC 3263 through BIND
	// (-resolver), as an operator would point it at the shared DNS.
	Resolver bool
	// Args are further flags for every node.
	Args []string
}

// StartBINDZones starts BIND9 serving domain, e164.arpa and the extra
// zones, and stops it at the end of the test.
func StartBINDZones(t TB, domain string, extra ...string) *bindtest.Server {
	t.Helper()
	RequireTool(t, "named")
	RequireTool(t, "tsig-keygen")
	zones := []bindtest.Zone{
		{Origin: domain, Text: bindtest.MinimalZone(domain)},
		{Origin: "e164.arpa", Text: bindtest.MinimalZone("e164.arpa")},
	}
	for _, z := range extra {
		zones = append(zones, bindtest.Zone{Origin: z, Text: bindtest.MinimalZone(z)})
	}
	srv, err := bindtest.Start(bindtest.Config{Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// NewDNSWith is NewDNS with the options: n nodes reporting to a BIND9
// that also serves o.Zones, each started with the options' flags.
func NewDNSWith(t TB, domain string, n int, o DNSOptions) *DNSFleet {
	t.Helper()
	RequireTool(t, "dig")
	f := &DNSFleet{Fleet: New(t, domain), BIND: StartBINDZones(t, domain, o.Zones...), Procs: map[string]*Proc{}}
	f.Named = f.BIND.Addr()
	extra := append([]string(nil), o.Args...)
	if o.Resolver {
		extra = append(extra, "-resolver", f.Named)
	}
	for i := 0; i < n; i++ {
		f.AddWith(extra...)
	}
	return f
}

// AddWith is Add with further flags for the new node.
func (f *DNSFleet) AddWith(extra ...string) *Proc {
	f.t.Helper()
	f.seq++
	name := fmt.Sprintf("sn%d", f.seq)
	var join []string
	for _, p := range f.Live() {
		join = append(join, p.Cluster)
		if len(join) == 2 {
			break
		}
	}
	args := append([]string{"-dns-server", f.Named, "-tsig-key-file", f.BIND.KeyFile(), "-reps", "2"}, extra...)
	p := f.Start(name, fmt.Sprintf("127.0.0.%d", 10+f.seq), join, args...)
	f.Procs[name] = p
	return p
}

// Update applies one TSIG-signed RFC 2136 UPDATE to BIND (as an operator
// provisioning static entries, e.g. an IMS domain's SRV records) and
// fails the test unless BIND confirmed it with a verified reply.
func (f *DNSFleet) Update(t TB, ch dnsreport.Change) {
	t.Helper()
	keys, _, err := dnsreport.LoadKeyFile(f.BIND.KeyFile())
	if err != nil || len(keys) != 1 {
		t.Fatalf("key file %s: %d keys, %v", f.BIND.KeyFile(), len(keys), err)
	}
	cfg := dnsreport.DefaultConfig().Client
	cfg.Servers = []string{f.Named}
	c, err := dnsreport.NewClient(cfg, &keys[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Update(ctx, ch); err != nil {
		t.Fatalf("update %s: %v", ch, err)
	}
}
