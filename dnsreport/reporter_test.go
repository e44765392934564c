package dnsreport

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a settable Clock; After hands out channels the test fires.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	afters chan time.Duration // each After call reports its duration here
	fire   chan time.Time     // shared by all After channels
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		afters: make(chan time.Duration, 100),
		fire:   make(chan time.Time),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.afters <- d
	return c.fire
}

// fakeUpdater records changes and answers from a script of errors (nil
// once the script is used up). With gate set, Update blocks until the test
// sends on it.
type fakeUpdater struct {
	mu      sync.Mutex
	script  []error
	changes []Change
	gate    chan struct{}
	entered chan struct{}
}

func (f *fakeUpdater) Update(ctx context.Context, ch Change) error {
	f.mu.Lock()
	f.changes = append(f.changes, ch)
	var err error
	if len(f.script) > 0 {
		err, f.script = f.script[0], f.script[1:]
	}
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	return err
}

func (f *fakeUpdater) calls() []Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Change(nil), f.changes...)
}

type reporterFixture struct {
	r       *Reporter
	up      *fakeUpdater
	clock   *fakeClock
	logs    *observer.ObservedLogs
	results chan Result
}

func newReporterFixture(t *testing.T, mod func(*ReporterConfig), script ...error) *reporterFixture {
	t.Helper()
	cfg := DefaultConfig().Reporter
	cfg.RetryMin, cfg.RetryMax, cfg.Jitter = 100*time.Millisecond, 1600*time.Millisecond, 0
	cfg.RefreshInterval = 0
	if mod != nil {
		mod(&cfg)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	f := &reporterFixture{up: &fakeUpdater{script: script}, clock: newFakeClock(), logs: logs, results: make(chan Result, 1000)}
	var err error
	f.r, err = NewReporter(cfg, f.up, f.clock, rand.New(rand.NewPCG(1, 1)), zap.New(core), func(res Result) { f.results <- res })
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// submitAndFlush submits in and starts Flush for its key, returning once
// Flush has registered (it wakes the driver, which the test plays).
func (f *reporterFixture) submitAndFlush(t *testing.T, in Intent) chan error {
	t.Helper()
	if err := f.r.Submit(in); err != nil {
		t.Fatal(err)
	}
	<-f.r.kick // Submit's wake-up
	flushed := make(chan error, 1)
	go func() { flushed <- f.r.Flush(context.Background(), in.Key) }()
	<-f.r.kick // Flush registered and woke the driver
	return flushed
}

// step advances the fake clock by d and steps the reporter.
func (f *reporterFixture) step(d time.Duration) time.Time {
	now := f.clock.Now().Add(d)
	f.clock.set(now)
	return f.r.Step(context.Background(), now)
}

func publishIntent(t *testing.T, key, label string) Intent {
	t.Helper()
	ch, err := testRep(label, 5060, "127.0.0.21").PublishChange()
	if err != nil {
		t.Fatal(err)
	}
	return Intent{Key: key, Change: ch, Role: "self", Refresh: true}
}

func deleteIntent(t *testing.T, key, label, role string) Intent {
	t.Helper()
	ch, err := testRep(label, 5060, "127.0.0.21").DeleteChange()
	if err != nil {
		t.Fatal(err)
	}
	return Intent{Key: key, Change: ch, Role: role}
}

func notAuth(server string) error {
	return &UpdateError{Server: server, Zone: "dsn.test.", Rcode: dns.RcodeNotAuth}
}

func TestReporterAppliesOnce(t *testing.T) {
	f := newReporterFixture(t, nil)
	if err := f.r.Submit(deleteIntent(t, "node/n1", "n1", "successor")); err != nil {
		t.Fatal(err)
	}
	if next := f.step(0); !next.IsZero() {
		t.Errorf("next = %v after success, want nothing due", next)
	}
	if n := len(f.up.calls()); n != 1 {
		t.Fatalf("%d updates, want 1", n)
	}
	if res := <-f.results; res.Err != nil || res.Outcome != "ok" || res.Role != "successor" || res.Op != "delete" || res.Attempt != 1 {
		t.Errorf("result %+v", res)
	}
	if _, ok := f.r.Status("node/n1"); ok {
		t.Error("applied one-shot intent still held")
	}
	f.step(time.Hour)
	if n := len(f.up.calls()); n != 1 {
		t.Errorf("applied intent sent again: %d updates", n)
	}
}

func TestReporterBackoffDoublesAndCaps(t *testing.T) {
	failures := []error{
		notAuth("a:53"),
		&UpdateError{Server: "a:53", Rcode: dns.RcodeRefused},
		&UpdateError{Server: "a:53", Rcode: dns.RcodeServerFailure},
		&UpdateError{Server: "a:53", Rcode: NoReply, Err: context.DeadlineExceeded},
		notAuth("a:53"), notAuth("a:53"), notAuth("a:53"),
	}
	f := newReporterFixture(t, nil, failures...)
	start := f.clock.Now()
	if err := f.r.Submit(publishIntent(t, "self", "n1")); err != nil {
		t.Fatal(err)
	}
	wantWaits := []time.Duration{100, 200, 400, 800, 1600, 1600, 1600}
	next := f.step(0)
	for i, w := range wantWaits {
		if got := next.Sub(f.clock.Now()); got != w*time.Millisecond {
			t.Fatalf("after failure %d: wait %v, want %v", i+1, got, w*time.Millisecond)
		}
		// Just before it is due nothing is sent.
		before := len(f.up.calls())
		f.r.Step(context.Background(), next.Add(-time.Millisecond))
		if len(f.up.calls()) != before {
			t.Fatalf("attempt %d sent before it was due", i+2)
		}
		f.clock.set(next)
		next = f.r.Step(context.Background(), next)
	}
	if n := len(f.up.calls()); n != len(failures)+1 {
		t.Fatalf("%d updates, want %d", n, len(failures)+1)
	}
	if st, ok := f.r.Status("self"); ok { // RefreshInterval 0: nothing kept
		t.Errorf("status after success: %+v", st)
	}
	var outcomes []string
	for range len(failures) + 1 {
		outcomes = append(outcomes, (<-f.results).Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "notauth,refused,servfail,timeout,notauth,notauth,notauth,ok" {
		t.Errorf("outcomes %s", got)
	}
	if f.clock.Now().Sub(start) != 6300*time.Millisecond {
		t.Errorf("total wait %v", f.clock.Now().Sub(start))
	}
}

func TestReporterJitterStaysInBounds(t *testing.T) {
	f := newReporterFixture(t, func(c *ReporterConfig) { c.Jitter = 0.5 })
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		f.r.mu.Lock()
		d := f.r.backoffLocked(1)
		f.r.mu.Unlock()
		if d < 50*time.Millisecond || d > 150*time.Millisecond {
			t.Fatalf("jittered wait %v outside 100ms ±50%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("jitter gives only %d distinct waits", len(seen))
	}
}

func TestReporterNeverDropsAPendingChange(t *testing.T) {
	script := make([]error, 500)
	for i := range script {
		script[i] = &UpdateError{Server: "a:53", Rcode: NoReply, Err: context.DeadlineExceeded}
	}
	f := newReporterFixture(t, nil, script...)
	if err := f.r.Submit(deleteIntent(t, "node/n1", "n1", "backup")); err != nil {
		t.Fatal(err)
	}
	next := f.step(0)
	for i := 0; i < len(script); i++ {
		if next.IsZero() {
			t.Fatalf("after %d failures nothing is due: the change was dropped", i+1)
		}
		f.clock.set(next)
		next = f.r.Step(context.Background(), next)
	}
	if _, ok := f.r.Status("node/n1"); ok {
		t.Error("change still pending after the server recovered")
	}
	if n := len(f.up.calls()); n != len(script)+1 {
		t.Errorf("%d updates, want %d", n, len(script)+1)
	}
}

func TestReporterNewerIntentSupersedes(t *testing.T) {
	f := newReporterFixture(t, nil, notAuth("a:53"))
	pub := publishIntent(t, "self", "n1")
	del := deleteIntent(t, "self", "n1", "leave")
	if err := f.r.Submit(pub); err != nil {
		t.Fatal(err)
	}
	f.step(0) // fails, backs off
	if err := f.r.Submit(del); err != nil {
		t.Fatal(err)
	}
	// The newer intent is due at once, not after the old backoff.
	if next := f.r.NextDue(); !next.Equal(f.clock.Now()) {
		t.Errorf("superseding intent due at %v, want now", next)
	}
	f.step(0)
	f.step(time.Hour)
	calls := f.up.calls()
	if len(calls) != 2 || len(calls[1].Add) != 0 || len(calls[1].Delete) == 0 {
		t.Fatalf("updates %v, want the failed publish then only the delete", calls)
	}
}

func TestReporterSupersedeWhileInFlight(t *testing.T) {
	f := newReporterFixture(t, nil)
	f.up.gate, f.up.entered = make(chan struct{}), make(chan struct{})
	if err := f.r.Submit(publishIntent(t, "self", "n1")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		f.r.Step(context.Background(), f.clock.Now())
		close(done)
	}()
	<-f.up.entered // the publish is in flight
	if err := f.r.Submit(deleteIntent(t, "self", "n1", "leave")); err != nil {
		t.Fatal(err)
	}
	// A concurrent Step must not send the delete while the publish is in
	// flight: it could overtake it.
	if next := f.r.Step(context.Background(), f.clock.Now()); !next.IsZero() {
		t.Errorf("in-flight key reported due at %v", next)
	}
	f.up.gate <- struct{}{} // the publish succeeds
	<-done
	st, ok := f.r.Status("self")
	if !ok || st.Applied || st.Op != "delete" {
		t.Fatalf("after the stale publish succeeded: %+v, want the delete pending", st)
	}
	go func() { <-f.up.entered; f.up.gate <- struct{}{} }()
	f.r.Step(context.Background(), f.clock.Now())
	if _, ok := f.r.Status("self"); ok {
		t.Error("delete not applied")
	}
	if calls := f.up.calls(); len(calls) != 2 || len(calls[1].Add) != 0 {
		t.Errorf("updates %v", calls)
	}
}

func TestReporterFlush(t *testing.T) {
	f := newReporterFixture(t, nil, notAuth("a:53"), notAuth("a:53"))
	if err := f.r.Flush(context.Background(), "self"); err != nil {
		t.Fatalf("flush of nothing: %v", err)
	}
	flushed := f.submitAndFlush(t, deleteIntent(t, "self", "n1", "leave"))
	next := f.step(0)
	f.clock.set(next)
	next = f.r.Step(context.Background(), next)
	select {
	case err := <-flushed:
		t.Fatalf("flush returned %v while the change is failing", err)
	default:
	}
	f.clock.set(next)
	f.r.Step(context.Background(), next)
	if err := <-flushed; err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func TestReporterFlushMakesBackedOffChangeDueNow(t *testing.T) {
	f := newReporterFixture(t, nil, notAuth("a:53"))
	if err := f.r.Submit(deleteIntent(t, "self", "n1", "leave")); err != nil {
		t.Fatal(err)
	}
	f.step(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.r.Flush(ctx, "self")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "NOTAUTH") {
		t.Errorf("flush with ended ctx: %v, want context.Canceled naming the last failure", err)
	}
	if next := f.r.NextDue(); !next.Equal(f.clock.Now()) {
		t.Errorf("after Flush the change is due %v, want now", next)
	}
}

func TestReporterCancelReleasesFlush(t *testing.T) {
	f := newReporterFixture(t, nil)
	flushed := f.submitAndFlush(t, deleteIntent(t, "node/n1", "n1", "predecessor"))
	f.r.Cancel("node/n1")
	if err := <-flushed; !errors.Is(err, ErrCanceled) {
		t.Errorf("flush after cancel: %v", err)
	}
	f.step(0)
	if n := len(f.up.calls()); n != 0 {
		t.Errorf("cancelled change sent %d times", n)
	}
}

func TestReporterCancelWhileInFlight(t *testing.T) {
	f := newReporterFixture(t, nil)
	f.up.gate, f.up.entered = make(chan struct{}), make(chan struct{})
	if err := f.r.Submit(deleteIntent(t, "node/n1", "n1", "successor")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		f.r.Step(context.Background(), f.clock.Now())
		close(done)
	}()
	<-f.up.entered
	f.r.Cancel("node/n1") // n1 came back
	if _, ok := f.r.Status("node/n1"); ok {
		t.Error("cancelled intent still reported")
	}
	if err := f.r.Flush(context.Background(), "node/n1"); err != nil {
		t.Errorf("flush of a cancelled key: %v", err)
	}
	// n1 dies again before the old attempt lands: the new delete must wait
	// for it rather than run beside it.
	if err := f.r.Submit(deleteIntent(t, "node/n1", "n1", "successor")); err != nil {
		t.Fatal(err)
	}
	if next := f.r.Step(context.Background(), f.clock.Now()); !next.IsZero() {
		t.Errorf("second attempt for an in-flight key: next %v", next)
	}
	f.up.gate <- struct{}{}
	<-done
	st, ok := f.r.Status("node/n1")
	if !ok || st.Applied {
		t.Fatalf("resubmitted delete lost when the cancelled attempt landed: %+v %v", st, ok)
	}
	go func() { <-f.up.entered; f.up.gate <- struct{}{} }()
	f.r.Step(context.Background(), f.clock.Now())
	if _, ok := f.r.Status("node/n1"); ok {
		t.Error("resubmitted delete not applied")
	}
}

func TestReporterStepsKeysConcurrently(t *testing.T) {
	f := newReporterFixture(t, nil)
	f.up.gate, f.up.entered = make(chan struct{}), make(chan struct{})
	for _, k := range []string{"node/a", "node/b", "self"} {
		if err := f.r.Submit(deleteIntent(t, k, "n1", "successor")); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		f.r.Step(context.Background(), f.clock.Now())
		close(done)
	}()
	for range 3 { // all three are in flight at once
		<-f.up.entered
	}
	for range 3 {
		f.up.gate <- struct{}{}
	}
	<-done
	if p := f.r.Pending(); len(p) != 0 {
		t.Errorf("pending after success: %+v", p)
	}
}

func TestReporterRefresh(t *testing.T) {
	f := newReporterFixture(t, func(c *ReporterConfig) { c.RefreshInterval = time.Minute }, nil, notAuth("a:53"))
	if err := f.r.Submit(publishIntent(t, "self", "n1")); err != nil {
		t.Fatal(err)
	}
	next := f.step(0)
	if got := next.Sub(f.clock.Now()); got != time.Minute {
		t.Fatalf("refresh due in %v, want 1m", got)
	}
	if st, _ := f.r.Status("self"); !st.Applied {
		t.Fatal("not applied")
	}
	f.clock.set(next)
	f.r.Step(context.Background(), next) // refresh fails
	if st, _ := f.r.Status("self"); st.Applied || st.Attempts != 1 {
		t.Errorf("failed refresh: %+v", st)
	}
	f.step(time.Second)
	if st, _ := f.r.Status("self"); !st.Applied {
		t.Errorf("refresh retry not applied: %+v", st)
	}
	if n := len(f.up.calls()); n != 3 {
		t.Errorf("%d updates, want 3", n)
	}
}

func TestReporterLogsEveryServerFailureWithHint(t *testing.T) {
	joined := errors.Join(
		&UpdateError{Server: "10.0.0.1:53", Zone: "dsn.test.", Rcode: dns.RcodeNotAuth, TSIGError: dns.RcodeBadSig},
		&UpdateError{Server: "10.0.0.2:53", Zone: "dsn.test.", Rcode: NoReply, Err: context.DeadlineExceeded},
	)
	f := newReporterFixture(t, nil, joined)
	if err := f.r.Submit(publishIntent(t, "self", "n1")); err != nil {
		t.Fatal(err)
	}
	f.step(0)
	entries := f.logs.FilterMessage("dnsreport: DNS update failed").All()
	if len(entries) != 2 {
		t.Fatalf("%d failure log entries, want one per server", len(entries))
	}
	first := entries[0].ContextMap()
	if first["server"] != "10.0.0.1:53" || first["rcode"] != "NOTAUTH" || first["tsig_error"] != "BADSIG" ||
		!strings.Contains(first["hint"].(string), "secret") || first["role"] != "self" || first["key"] != "self" {
		t.Errorf("first entry %v", first)
	}
	second := entries[1].ContextMap()
	if second["server"] != "10.0.0.2:53" || second["rcode"] != "no-reply" || !strings.Contains(second["hint"].(string), "reachable") {
		t.Errorf("second entry %v", second)
	}
	if entries[0].Level != zapcore.WarnLevel {
		t.Errorf("level %v", entries[0].Level)
	}
}

func TestReporterRunLoop(t *testing.T) {
	f := newReporterFixture(t, nil, notAuth("a:53"), notAuth("a:53"))
	if err := f.r.Submit(deleteIntent(t, "self", "n1", "leave")); err != nil {
		t.Fatal(err)
	}
	<-f.r.kick // Run's first Step sees the intent anyway
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- f.r.Run(ctx) }()
	// The first attempt fails; Run asks the clock to wake it after the
	// backoff. Move the clock and fire the timer.
	if res := <-f.results; res.Outcome != "notauth" {
		t.Fatalf("first result %+v", res)
	}
	if d := <-f.clock.afters; d != 100*time.Millisecond {
		t.Fatalf("Run waits %v, want the 100ms backoff", d)
	}
	f.clock.set(f.clock.Now().Add(100 * time.Millisecond))
	f.clock.fire <- f.clock.Now()
	if res := <-f.results; res.Outcome != "notauth" || res.Attempt != 2 {
		t.Fatalf("second result %+v", res)
	}
	if d := <-f.clock.afters; d != 200*time.Millisecond {
		t.Fatalf("Run waits %v, want the 200ms backoff", d)
	}
	// Flush does not wait for the backoff: it wakes Run at once.
	if err := f.r.Flush(ctx, "self"); err != nil {
		t.Fatalf("flush: %v", err)
	}
	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

func TestReporterClose(t *testing.T) {
	f := newReporterFixture(t, nil)
	flushed := f.submitAndFlush(t, deleteIntent(t, "self", "n1", "leave"))
	f.r.Close()
	if err := <-flushed; !errors.Is(err, ErrClosed) {
		t.Errorf("flush after close: %v", err)
	}
	if err := f.r.Submit(deleteIntent(t, "x", "n1", "leave")); !errors.Is(err, ErrClosed) {
		t.Errorf("submit after close: %v", err)
	}
	if err := f.r.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after close: %v", err)
	}
}

func TestReporterRejectsBadIntents(t *testing.T) {
	f := newReporterFixture(t, nil)
	if err := f.r.Submit(Intent{Change: Change{Zone: "z."}}); err == nil {
		t.Error("intent without key accepted")
	}
	if err := f.r.Submit(Intent{Key: "k", Change: Change{Zone: "z."}}); err == nil {
		t.Error("empty change accepted")
	}
}

func TestReporterSubmitCopiesTheChange(t *testing.T) {
	f := newReporterFixture(t, nil)
	in := deleteIntent(t, "k", "n1", "leave")
	if err := f.r.Submit(in); err != nil {
		t.Fatal(err)
	}
	in.Change.Delete[0].Header().Name = "mutated.dsn.test."
	f.step(0)
	if got := f.up.calls()[0].Delete[0].Header().Name; got == "mutated.dsn.test." {
		t.Error("the caller's later mutation reached the update")
	}
}

func TestOutcome(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                   "ok",
		&UpdateError{Rcode: dns.RcodeRefused}: "refused",
		&UpdateError{Rcode: dns.RcodeServerFailure}:                 "servfail",
		&UpdateError{Rcode: NoReply, Err: ErrUnsignedReply}:         "unsigned_reply",
		&UpdateError{Rcode: NoReply, Err: ErrBadReplySignature}:     "bad_signature",
		&UpdateError{Rcode: NoReply, Err: errors.New("conn reset")}: "timeout",
		&UpdateError{Rcode: dns.RcodeNotZone}:                       "error",
		errors.Join(notAuth("a"), &UpdateError{Rcode: NoReply}):     "notauth",
	} {
		if got := Outcome(err); got != want {
			t.Errorf("Outcome(%v) = %s, want %s", err, got, want)
		}
	}
}
