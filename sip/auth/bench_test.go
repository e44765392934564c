package auth

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/dsn-ims/dsn/sip/registrar"
)

// BenchmarkAuthenticate: one accepted REGISTER per op, including the
// phone's side (computing the response, see BenchmarkPhoneAnswer) and
// parsing the Authorization header; nonce counts increase on one nonce.
func BenchmarkAuthenticate(b *testing.B) {
	for _, alg := range Algorithms() {
		b.Run(string(alg), func(b *testing.B) {
			cfg := testDigestConfig()
			e := newTestEnv(b, cfg)
			req := register(b, "alice", "")
			_, rej := e.d.Authenticate(ctx, req, phoneSrc)
			c := firstChallenge(b, rej, alg)
			b.ReportAllocs()
			nc := uint32(0)
			for b.Loop() {
				nc++
				req.RemoveHeader("Authorization")
				req.AppendHeader(sip.NewHeader("Authorization", answer(c, "alice", "alice-secret", "REGISTER", "sip:dsn.test", nc).String()))
				if id, rej := e.d.Authenticate(ctx, req, phoneSrc); id == "" {
					b.Fatalf("refused: %+v", rej)
				}
			}
		})
	}
}

// BenchmarkAuthenticateParallel: as BenchmarkAuthenticate (SHA-256) from
// all CPUs, each goroutine with its own nonce: contention on the replay
// tracker.
func BenchmarkAuthenticateParallel(b *testing.B) {
	e := newTestEnv(b, testDigestConfig())
	// One request and challenge per goroutine (RunParallel starts
	// GOMAXPROCS of them), made here: b must not fail in them.
	type phone struct {
		req *sip.Request
		c   chal
	}
	phones := make(chan phone, runtime.GOMAXPROCS(0))
	for range cap(phones) {
		req := register(b, "alice", "")
		_, rej := e.d.Authenticate(ctx, req, phoneSrc)
		phones <- phone{req, firstChallenge(b, rej, SHA256)}
	}
	var fail atomic.Bool
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := <-phones
		nc := uint32(0)
		for pb.Next() {
			nc++
			p.req.RemoveHeader("Authorization")
			p.req.AppendHeader(sip.NewHeader("Authorization", answer(p.c, "alice", "alice-secret", "REGISTER", "sip:dsn.test", nc).String()))
			if id, _ := e.d.Authenticate(ctx, p.req, phoneSrc); id == "" {
				fail.Store(true)
			}
		}
	})
	if fail.Load() {
		b.Fatal("a request was refused")
	}
}

// BenchmarkPhoneAnswer is the phone's share of BenchmarkAuthenticate.
func BenchmarkPhoneAnswer(b *testing.B) {
	c := chal{"realm": testDomain, "nonce": "AAAAAGfC3yAAAAAAAAAAAX3rGe8lJpPfd7h5Y8uV6iA", "algorithm": "SHA-256", "opaque": "0123456789abcdef"}
	b.ReportAllocs()
	for b.Loop() {
		_ = answer(c, "alice", "alice-secret", "REGISTER", "sip:dsn.test", 1).String()
	}
}

// BenchmarkChallenge: one 401 (nonce + two WWW-Authenticate headers).
func BenchmarkChallenge(b *testing.B) {
	e := newTestEnv(b, testDigestConfig())
	req := register(b, "alice", "")
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := e.d.Authenticate(ctx, req, phoneSrc); rej == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkParseAuthorization(b *testing.B) {
	const v = `Digest username="alice", realm="dsn.test", nonce="AAAAAGfC3yAAAAAAAAAAAX3rGe8lJpPfd7h5Y8uV6iA", uri="sip:dsn.test", response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", algorithm=SHA-256, cnonce="0a4f113b", opaque="0123456789abcdef", qop=auth, nc=00000001`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(v); err != nil {
			b.Fatal(err)
		}
	}
}

// firstChallenge returns the challenge of rej offering alg.
func firstChallenge(t testing.TB, rej *registrar.Rejection, alg Algorithm) chal {
	t.Helper()
	for _, c := range challenges(t, rej) {
		if c["algorithm"] == string(alg) {
			return c
		}
	}
	t.Fatalf("no %s challenge", alg)
	return nil
}
