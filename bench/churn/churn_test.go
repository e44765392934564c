package churn

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var (
	full     = flag.Bool("full", false, "the full run (DefaultConfig: 10,000 AORs, 3.5 min of churn) instead of the CI one")
	aors     = flag.Int("aors", 0, "AORs to register (0: the config's)")
	rate     = flag.Int("rate", 0, "calls per second (0: the config's)")
	churnFor = flag.Duration("churn", 0, "how long events keep starting (0: the config's)")
	seed     = flag.Uint64("seed", 0, "random seed (0: the config's)")
	nodeLog  = flag.String("node-log-level", "", "dsn-node -log-level (empty: the config's)")
)

// TestChurn is issue 7's "churn without loss": kills and restarts under a
// call load, then every AOR must still resolve to a live home node with
// exactly 3 copies. The CI version (about 65 s) runs by default; run.sh
// passes -full.
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process benchmark")
	}
	cfg := CIConfig()
	if *full {
		cfg = DefaultConfig()
	}
	if *aors > 0 {
		cfg.AORs = *aors
	}
	if *rate > 0 {
		cfg.CallRate = *rate
	}
	if *churnFor > 0 {
		cfg.Churn = *churnFor
	}
	if *seed > 0 {
		cfg.Seed = *seed
	}
	if *nodeLog != "" {
		cfg.NodeLogLevel = *nodeLog
	}
	rep := Run(t, cfg)
	t.Logf("report:\n%s", rep)

	if n := rep.RegistrationsLost(); n > 0 {
		t.Errorf("%d registrations lost (replicas %d, at most 2 nodes down at once)", n, cfg.Replicas)
	}
	if !rep.Final.Passed() {
		t.Errorf("final check: %d of %d AORs not at a live home node with %d copies: %v",
			rep.Final.AORs-rep.Final.OK, rep.Final.AORs, cfg.Replicas, rep.Final.Examples)
	}
	if n := rep.CallsMissingRegistration(); n > 0 {
		t.Errorf("%d calls found no registration (404/480) during the churn", n)
	}
	if rep.Calls.BaselineFailed > 0 {
		t.Errorf("%d calls failed before any churn", rep.Calls.BaselineFailed)
	}
	if rep.Calls.Attempted == 0 {
		t.Errorf("no calls placed")
	}
	if len(rep.Events) < 3 {
		t.Errorf("%d events, want at least 3", len(rep.Events))
	}
	for _, ev := range rep.Events {
		if len(ev.Errors) > 0 {
			t.Errorf("event %d: %s", ev.N, strings.Join(ev.Errors, "; "))
		}
		if ev.AfterKill.DNS < 0 {
			t.Errorf("event %d: DNS not consistent before the restart, %.1fs after the kill", ev.N, ev.RestartAt.Sub(ev.KillAt).Seconds())
		}
	}
	if rep.FinalSettleErr != "" {
		t.Errorf("after the load: %s", rep.FinalSettleErr)
	}
}

func TestParseSIPpErrors(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	fs := parseSIPpErrors(read("sipp_errors_404.log"))
	if len(fs) != 2 || fs[0].CallID != "1-12514@127.0.0.1" || fs[0].Code != 404 || fs[1].Code != 404 || fs[0].Timeout ||
		fs[0].Callee != "sip:user0001@dsn.test" || fs[0].Text != "Not Found" {
		t.Fatalf("404 log: %+v", fs)
	}
	fs = parseSIPpErrors(read("sipp_errors_timeout.log"))
	if len(fs) != 2 || fs[1].CallID != "2-12516@127.0.0.1" || !fs[1].Timeout || fs[1].Index != 1 ||
		fs[1].At != time.Unix(1795707845, 600069000) {
		t.Fatalf("timeout log: %+v", fs)
	}
	// An entry without a Call-ID, and a repeat for one call, are skipped.
	log := "The following events occurred:\n" +
		"2026-11-26\t15:44:05.499772\t1795707845.499772: Discarding message which can't be mapped to a known SIPp call\n" +
		"2026-11-26\t15:44:05.599772\t1795707845.599772: Call-Id: a@b, receive timeout on message churn caller:8 without label to jump to (ontimeout attribute): aborting call\n" +
		"2026-11-26\t15:44:05.699772\t1795707845.699772: Call-Id: a@b, receive timeout on message churn caller:8 without label to jump to (ontimeout attribute): aborting call\n"
	fs = parseSIPpErrors(log)
	if len(fs) != 1 || fs[0].Index != 8 {
		t.Fatalf("mixed log: %+v", fs)
	}
}

func TestClassify(t *testing.T) {
	t0 := time.Unix(1000, 0)
	down := downtimes{"sn2": {{From: t0, To: t0.Add(5 * time.Second)}}, "sn3": {{From: t0}}}
	rt := 6 * time.Second
	for _, c := range []struct {
		f    sippFailure
		node string
		want string
	}{
		// INVITE sent 2 s before sn2 died: nothing heard.
		{sippFailure{Timeout: true, Index: 1, At: t0.Add(4 * time.Second)}, "sn2", ReasonDeadTarget},
		// INVITE sent after sn2 came back.
		{sippFailure{Timeout: true, Index: 1, At: t0.Add(12 * time.Second)}, "sn2", ReasonNoAnswer},
		// sn3 is still down.
		{sippFailure{Timeout: true, Index: 1, At: t0.Add(60 * time.Second)}, "sn3", ReasonDeadTarget},
		{sippFailure{Timeout: true, Index: 1, At: t0.Add(4 * time.Second)}, "sn1", ReasonNoAnswer},
		{sippFailure{Timeout: true, Index: 2}, "sn1", ReasonSetupTimeout},
		{sippFailure{Timeout: true, Index: 3}, "sn1", ReasonSetupTimeout},
		{sippFailure{Timeout: true, Index: 8}, "sn1", ReasonByeTimeout},
		{sippFailure{Code: 404}, "sn1", Reason404},
		{sippFailure{Code: 480}, "sn1", Reason480},
		{sippFailure{Code: 503}, "sn1", Reason5xx},
		{sippFailure{Code: 503, At: t0.Add(time.Second)}, "sn2", Reason5xxStopping},
		{sippFailure{Code: 486}, "sn1", ReasonOther},
	} {
		if got := classify(c.f, &chunk{Node: c.node}, down, rt); got != c.want {
			t.Errorf("%+v to %s: %q, want %q", c.f, c.node, got, c.want)
		}
	}
}

func TestSettleTimes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	bad := errors.New("x")
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ss := []sample{
		{At: at(10), DNS: bad, Ring: nil, Copies: bad},
		{At: at(110), DNS: nil, Ring: nil, Copies: bad},
		{At: at(210), DNS: bad, Ring: nil, Copies: nil},
		{At: at(310), DNS: nil, Ring: nil, Copies: bad},
	}
	got := settleTimes(t0, ss)
	if got.DNS != 310*time.Millisecond || got.Ring != 10*time.Millisecond || got.Copies != -1 {
		t.Fatalf("%+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{DefaultConfig(), CIConfig()} {
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	c := CIConfig()
	c.DownMax = c.EventGapMin
	c.Replicas = 2
	err := c.Validate()
	for _, want := range []string{"DownMax", "Replicas"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming %s, got %v", want, err)
		}
	}
}
