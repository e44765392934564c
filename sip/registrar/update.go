package registrar

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// Handle processes one REGISTER (RFC 3261 section 10.3) and returns the
// final response to send. It is synchronous and touches no socket: it
// blocks only on the Authenticator and the BindingStore, both bounded by
// ctx. It never returns nil and never panics on request content. src is
// where the request really came from (transport and remote address); it is
// stored as the bindings' Received.
//
// Each REGISTER is applied atomically: it reads the AOR's set, computes the
// new one and writes it conditionally on the version read; on a conflicting
// concurrent write (another node) it starts over, up to
// Config.MaxConflictRetries times.
func (r *Registrar) Handle(ctx context.Context, req *sip.Request, src Source) *sip.Response {
	src = src.normalize()
	rr, rej := r.check(ctx, req, src)
	if rej != nil {
		return r.rejectResponse(req, rej)
	}
	bindings, now, rej := r.update(ctx, rr)
	if rej != nil {
		return r.rejectResponse(req, rej)
	}
	return r.okResponse(req, rr, bindings, now)
}

// update is the read-modify-write of step 7: it returns the AOR's live
// bindings after the request and the time they were computed at.
func (r *Registrar) update(ctx context.Context, rr *regRequest) ([]Binding, time.Time, *rejection) {
	for attempt := 0; ; attempt++ {
		set, version, err := r.store.Get(ctx, rr.aor)
		if err != nil {
			r.log.Warn("binding store read failed", zap.String("aor", rr.aor), zap.Error(err))
			return nil, time.Time{}, r.storeFailure()
		}
		now := r.clock()
		next, changed, rej := r.apply(set.Bindings, rr, now)
		if rej != nil {
			return nil, time.Time{}, rej
		}
		if !changed || (version == 0 && len(next) == 0) {
			// Nothing to write (a fetch, or removing what is not there).
			// Expired bindings stay stored until the next write.
			return next, now, nil
		}
		err = r.store.Put(ctx, rr.aor, BindingSet{Bindings: next, RetainUntil: r.retainUntil(next, now)}, version)
		if err == nil {
			return next, now, nil
		}
		if !errors.Is(err, ErrConflict) || attempt >= r.cfg.MaxConflictRetries {
			r.log.Warn("binding store write failed", zap.String("aor", rr.aor), zap.Int("attempt", attempt), zap.Error(err))
			return nil, time.Time{}, r.storeFailure()
		}
		r.log.Debug("binding store conflict, retrying", zap.String("aor", rr.aor), zap.Int("attempt", attempt))
	}
}

// The RFC says the request "fails" without naming a code; section 10.3
// step 7 then requires that a failing binding update fail the whole request
// with 500, and so does section 21.5.1's meaning of 500. An equal CSeq with
// the same Call-ID is not out of order: a node answers REGISTER over UDP
// statelessly, so a retransmission of a REGISTER already applied gets
// here, and leaves the binding as that REGISTER set it (as Kamailio's
// registrar does); the answer lists the bindings held.
func outOfOrder() *rejection {
	return reject(sip.StatusInternalServerError, "Out-of-Order REGISTER (CSeq Not Higher)")
}

// entry is a binding being worked on by apply.
type entry struct {
	b       Binding
	uri     *sip.Uri // parsed b.Contact; nil if unparsable (never matches)
	touched bool     // already set by this request
	removed bool
}

// apply computes the AOR's bindings after rr (steps 6 and 7), from the
// stored bindings cur at now. It reports whether anything changed.
func (r *Registrar) apply(cur []Binding, rr *regRequest, now time.Time) ([]Binding, bool, *rejection) {
	entries := make([]entry, 0, len(cur)+len(rr.contacts))
	for i := range cur {
		if !cur[i].Live(now) {
			continue // dropped by this write
		}
		e := entry{b: cur[i]}
		if len(rr.contacts) > 0 {
			var u sip.Uri
			if sip.ParseUri(e.b.Contact, &u) == nil {
				e.uri = &u
			}
		}
		entries = append(entries, e)
	}
	live := len(entries)

	if rr.wildcard {
		// Step 6: remove every binding, unless one carries this Call-ID
		// with a CSeq not lower than the request's.
		for i := range entries {
			if entries[i].b.CallID == rr.callID && rr.cseq <= entries[i].b.CSeq {
				return nil, false, outOfOrder()
			}
		}
		return nil, live > 0, nil
	}

	changed := false
	for ci := range rr.contacts {
		c := &rr.contacts[ci]
		i := slices.IndexFunc(entries, func(e entry) bool { return e.uri != nil && uriEqual(e.uri, &c.uri) })
		if i < 0 {
			if c.expires > 0 {
				entries = append(entries, entry{b: r.newBinding(c, rr, now), uri: &c.uri, touched: true})
				changed = true
			}
			continue
		}
		e := &entries[i]
		// Step 7: same Call-ID needs a higher CSeq; a different Call-ID
		// (the UA restarted) replaces the binding. The same CSeq is a
		// retransmission: the binding stays as it set it.
		if !e.touched && e.b.CallID == rr.callID && rr.cseq <= e.b.CSeq {
			if rr.cseq == e.b.CSeq {
				e.touched = true
				continue
			}
			return nil, false, outOfOrder()
		}
		e.touched, changed = true, true
		e.removed = c.expires == 0
		if !e.removed {
			e.b = r.newBinding(c, rr, now)
		}
	}

	next := make([]Binding, 0, len(entries))
	for i := range entries {
		if !entries[i].removed {
			next = append(next, entries[i].b)
		}
	}
	if len(next) > r.cfg.MaxContactsPerAOR && len(next) > live {
		return nil, false, reject(sip.StatusForbidden, "Too Many Contacts")
	}
	return next, changed, nil
}

func (r *Registrar) newBinding(c *contactReq, rr *regRequest, now time.Time) Binding {
	return Binding{
		Contact:    c.text,
		Q:          c.q,
		Expires:    now.Add(c.expires),
		CallID:     rr.callID,
		CSeq:       rr.cseq,
		Path:       slices.Clone(rr.path),
		Received:   rr.src,
		Instance:   c.instance,
		RegID:      c.regID,
		Registered: now,
	}
}

// retainUntil is the record expiry written with bs: the latest binding
// expiry (now for none) plus RecordLinger.
func (r *Registrar) retainUntil(bs []Binding, now time.Time) time.Time {
	latest := now
	for i := range bs {
		if bs[i].Expires.After(latest) {
			latest = bs[i].Expires
		}
	}
	return latest.Add(r.cfg.RecordLinger)
}

func (r *Registrar) storeFailure() *rejection {
	return reject(sip.StatusInternalServerError, "Location Service Unavailable",
		sip.NewHeader("Retry-After", formatSeconds(r.cfg.RetryAfter)))
}
