package auth

import (
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/sip/registrar"
)

// challenge returns the 401 (or, for s proxyAuth, the 407) for req: one
// WWW-Authenticate (Proxy-Authenticate) per offered algorithm, in the
// configured order (RFC 8760 section 2.4), all with the same fresh nonce.
// Offered are the configured algorithms for which the user s names (To
// for REGISTER, From for a caller) has credentials in realm, or all of
// them for an unknown user (so the answer does not tell which users
// exist).
func (d *Digest) challenge(req *sip.Request, realm string, now time.Time, stale bool, s scheme) *registrar.Rejection {
	var rnd [8]byte
	d.rndMu.Lock()
	_, err := io.ReadFull(d.rnd, rnd[:])
	d.rndMu.Unlock()
	if err != nil {
		d.log.Error("no randomness for a nonce", zap.Error(err))
		return &registrar.Rejection{Code: sip.StatusInternalServerError}
	}
	nonce := d.nonces.issue(realm, now, rnd)
	algs := d.store.algorithmsOf(s.user(req), realm, d.cfg.Algorithms)
	if len(algs) == 0 {
		algs = d.cfg.Algorithms
	}
	rej := &registrar.Rejection{Code: s.code, Reason: s.reason}
	for _, a := range algs {
		rej.Headers = append(rej.Headers, sip.NewHeader(s.challenge, challengeValue(realm, nonce, d.nonces.opaque, a, stale)))
	}
	return rej
}

// challengeValue renders one challenge: Digest realm, nonce, opaque,
// [stale,] algorithm, qop="auth".
func challengeValue(realm, nonce, opaque string, alg Algorithm, stale bool) string {
	var b strings.Builder
	b.WriteString("Digest realm=")
	writeQuoted(&b, realm)
	b.WriteString(", nonce=")
	writeQuoted(&b, nonce)
	b.WriteString(", opaque=")
	writeQuoted(&b, opaque)
	if stale {
		b.WriteString(", stale=true")
	}
	b.WriteString(", algorithm=")
	b.WriteString(string(alg))
	b.WriteString(`, qop="auth"`)
	return b.String()
}

// toUser is the unescaped user part of the To URI, "" if none.
func toUser(req *sip.Request) string {
	to := req.To()
	if to == nil {
		return ""
	}
	return unescapeUser(to.Address.User)
}

// fromUser is the unescaped user part of the From URI, "" if none.
func fromUser(req *sip.Request) string {
	from := req.From()
	if from == nil {
		return ""
	}
	return unescapeUser(from.Address.User)
}

func unescapeUser(u string) string {
	if s, err := url.PathUnescape(u); err == nil {
		return s
	}
	return u
}
