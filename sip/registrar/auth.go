package registrar

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

// Authenticator is the hook for RFC 3261 section 10.3 steps 3 and 4. The
// default, AllowAll, accepts everything; digest authentication plugs in
// here. Implementations are called concurrently and may block (a
// credential look-up); they must not keep req.
type Authenticator interface {
	// Authenticate checks who sent req (step 3). It returns the
	// authenticated identity ("" when the request is accepted without one),
	// or a non-nil Rejection (typically 401 with a WWW-Authenticate
	// challenge) that is sent instead of processing the request.
	Authenticate(ctx context.Context, req *sip.Request, src Source) (identity string, reject *Rejection)
	// Authorize reports whether identity, sending from src, may read and
	// change the bindings of aor (step 4, and the policy "is this source
	// allowed to register this AOR"). false is answered 403.
	Authorize(ctx context.Context, identity, aor string, src Source) bool
}

// Rejection is a final non-2xx answer an Authenticator wants sent.
type Rejection struct {
	Code    int          // 4xx/5xx status code
	Reason  string       // reason phrase; "" for the standard one
	Headers []sip.Header // added to the response, e.g. WWW-Authenticate
}

// AllowAll is the Authenticator that authenticates no one and authorises
// everyone (-auth-open).
type AllowAll struct{}

var _ Authenticator = AllowAll{}

// Authenticate implements Authenticator.
func (AllowAll) Authenticate(context.Context, *sip.Request, Source) (string, *Rejection) {
	return "", nil
}

// Authorize implements Authenticator.
func (AllowAll) Authorize(context.Context, string, string, Source) bool { return true }
