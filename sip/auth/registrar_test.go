package auth

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/sip/registrar"
)

// newRegistrar returns a registrar for testDomain on a MemStore that
// authenticates with d.
func newRegistrar(t testing.TB, d registrar.Authenticator, clock func() time.Time) *registrar.Registrar {
	t.Helper()
	cfg := registrar.DefaultConfig()
	cfg.Domains = []string{testDomain}
	reg, err := registrar.New(cfg, registrar.NewMemStore(clock), clock, zaptest.NewLogger(t), registrar.WithAuthenticator(d))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestThroughRegistrar drives registrar.Handle (synchronous, no sockets)
// with the Digest authenticator: the wire responses a phone sees.
func TestThroughRegistrar(t *testing.T) {
	e := newTestEnv(t, testDigestConfig())
	reg := newRegistrar(t, e.d, e.clock.Now)
	handle := func(req *sip.Request) *sip.Response {
		t.Helper()
		res := reg.Handle(ctx, req, phoneSrc)
		parsed, err := sip.ParseMessage([]byte(res.String()))
		if err != nil {
			t.Fatalf("response does not parse: %v\n%s", err, res)
		}
		return parsed.(*sip.Response)
	}
	challengeOf := func(res *sip.Response, alg string) chal {
		t.Helper()
		if res.StatusCode != 401 {
			t.Fatalf("got %d %s, want 401", res.StatusCode, res.Reason)
		}
		for _, h := range res.GetHeaders("WWW-Authenticate") {
			if c := parseChal(t, h.Value()); c["algorithm"] == alg {
				return c
			}
		}
		t.Fatalf("no %s challenge in\n%s", alg, res)
		return nil
	}

	res := handle(register(t, "alice", ""))
	if hs := res.GetHeaders("WWW-Authenticate"); len(hs) != 2 || !strings.Contains(hs[0].Value(), "algorithm=SHA-256") ||
		!strings.Contains(hs[1].Value(), "algorithm=MD5") {
		t.Fatalf("challenge headers: %v", hs)
	}
	c := challengeOf(res, "SHA-256")

	// Wrong password: 401 with a fresh challenge, nothing stored.
	res = handle(register(t, "alice", "", answer(c, "alice", "guess", "REGISTER", "sip:dsn.test", 1).String()))
	c2 := challengeOf(res, "SHA-256")
	if c2["nonce"] == c["nonce"] || c2["stale"] != "" {
		t.Fatalf("after a wrong password: %v", c2)
	}
	if _, err := reg.Lookup(ctx, "sip:alice@dsn.test"); !errors.Is(err, registrar.ErrNotFound) {
		t.Fatalf("binding stored after a failed authentication: %v", err)
	}

	// Right password: 200 and the binding.
	res = handle(register(t, "alice", "", answer(c, "alice", password("alice"), "REGISTER", "sip:dsn.test", 1).String()))
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s, want 200", res.StatusCode, res.Reason)
	}
	if bs, err := reg.Lookup(ctx, "sip:alice@dsn.test"); err != nil || len(bs) != 1 {
		t.Fatalf("lookup: %v %v", bs, err)
	}

	// alice's credentials for bob's AOR: authenticated, not authorised.
	req := register(t, "bob", "", answer(c, "alice", password("alice"), "REGISTER", "sip:dsn.test", 2).String())
	if res = handle(req); res.StatusCode != 403 {
		t.Fatalf("alice registering bob: %d %s, want 403", res.StatusCode, res.Reason)
	}

	// The first request again, byte for byte: refused.
	res = handle(register(t, "alice", "", answer(c, "alice", password("alice"), "REGISTER", "sip:dsn.test", 1).String()))
	if c3 := challengeOf(res, "SHA-256"); c3["stale"] != "true" {
		t.Fatalf("replay: %v", c3)
	}
}

// sipServer runs a sipgo server with reg on 127.0.0.1 UDP and returns
// its address.
func sipServer(t *testing.T, reg *registrar.Registrar) string {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("dsn-auth-test"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(reg.ServeSIP)
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0") // bound: ready before serving
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(conn) }()
	t.Cleanup(func() {
		_ = ua.Close()
		_ = conn.Close()
		if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("ServeUDP: %v", err)
		}
	})
	return conn.LocalAddr().String()
}

// TestSipgoClientDigest: a real sipgo UA registers over UDP on loopback
// through a sipgo server running the registrar with Digest, answering the
// challenge with sipgo's own DoDigestAuth.
func TestSipgoClientDigest(t *testing.T) {
	e := newTestEnvClock(t, testDigestConfig(), nil, time.Now)
	addr := sipServer(t, newRegistrar(t, e.d, time.Now))

	cliUA, err := sipgo.NewUA(sipgo.WithUserAgent("phone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cliUA.Close() })
	client, err := sipgo.NewClient(cliUA, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	newReq := func(user string) *sip.Request {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain})
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: testDomain}})
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: testDomain}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(8))
		req.AppendHeader(from)
		req.AppendHeader(sip.NewHeader("Contact", "<sip:"+user+"@127.0.0.1:5099>"))
		req.AppendHeader(sip.NewHeader("Expires", "600"))
		req.SetTransport("UDP")
		req.SetDestination(addr)
		return req
	}
	registerAs := func(user, pass string) (first, final *sip.Response) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := newReq(user)
		res, err := client.Do(ctx, req, sipgo.ClientRequestRegisterBuild)
		if err != nil {
			t.Fatalf("REGISTER: %v", err)
		}
		if res.StatusCode != 401 {
			return res, res
		}
		final, err = client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass})
		if err != nil {
			t.Fatalf("REGISTER with digest: %v", err)
		}
		return res, final
	}

	for _, tc := range []struct {
		name, user, pass, alg string
		want                  int
	}{
		{"SHA-256 (first challenge)", "alice", password("alice"), "SHA-256", 200},
		{"MD5 (only challenge for bob)", "bob", password("bob"), "MD5", 200},
		{"wrong password", "alice", "guess", "SHA-256", 401},
		{"unknown user", "mallory", "x", "SHA-256", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, final := registerAs(tc.user, tc.pass)
			if first.StatusCode != 401 {
				t.Fatalf("first answer %d, want 401", first.StatusCode)
			}
			if got := parseChal(t, first.GetHeader("WWW-Authenticate").Value())["algorithm"]; got != tc.alg {
				t.Fatalf("first challenge %s, want %s", got, tc.alg)
			}
			if final.StatusCode != tc.want {
				t.Fatalf("final %d %s, want %d", final.StatusCode, final.Reason, tc.want)
			}
		})
	}
	if s := e.d.Stats(); s.Accepted != 2 || s.Failed != 2 {
		t.Fatalf("stats %+v", s)
	}
}
