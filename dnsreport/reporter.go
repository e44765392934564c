package dnsreport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// Intent is a desired change to the DNS, identified by Key. A newer Intent
// with the same Key supersedes an older one that has not been applied yet
// (use the same key for a node's "publish" and "delete" of itself, e.g.
// "self", and "node/<name>" for deleting a dead peer).
type Intent struct {
	Key    string
	Change Change
	// Role says why this node sends the change, for logs and metrics:
	// "self", "leave", "predecessor", "successor", "backup", "operator".
	Role string
	// Refresh keeps the intent after success and re-applies it every
	// ReporterConfig.RefreshInterval (a representative's own records).
	Refresh bool
}

// Op is "publish" when the change adds records, else "delete".
func (in Intent) Op() string {
	if len(in.Change.Add) > 0 {
		return "publish"
	}
	return "delete"
}

// Result is reported to the result hook after every attempt.
type Result struct {
	Key     string
	Role    string
	Op      string
	Attempt int   // 1 for the first try of this intent
	Err     error // nil: applied
	// Outcome is a short label for metrics: "ok", "notauth", "refused",
	// "servfail", "timeout", "unsigned_reply", "bad_signature", "error".
	Outcome string
}

// Outcome maps an Update error to the metrics label of Result.Outcome.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotAuth):
		return "notauth"
	case errors.Is(err, ErrRefused):
		return "refused"
	case errors.Is(err, ErrServFail):
		return "servfail"
	case errors.Is(err, ErrUnsignedReply):
		return "unsigned_reply"
	case errors.Is(err, ErrBadReplySignature):
		return "bad_signature"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}

// Status describes one intent the Reporter holds.
type Status struct {
	Key         string
	Role        string
	Op          string
	Applied     bool // the latest intent for Key has been applied
	Attempts    int  // failed attempts since the intent was submitted
	LastError   error
	NextAttempt time.Time // zero while an attempt is running or nothing is due
}

// Reporter applies Intents through an Updater and retries each until it is
// applied: every failure (NOTAUTH, REFUSED, SERVFAIL, timeouts, anything)
// is logged with the server, rcode and a hint, and retried with exponential
// backoff and jitter. An intent is dropped only when it is applied (unless
// Refresh), superseded, cancelled, or the Reporter is closed.
//
// The core is synchronous: Step applies what is due at a given time and
// says when to call it next; Run is the small driver loop. All methods are
// safe for concurrent use; Step blocks on the Updater, and no lock is held
// while it does. Only one attempt per key is in flight at a time, so an
// older change can never land after a newer one.
type Reporter struct {
	cfg      ReporterConfig
	up       Updater
	clock    Clock
	log      *zap.Logger
	onResult func(Result)

	mu      sync.Mutex
	rng     *rand.Rand
	entries map[string]*entry
	gen     uint64
	closed  bool
	kick    chan struct{}
}

type entry struct {
	intent   Intent
	gen      uint64
	due      time.Time
	attempts int
	applied  bool
	inflight bool
	// cancelled: Cancel came while an attempt was in flight; the entry
	// stays (so no second attempt for the key can start) until it lands.
	cancelled bool
	lastErr   error
	waiters   []chan error
}

// NewReporter makes a Reporter. logger and onResult may be nil.
func NewReporter(cfg ReporterConfig, up Updater, clock Clock, rng *rand.Rand, logger *zap.Logger, onResult func(Result)) (*Reporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if up == nil || clock == nil || rng == nil {
		return nil, errors.New("dnsreport: NewReporter needs an Updater, a Clock and a random source")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Reporter{
		cfg: cfg, up: up, clock: clock, log: logger, onResult: onResult,
		rng: rng, entries: map[string]*entry{}, kick: make(chan struct{}, 1),
	}, nil
}

func (r *Reporter) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Submit makes in the desired change for in.Key, replacing any older one,
// and makes it due now.
func (r *Reporter) Submit(in Intent) error {
	if in.Key == "" {
		return errors.New("dnsreport: intent has no key")
	}
	if err := in.Change.Validate(); err != nil {
		return fmt.Errorf("dnsreport: intent %q: %w", in.Key, err)
	}
	in.Change = cloneChange(in.Change)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	e := r.entries[in.Key]
	if e == nil {
		e = &entry{}
		r.entries[in.Key] = e
	}
	r.gen++
	e.intent, e.gen, e.due = in, r.gen, r.clock.Now()
	e.attempts, e.applied, e.cancelled, e.lastErr = 0, false, false, nil
	r.wake()
	return nil
}

// Cancel forgets the intent for key (e.g. a peer thought dead is back, so
// its records must not be deleted). An attempt already in flight still
// completes. Flush calls waiting on key return ErrCanceled.
func (r *Reporter) Cancel(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[key]
	if e == nil || e.cancelled {
		return
	}
	release(e, ErrCanceled)
	if !e.inflight {
		delete(r.entries, key)
		return
	}
	r.gen++
	e.gen, e.cancelled = r.gen, true // the landing attempt is no longer current
}

func release(e *entry, err error) {
	for _, w := range e.waiters {
		w <- err
	}
	e.waiters = nil
}

// Flush makes the intent for key due now and waits until it (or a newer
// intent for key) is applied, ctx ends, or it is cancelled. It returns nil
// at once when nothing is pending for key. It needs Run (or someone calling
// Step) to make progress.
func (r *Reporter) Flush(ctx context.Context, key string) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	e := r.entries[key]
	if e == nil || e.applied || e.cancelled {
		r.mu.Unlock()
		return nil
	}
	w := make(chan error, 1)
	e.waiters = append(e.waiters, w)
	if !e.inflight {
		e.due = r.clock.Now()
	}
	r.wake()
	r.mu.Unlock()

	select {
	case err := <-w:
		return err
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	last := e.lastErr
	e.waiters = slices.DeleteFunc(e.waiters, func(c chan error) bool { return c == w })
	select {
	case err := <-w: // released while we took the lock
		return err
	default:
	}
	if last != nil {
		return fmt.Errorf("dnsreport: flush %q: %w (last failure: %v)", key, ctx.Err(), last)
	}
	return fmt.Errorf("dnsreport: flush %q: %w", key, ctx.Err())
}

// Step attempts every intent that is due at now, each key in its own
// goroutine, waits for all of them, and returns when the next intent falls
// due (zero: nothing is waiting).
func (r *Reporter) Step(ctx context.Context, now time.Time) time.Time {
	type job struct {
		in  Intent
		gen uint64
		try int
	}
	r.mu.Lock()
	var jobs []job
	for _, e := range r.entries {
		if r.dueLocked(e, now) {
			e.inflight = true
			jobs = append(jobs, job{in: e.intent, gen: e.gen, try: e.attempts + 1})
		}
	}
	r.mu.Unlock()

	// Keys are independent: one unreachable change must not hold up the
	// others (a graceful leave behind a dead peer's delete, say).
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			uctx, cancel := context.WithTimeout(ctx, r.cfg.UpdateTimeout)
			err := r.up.Update(uctx, j.in.Change)
			cancel()
			r.finish(j.in, j.gen, j.try, err)
		})
	}
	wg.Wait()
	return r.NextDue()
}

// waitingLocked: e is not in flight and wants an attempt (not applied
// yet, or applied but kept for refresh).
func (r *Reporter) waitingLocked(e *entry) bool {
	return !e.inflight && !e.cancelled && (!e.applied || (e.intent.Refresh && r.cfg.RefreshInterval > 0))
}

func (r *Reporter) dueLocked(e *entry, now time.Time) bool {
	return r.waitingLocked(e) && !e.due.After(now)
}

// NextDue is when the earliest waiting intent falls due; zero if none.
func (r *Reporter) NextDue() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	for _, e := range r.entries {
		if r.waitingLocked(e) && (next.IsZero() || e.due.Before(next)) {
			next = e.due
		}
	}
	return next
}

func (r *Reporter) finish(in Intent, gen uint64, try int, err error) {
	now := r.clock.Now()
	r.mu.Lock()
	e := r.entries[in.Key]
	current := e != nil && e.gen == gen
	if e != nil {
		e.inflight = false
	}
	var wait time.Duration
	switch {
	case !current && e != nil && e.cancelled:
		delete(r.entries, in.Key)
	case !current:
		// Superseded while in flight; the newer intent stays due.
	case err == nil:
		e.applied, e.attempts, e.lastErr = true, 0, nil
		release(e, nil)
		if in.Refresh && r.cfg.RefreshInterval > 0 {
			e.due = now.Add(r.cfg.RefreshInterval)
		} else {
			delete(r.entries, in.Key)
		}
	default:
		e.attempts++
		e.lastErr = err
		wait = r.backoffLocked(e.attempts)
		e.due = now.Add(wait)
		e.applied = false // a failed refresh: the records may be gone
	}
	r.mu.Unlock()

	r.logResult(in, try, err, wait, current)
	if r.onResult != nil {
		r.onResult(Result{Key: in.Key, Role: in.Role, Op: in.Op(), Attempt: try, Err: err, Outcome: Outcome(err)})
	}
}

// backoffLocked is RetryMin * 2^(attempts-1), capped at RetryMax, spread
// by ±Jitter.
func (r *Reporter) backoffLocked(attempts int) time.Duration {
	d := r.cfg.RetryMin
	for i := 1; i < attempts && d < r.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.RetryMax)
	if r.cfg.Jitter > 0 {
		f := 1 + r.cfg.Jitter*(2*r.rng.Float64()-1)
		d = time.Duration(float64(d) * f)
	}
	return max(d, time.Millisecond)
}

func (r *Reporter) logResult(in Intent, try int, err error, wait time.Duration, current bool) {
	base := []zap.Field{
		zap.String("key", in.Key), zap.String("role", in.Role), zap.String("op", in.Op()),
		zap.String("zone", in.Change.Zone), zap.Int("attempt", try),
	}
	if err == nil {
		if try > 1 {
			r.log.Info("dnsreport: DNS update applied after retries", append(base, zap.Stringer("change", in.Change))...)
		} else {
			r.log.Info("dnsreport: DNS update applied", append(base, zap.Stringer("change", in.Change))...)
		}
		return
	}
	if current {
		base = append(base, zap.Duration("retry_in", wait))
	} else {
		base = append(base, zap.Bool("superseded", true))
	}
	ues := UpdateErrors(err)
	if len(ues) == 0 {
		r.log.Error("dnsreport: DNS update failed", append(base, zap.Error(err))...)
		return
	}
	for _, ue := range ues {
		f := append(slices.Clone(base),
			zap.String("server", ue.Server), zap.String("rcode", ue.RcodeString()),
			zap.String("hint", ue.Hint()), zap.Error(ue))
		if ue.TSIGError != 0 {
			f = append(f, zap.String("tsig_error", dns.RcodeToString[int(ue.TSIGError)]))
		}
		r.log.Warn("dnsreport: DNS update failed", f...)
	}
}

// Status reports the intent held for key.
func (r *Reporter) Status(key string) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[key]
	if e == nil || e.cancelled {
		return Status{}, false
	}
	return r.statusLocked(key, e), true
}

// Pending lists every intent held, applied Refresh intents included,
// sorted by key.
func (r *Reporter) Pending() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.entries))
	for k, e := range r.entries {
		if !e.cancelled {
			out = append(out, r.statusLocked(k, e))
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (r *Reporter) statusLocked(key string, e *entry) Status {
	s := Status{Key: key, Role: e.intent.Role, Op: e.intent.Op(), Applied: e.applied, Attempts: e.attempts, LastError: e.lastErr}
	if r.waitingLocked(e) {
		s.NextAttempt = e.due
	}
	return s
}

// Run drives Step until ctx ends or Close is called: it steps whenever an
// intent falls due, is submitted or is flushed.
func (r *Reporter) Run(ctx context.Context) error {
	for {
		next := r.Step(ctx, r.clock.Now())
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = r.clock.After(max(next.Sub(r.clock.Now()), 0))
		}
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.kick:
		case <-timer:
		}
	}
}

// Close stops Run and releases Flush waiters with ErrClosed. Intents not
// yet applied are lost; callers Flush what matters first.
func (r *Reporter) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for _, e := range r.entries {
		release(e, ErrClosed)
	}
	r.wake()
}

// cloneChange deep-copies the records so a caller cannot change an intent
// after submitting it.
func cloneChange(c Change) Change {
	cp := Change{
		Zone:         c.Zone,
		DeleteNames:  slices.Clone(c.DeleteNames),
		DeleteRRsets: slices.Clone(c.DeleteRRsets),
	}
	for _, rr := range c.Delete {
		cp.Delete = append(cp.Delete, dns.Copy(rr))
	}
	for _, rr := range c.Add {
		cp.Add = append(cp.Add, dns.Copy(rr))
	}
	return cp
}
