package dnsreport_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/bindtest"
)

// TestDigSeesWhatTheClientPublished checks with the real dig binary that
// BIND serves what the client published.
func TestDigSeesWhatTheClientPublished(t *testing.T) {
	skip, err := bindtest.Availability("named", "tsig-keygen", "dig")
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	s := startBIND(t)
	key := s.Key()
	client := newClient(t, s.Addr(), &key)
	publish(t, client, rep("n1", 5060, "127.0.0.21"))
	publish(t, client, rep("n2", 5062, "127.0.0.22"))

	digPath, _ := bindtest.Dig()
	host, port, _ := strings.Cut(s.Addr(), ":")
	dig := func(name, qtype string) []string {
		out, err := exec.Command(digPath, "@"+host, "-p", port, "+short", "+norecurse", "+time=2", "+tries=1", name, qtype).Output()
		if err != nil {
			t.Fatalf("dig %s %s: %v", name, qtype, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		slices.Sort(lines)
		return lines
	}
	expect(t, "dig _sip._udp.dsn.test SRV", dig("_sip._udp.dsn.test", "SRV"), []string{"10 10 5060 n1.dsn.test.", "10 10 5062 n2.dsn.test."})
	expect(t, "dig _sip._tcp.dsn.test SRV", dig("_sip._tcp.dsn.test", "SRV"), []string{"10 10 5060 n1.dsn.test.", "10 10 5062 n2.dsn.test."})
	expect(t, "dig dsn.test A", dig("dsn.test", "A"), []string{"127.0.0.21", "127.0.0.22"})
	expect(t, "dig n2.dsn.test A", dig("n2.dsn.test", "A"), []string{"127.0.0.22"})
}

// TestReporterRidesOutBINDRestart stops BIND, submits a change, lets it
// fail a few times, starts BIND again and waits for the change to land.
func TestReporterRidesOutBINDRestart(t *testing.T) {
	s := startBIND(t)
	key := s.Key()
	client := newClient(t, s.Addr(), &key)
	publish(t, client, rep("n2", 5062, "127.0.0.22"))
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	cfg := dnsreport.FastConfig().Reporter
	results := make(chan dnsreport.Result, 100)
	r, err := dnsreport.NewReporter(cfg, client, dnsreport.SystemClock{}, rand.New(rand.NewPCG(9, 9)), zaptest.NewLogger(t),
		func(res dnsreport.Result) {
			select {
			case results <- res:
			default:
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	defer r.Close()

	ch, _ := rep("n1", 5060, "127.0.0.21").PublishChange()
	if err := r.Submit(dnsreport.Intent{Key: "self", Change: ch, Role: "self", Refresh: true}); err != nil {
		t.Fatal(err)
	}
	for failures := 0; failures < 3; {
		select {
		case res := <-results:
			if res.Err == nil {
				t.Fatal("update succeeded while BIND was stopped")
			}
			if !errors.Is(res.Err, dnsreport.ErrTimeout) {
				t.Errorf("failure while BIND is down: %v (outcome %s)", res.Err, res.Outcome)
			}
			failures++
		case <-ctx.Done():
			t.Fatal("no failures reported while BIND was stopped")
		}
	}
	if st, ok := r.Status("self"); !ok || st.Applied || st.Attempts < 3 {
		t.Fatalf("status while BIND is down: %+v", st)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx, "self"); err != nil {
		t.Fatalf("change not applied after BIND came back: %v", err)
	}
	v := view{ex: dnsreport.NewNetExchanger(2*time.Second, nil), addr: s.Addr()}
	expect(t, "SRV after restart", v.srv(t, "_sip._udp.dsn.test."), []string{"10 10 5060 n1.dsn.test.", "10 10 5062 n2.dsn.test."})
}
