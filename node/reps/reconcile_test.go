package reps

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
)

// plant publishes a representative's records behind the nodes' back.
func (w *world) plant(label, ip string, port uint16) {
	w.t.Helper()
	rep := w.cfg.Records.Representative(testZone, testDomain, label, []netip.Addr{netip.MustParseAddr(ip)}, port)
	ch, err := rep.PublishChange()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.dns.Update(w.ctx, ch); err != nil {
		w.t.Fatal(err)
	}
}

// remove deletes a representative's records behind the nodes' back.
func (w *world) remove(m *member) {
	w.t.Helper()
	rep := w.cfg.Records.Representative(testZone, testDomain, m.label, []netip.Addr{m.sip.Addr()}, m.sip.Port())
	ch, err := rep.DeleteChange()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.dns.Update(w.ctx, ch); err != nil {
		w.t.Fatal(err)
	}
}

// addRR adds records given as zone text.
func (w *world) addRR(text ...string) {
	w.t.Helper()
	ch := dnsreport.Change{Zone: testZone}
	for _, s := range text {
		rr, err := dns.NewRR(s)
		if err != nil {
			w.t.Fatal(err)
		}
		ch.Add = append(ch.Add, rr)
	}
	if err := w.dns.Update(w.ctx, ch); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) reconcileAll() []ReconcileResult {
	w.t.Helper()
	var out []ReconcileResult
	for _, m := range w.live() {
		res, err := m.mgr.Reconcile(w.ctx)
		if err != nil {
			w.t.Fatalf("%s: reconcile: %v", m.name, err)
		}
		if !m.mgr.IsRep() && (res.Checked != 0 || res.Republished) {
			w.t.Fatalf("%s is not a representative but reconciled: %+v", m.name, res)
		}
		out = append(out, res)
	}
	w.step()
	return out
}

// Reconcile deletes a dead node's entry (after two sightings), and leaves
// alone the live representatives, a live node that answers, protected
// labels and targets outside the zone.
func TestReconcileDeletesStale(t *testing.T) {
	cfg := testConfig()
	cfg.Protected = []string{"static"}
	w := build(t, cfg, 8)
	reps := w.checkAgreement()
	var other *member // a live non-representative
	for _, m := range w.live() {
		if !slices.Contains(reps, m) {
			other = m
			break
		}
	}
	w.plant("ghost", "10.9.9.9", 5062)
	w.plant("static", "192.0.2.77", 5060)
	w.plant(other.label, other.sip.Addr().String(), other.sip.Port())
	w.addRR("_sip._udp." + testDomain + " 30 IN SRV 20 10 5060 sip.ims.example.net.")
	before := describe(w.published())

	first := w.reconcileAll()
	for _, r := range first {
		if len(r.Deleted) != 0 {
			t.Fatalf("deleted on the first sighting: %+v", r)
		}
	}
	if !slices.Equal(describe(w.published()), before) {
		t.Fatal("DNS changed after one reconciliation")
	}
	second := w.reconcileAll()
	deleted := 0
	for _, r := range second {
		if len(r.Deleted) > 0 {
			if !slices.Equal(r.Deleted, []string{"ghost"}) {
				t.Fatalf("deleted %v", r.Deleted)
			}
			deleted++
		}
	}
	if deleted != len(reps) {
		t.Fatalf("%d of %d representatives deleted the ghost", deleted, len(reps))
	}
	got := describe(w.published())
	var want []string
	for _, l := range before {
		if !strings.Contains(l, "ghost") && !strings.HasSuffix(l, " 10.9.9.9") {
			want = append(want, l)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after reconcile DNS holds\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// Without gossip membership a node counts as alive when it answers a
// ping; a known node that does not answer is deleted.
func TestReconcilePingsKnownNodes(t *testing.T) {
	w := build(t, testConfig(), 8)
	reps := w.checkAgreement()
	var quiet, gone *member
	for _, m := range w.live() {
		if slices.Contains(reps, m) {
			continue
		}
		if quiet == nil {
			quiet = m
		} else if gone == nil {
			gone = m
		}
	}
	for _, m := range w.live() {
		m.mgr.members = nil
	}
	w.plant(quiet.label, quiet.sip.Addr().String(), quiet.sip.Port())
	w.plant(gone.label, gone.sip.Addr().String(), gone.sip.Port())
	w.kill(gone)
	w.reconcileAll()
	w.reconcileAll()
	p := w.published()
	if _, ok := p.Targets[quiet.label+"."+testZone]; !ok {
		t.Fatal("a live node that answers was deleted")
	}
	if _, ok := p.Targets[gone.label+"."+testZone]; ok {
		t.Fatal("a dead node's entry survived")
	}
}

// A DNS outage during a failure, and then the loss of every watcher: the
// stale entry is still removed by reconciliation once DNS is back.
func TestReconcileAfterOutageAndWatchersLost(t *testing.T) {
	w := build(t, testConfig(), 16)
	w.settleWatches()
	victim := w.checkAgreement()[0]
	pred, succ, backup := w.neighbours(victim)
	w.dns.down.Store(true)
	w.kill(victim)
	w.runUntil(60, "watchers submitted", func() bool {
		n := 0
		for _, m := range []*member{pred, succ, backup} {
			if _, ok := m.rep.Status(NodeKey(victim.label)); ok {
				n++
			}
		}
		return n == 3
	})
	for _, m := range []*member{pred, succ, backup} {
		w.kill(m) // their pending deletions die with them
	}
	w.dns.down.Store(false)
	w.converge()
	w.elect()
	reps := w.checkAgreement()
	if _, ok := w.published().Targets[victim.label+"."+testZone]; !ok {
		t.Fatal("test setup: the victim's entry is already gone")
	}
	w.reconcileAll()
	w.reconcileAll()
	w.checkDNS(reps)
}

// A DNS outage during a failure: the watchers' Reporters retry until DNS
// is back.
func TestDeletionRetriedAfterOutage(t *testing.T) {
	w := build(t, testConfig(), 10)
	w.settleWatches()
	victim := w.checkAgreement()[0]
	w.dns.down.Store(true)
	w.kill(victim)
	for range 30 {
		w.round()
	}
	w.dns.down.Store(false)
	w.runUntil(100, "deletion applied", func() bool {
		_, ok := w.published().Targets[victim.label+"."+testZone]
		return !ok
	})
}

// A representative whose records vanished (or carry an old address)
// publishes them again on its next reconciliation.
func TestReconcileRepublishesOwnRecords(t *testing.T) {
	w := build(t, testConfig(), 6)
	reps := w.checkAgreement()
	a, b := reps[0], reps[1]
	w.remove(a)
	// b's records from an earlier run on another address and port.
	old := w.cfg.Records.Representative(testZone, testDomain, b.label, []netip.Addr{netip.MustParseAddr("10.7.7.7")}, 5999)
	ch, _ := old.PublishChange()
	ch.DeleteRRsets = nil // keep b's current L.Z. address too
	if err := w.dns.Update(w.ctx, ch); err != nil {
		t.Fatal(err)
	}
	republished := 0
	for _, m := range []*member{a, b} {
		res, err := m.mgr.Reconcile(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Republished {
			republished++
		}
	}
	if republished != 2 {
		t.Fatalf("%d representatives republished, want 2", republished)
	}
	w.step()
	w.checkDNS(reps)
	// Nothing to do the next time.
	for _, m := range []*member{a, b} {
		if res, _ := m.mgr.Reconcile(w.ctx); res.Republished {
			t.Fatalf("%s republished again", m.name)
		}
	}
}

func TestReconcileReadError(t *testing.T) {
	w := build(t, testConfig(), 3)
	rep := w.checkAgreement()[0]
	w.dns.down.Store(true)
	if _, err := rep.mgr.Reconcile(w.ctx); err == nil || !strings.HasPrefix(err.Error(), "reps: reconcile") {
		t.Fatalf("err %v", err)
	}
	if rep.mgr.Status().ReconcileError == "" {
		t.Fatal("status does not show the failure")
	}
}

// PublishedFromZone (the AXFR path) sees what ReadPublished (queries) sees.
func TestPublishedFromZoneMatchesQueries(t *testing.T) {
	w := build(t, testConfig(), 6)
	w.plant("v6node", "2001:db8::5", 5070)
	w.addRR("_sip._tcp." + testDomain + " 30 IN SRV 20 10 5060 sip.ims.example.net.")
	rrs, err := w.dns.h.Store().Records(testZone)
	if err != nil {
		t.Fatal(err)
	}
	got, want := describe(PublishedFromZone(rrs, testZone, testDomain)), describe(w.published())
	if !slices.Equal(got, want) {
		t.Fatalf("from zone\n  %s\nfrom queries\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, s := range []string{"target v6node." + testZone + " 2001:db8::5", "tcp sip.ims.example.net. 5060 20 10"} {
		if !slices.Contains(got, s) {
			t.Fatalf("%q missing from %v", s, got)
		}
	}
}

// deleteChange keeps a domain address that another representative shares.
func TestDeleteKeepsSharedAddress(t *testing.T) {
	w := build(t, testConfig(), 3)
	m := w.live()[0].mgr
	p := w.live()[1].node.Self()
	ap, _ := ParseSIPAddr(p.Meta)
	ch, err := m.deleteChange(p, map[netip.Addr]bool{ap.Addr(): true})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range ch.Delete {
		if a, ok := rr.(*dns.A); ok && a.A.Equal(net.IP(ap.Addr().AsSlice())) && rr.Header().Name == testDomain {
			t.Fatalf("deletes the shared domain address: %s", ch)
		}
	}
	ch, _ = m.deleteChange(p, nil)
	if !strings.Contains(ch.String(), "delete "+testDomain+" A "+ap.Addr().String()) {
		t.Fatalf("does not delete the domain address when not shared: %s", ch)
	}
}
