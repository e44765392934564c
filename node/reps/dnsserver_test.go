package reps

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
)

// The whole failover against the embedded DNS server on loopback: real
// TSIG-signed UPDATEs from each node's Reporter (driven by its own Run),
// reads over UDP/TCP, reconciliation by signed AXFR.
func TestFailoverOnEmbeddedDNSServer(t *testing.T) {
	srv, err := dnsserver.Start(dnsserver.DevConfig(testZone, "", dnsserver.Key{Name: testKey.Name, Algorithm: testKey.Algorithm, Secret: testKey.Secret}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := dnsreport.NewClient(dnsreport.ClientConfig{Servers: []string{srv.Addr()}, Timeout: 2 * time.Second}, &testKey)
	if err != nil {
		t.Fatal(err)
	}
	reader := func() Reader {
		return &DNSReader{
			Exchanger: client.Exchanger(), Servers: client.Servers(), Zone: testZone, Domain: testDomain,
			Transfer: TransferWithKey(&testKey, 2*time.Second),
		}
	}
	w := newWorld(t, testConfig())
	w.updater, w.selfRun, w.reader = client, true, reader
	// Checks read by plain queries, so the AXFR count below is the
	// reconcilers' own.
	w.check = &DNSReader{Exchanger: client.Exchanger(), Servers: client.Servers(), Zone: testZone, Domain: testDomain}
	w.addN(12)
	w.converge()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, m := range w.live() {
		wg.Go(func() { _ = m.rep.Run(ctx) })
	}
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	flush := func(m *member, key string) {
		t.Helper()
		if err := m.rep.Flush(fctx, key); err != nil {
			t.Fatalf("%s: flush %s: %v", m.name, key, err)
		}
	}

	w.elect()
	w.settleWatches()
	reps := w.checkAgreement()
	for _, m := range w.live() {
		flush(m, selfKey)
	}
	w.checkDNS(reps)

	victim := reps[0]
	pred, succ, backup := w.neighbours(victim)
	w.kill(victim)
	watchers := map[*member]string{pred: RolePredecessor, succ: RoleSuccessor, backup: RoleBackup}
	deletedBy := func(m *member) []string {
		for _, ws := range m.mgr.Status().Watching {
			if ws.Peer.ID == victim.node.Self().ID && ws.Deleted {
				return ws.Roles
			}
		}
		return nil
	}
	w.runUntil(60, "three watchers delete", func() bool {
		for m := range watchers {
			if deletedBy(m) == nil {
				return false
			}
		}
		return true
	})
	for m, role := range watchers {
		if r := deletedBy(m); !slices.Contains(r, role) {
			t.Fatalf("%s deleted with roles %v, want %s", m.name, r, role)
		}
		flush(m, NodeKey(victim.label))
	}
	if _, ok := w.published().Targets[victim.label+"."+testZone]; ok {
		t.Fatal("DNS still names the dead representative")
	}

	w.converge()
	w.elect()
	after := w.checkAgreement()
	for _, m := range after {
		flush(m, selfKey)
	}
	w.checkDNS(after)

	// Reconciliation by signed AXFR removes a stale entry.
	ghost := w.cfg.Records.Representative(testZone, testDomain, "ghost", []netip.Addr{netip.MustParseAddr("10.9.9.9")}, 5060)
	ch, _ := ghost.PublishChange()
	if err := client.Update(fctx, ch); err != nil {
		t.Fatal(err)
	}
	transfers := srv.Stats().Transfers
	for range 2 {
		for _, m := range after {
			if _, err := m.mgr.Reconcile(fctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := srv.Stats().Transfers - transfers; got != uint64(2*len(after)) {
		t.Fatalf("%d zone transfers, want %d", got, 2*len(after))
	}
	for _, m := range after {
		flush(m, NodeKey("ghost"))
	}
	w.checkDNS(after)
}
