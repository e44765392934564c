package registrar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const contactA = "<sip:alice@192.168.1.20:5060>"

// challenger is an Authenticator that demands credentials and authorises
// only the identity "alice" for sip:alice@dsn.test.
type challenger struct{}

func (challenger) Authenticate(_ context.Context, req *sip.Request, _ Source) (string, *Rejection) {
	if h := req.GetHeader("Authorization"); h != nil {
		return strings.TrimPrefix(h.Value(), "Test "), nil
	}
	return "", &Rejection{Code: 401, Reason: "Unauthorized",
		Headers: []sip.Header{sip.NewHeader("WWW-Authenticate", `Digest realm="dsn.test", nonce="n1"`)}}
}

func (challenger) Authorize(_ context.Context, identity, aor string, _ Source) bool {
	return identity == "alice" && aor == "sip:alice@dsn.test"
}

// failingStore fails every call, or only writes.
type failingStore struct {
	BindingStore
	failGet bool
	err     error
}

func (s failingStore) Get(ctx context.Context, aor string) (BindingSet, uint64, error) {
	if s.failGet {
		return BindingSet{}, 0, s.err
	}
	return s.BindingStore.Get(ctx, aor)
}

func (s failingStore) Put(context.Context, string, BindingSet, uint64) error { return s.err }

// TestHandleRules has one case per rule of RFC 3261 section 10.3 (and RFC
// 3327 / 3581 where noted), each asserting status and headers.
func TestHandleRules(t *testing.T) {
	type tc struct {
		name    string
		cfg     func(*Config)
		wrap    func(BindingStore) BindingStore
		opts    []Option
		setup   []msg         // must each get 200
		advance time.Duration // clock step after setup
		req     msg
		code    int
		check   func(t *testing.T, e *testEnv, res *sip.Response)
	}
	wantContacts := func(want map[string]string) func(*testing.T, *testEnv, *sip.Response) {
		return func(t *testing.T, _ *testEnv, res *sip.Response) {
			t.Helper()
			got := contactsOf(res)
			if len(got) != len(want) {
				t.Fatalf("contacts %v, want %v", got, want)
			}
			for uri, params := range want {
				p, ok := got[uri]
				if !ok {
					t.Fatalf("contact %s missing from %v", uri, got)
				}
				if s := p.ToString(';'); s != params {
					t.Errorf("contact %s params %q, want %q", uri, s, params)
				}
			}
		}
	}
	wantHeader := func(name, value string) func(*testing.T, *testEnv, *sip.Response) {
		return func(t *testing.T, _ *testEnv, res *sip.Response) {
			t.Helper()
			if got := header(res, name); got != value {
				t.Errorf("%s = %q, want %q", name, got, value)
			}
		}
	}
	wantNoRecord := func(t *testing.T, e *testEnv, _ *sip.Response) {
		t.Helper()
		if _, err := e.reg.Lookup(context.Background(), "sip:alice@dsn.test"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup err = %v, want ErrNotFound (nothing written)", err)
		}
	}
	reg := func(m msg) []msg { return []msg{m} }
	base := msg{contacts: []string{contactA}}

	cases := []tc{
		// Section 10.3: a registrar accepts only REGISTER.
		{name: "method not REGISTER", req: msg{method: "OPTIONS"}, code: 405, check: wantHeader("Allow", "REGISTER")},
		// Section 8.1.1 / 10.2: mandatory headers.
		{name: "missing Call-ID", req: msg{contacts: []string{contactA}, omit: "Call-ID"}, code: 400},
		// Step 1: Request-URI domain not ours -> 404 (section 21.4.4).
		{name: "step1 foreign domain", req: msg{ruri: "sip:other.example", contacts: []string{contactA}}, code: 404, check: wantNoRecord},
		{name: "step1 domain case-insensitive", req: msg{ruri: "sip:DSN.Test", contacts: []string{contactA}}, code: 200},
		{name: "step1 domain as IP literal", req: msg{ruri: "sip:10.0.0.1", to: "<sip:alice@10.0.0.1>", contacts: []string{contactA}}, code: 200},
		// Step 2: Require with unknown option-tags -> 420 + Unsupported.
		{name: "step2 unsupported Require", req: msg{contacts: []string{contactA}, headers: []string{"Require: path, foo, Bar", "Supported: path"}},
			code: 420, check: wantHeader("Unsupported", "foo, bar")},
		{name: "step2 Require path supported", req: msg{contacts: []string{contactA}, headers: []string{"Require: path", "Supported: path"}}, code: 200},
		// Step 3: the Authenticator's rejection is sent as is.
		{name: "step3 challenge", opts: []Option{WithAuthenticator(challenger{})}, req: base, code: 401,
			check: wantHeader("WWW-Authenticate", `Digest realm="dsn.test", nonce="n1"`)},
		{name: "step3 authenticated", opts: []Option{WithAuthenticator(challenger{})},
			req: msg{contacts: []string{contactA}, headers: []string{"Authorization: Test alice"}}, code: 200},
		// Step 4: authenticated but not authorised for this AOR -> 403.
		{name: "step4 not authorised", opts: []Option{WithAuthenticator(challenger{})},
			req: msg{contacts: []string{contactA}, headers: []string{"Authorization: Test mallory"}}, code: 403, check: wantNoRecord},
		// Step 5: AOR not valid for the Request-URI's domain -> 404.
		{name: "step5 AOR in other domain", req: msg{to: "<sip:alice@other.example>", contacts: []string{contactA}}, code: 404},
		{name: "step5 AOR our other domain", req: msg{to: "<sip:alice@10.0.0.1>", contacts: []string{contactA}}, code: 404},
		{name: "step5 AOR tel URI", req: msg{to: "<tel:+15551234>", contacts: []string{contactA}}, code: 404},
		{name: "step5 AOR without user", req: msg{to: "<sip:dsn.test>", contacts: []string{contactA}}, code: 404},
		// Step 5: canonical form: scheme sip, params/port dropped, host
		// lower-cased, escapes undone.
		{name: "step5 canonical AOR", req: msg{to: `"Alice" <sips:%61lice@DSN.TEST:5061;user=phone>;tag=x`, contacts: []string{contactA}}, code: 200,
			check: func(t *testing.T, e *testEnv, _ *sip.Response) {
				if bs := e.lookup(t, "sip:alice@dsn.test"); len(bs) != 1 {
					t.Errorf("bindings under canonical AOR: %v", bs)
				}
			}},
		// Step 6: "*" with Expires: 0 removes every binding.
		{name: "step6 wildcard removes all", setup: reg(msg{contacts: []string{contactA, "<sip:alice@192.168.1.21>"}}),
			req: msg{callID: "call-b", contacts: []string{"*"}, headers: []string{"Expires: 0"}}, code: 200,
			check: func(t *testing.T, e *testEnv, res *sip.Response) {
				wantContacts(nil)(t, e, res)
				if _, err := e.reg.Lookup(context.Background(), "sip:alice@dsn.test"); !errors.Is(err, ErrNoBindings) {
					t.Errorf("Lookup after unregister: %v, want ErrNoBindings", err)
				}
			}},
		{name: "step6 wildcard without Expires", req: msg{contacts: []string{"*"}}, code: 400},
		{name: "step6 wildcard with nonzero Expires", req: msg{contacts: []string{"*"}, headers: []string{"Expires: 3600"}}, code: 400},
		{name: "step6 wildcard with another contact", req: msg{contacts: []string{"*", contactA}, headers: []string{"Expires: 0"}}, code: 400},
		{name: "step6 wildcard stale CSeq", setup: reg(msg{cseq: 5, contacts: []string{contactA}}),
			req: msg{cseq: 4, contacts: []string{"*"}, headers: []string{"Expires: 0"}}, code: 500},
		// Step 7: expiration from the expires parameter, else Expires,
		// else DefaultExpires; the parameter wins.
		{name: "step7 expires param", req: msg{contacts: []string{contactA + ";expires=120"}, headers: []string{"Expires: 300"}},
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=120"})},
		{name: "step7 Expires header", req: msg{contacts: []string{contactA}, headers: []string{"Expires: 300"}},
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=300"})},
		{name: "step7 default expires", req: base,
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=3600"})},
		{name: "step7 clamp to MaxExpires", req: msg{contacts: []string{contactA + ";expires=100000"}},
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=7200"})},
		{name: "step7 huge Expires clamps", req: msg{contacts: []string{contactA}, headers: []string{"Expires: 99999999999999"}},
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=7200"})},
		{name: "step7 malformed expires param is 3600", req: msg{contacts: []string{contactA + ";expires=soon"}},
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=3600"})},
		{name: "step7 malformed Expires header", req: msg{contacts: []string{contactA}, headers: []string{"Expires: -5"}}, code: 400},
		// Step 7: 0 < expires < MinExpires -> 423 + Min-Expires.
		{name: "step7 interval too brief", req: msg{contacts: []string{contactA + ";expires=30"}},
			code: 423, check: wantHeader("Min-Expires", "60")},
		{name: "step7 interval too brief via header", req: msg{contacts: []string{contactA}, headers: []string{"Expires: 59"}},
			code: 423, check: wantHeader("Min-Expires", "60")},
		{name: "step7 MinExpires exactly", req: msg{contacts: []string{contactA + ";expires=60"}}, code: 200},
		// Step 7: same Call-ID needs a higher CSeq, else the request fails
		// (500, see outOfOrder); a higher CSeq updates; the same CSeq is a
		// retransmission, answered with the binding as it is.
		{name: "step7 same Call-ID equal CSeq is a retransmission", setup: reg(msg{cseq: 7, contacts: []string{contactA}}),
			req: msg{cseq: 7, contacts: []string{contactA + ";expires=600"}}, code: 200,
			check: func(t *testing.T, e *testEnv, res *sip.Response) {
				wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=3600"})(t, e, res)
				if bs := e.lookup(t, "sip:alice@dsn.test"); bs[0].CSeq != 7 || bs[0].Remaining(e.clock.Now()) != 3600 {
					t.Errorf("binding changed by a retransmission: %+v", bs[0])
				}
			}},
		{name: "step7 equal CSeq keeps the matching binding, adds a new contact", setup: reg(msg{cseq: 7, contacts: []string{contactA}}),
			req: msg{cseq: 7, contacts: []string{contactA, "<sip:alice@192.168.1.99>"}}, code: 200,
			check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=3600", "sip:alice@192.168.1.99": "expires=3600"})},
		{name: "step7 same Call-ID lower CSeq", setup: reg(msg{cseq: 7, contacts: []string{contactA}}),
			req: msg{cseq: 6, contacts: []string{contactA + ";expires=600"}}, code: 500,
			check: func(t *testing.T, e *testEnv, _ *sip.Response) {
				if bs := e.lookup(t, "sip:alice@dsn.test"); bs[0].CSeq != 7 || bs[0].Remaining(e.clock.Now()) != 3600 {
					t.Errorf("binding changed by aborted request: %+v", bs[0])
				}
			}},
		{name: "step7 same Call-ID higher CSeq", setup: reg(msg{cseq: 7, contacts: []string{contactA}}),
			req: msg{cseq: 8, contacts: []string{contactA + ";expires=600"}}, code: 200,
			check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=600"})},
		// Step 7: a different Call-ID replaces the binding whatever its CSeq.
		{name: "step7 new Call-ID replaces", setup: reg(msg{cseq: 50, contacts: []string{contactA}}),
			req: msg{callID: "call-reboot", cseq: 1, contacts: []string{contactA + ";expires=900"}}, code: 200,
			check: func(t *testing.T, e *testEnv, res *sip.Response) {
				wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=900"})(t, e, res)
				if bs := e.lookup(t, "sip:alice@dsn.test"); bs[0].CallID != "call-reboot" || bs[0].CSeq != 1 {
					t.Errorf("binding not replaced: %+v", bs[0])
				}
			}},
		// Step 7: bindings match by RFC 3261 19.1.4 URI comparison.
		{name: "step7 URI comparison host case", setup: reg(msg{contacts: []string{"<sip:alice@PHONE.example;transport=udp>"}}),
			req: msg{cseq: 2, contacts: []string{"<sip:alice@phone.example;transport=UDP>;expires=120"}}, code: 200,
			check: wantContacts(map[string]string{"sip:alice@phone.example;transport=UDP": "expires=120"})},
		// q-values: 0..1 with up to 3 decimals; anything else 400.
		{name: "q echoed", req: msg{contacts: []string{contactA + ";q=0.50"}},
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=3600;q=0.5"})},
		{name: "q one", req: msg{contacts: []string{contactA + ";q=1.000"}},
			code: 200, check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=3600;q=1"})},
		{name: "q above one", req: msg{contacts: []string{contactA + ";q=1.5"}}, code: 400},
		{name: "q four decimals", req: msg{contacts: []string{contactA + ";q=0.1234"}}, code: 400},
		{name: "q not a number", req: msg{contacts: []string{contactA + ";q=high"}}, code: 400},
		// Several contacts in one request (two headers and a comma list).
		{name: "multiple contacts per request", req: msg{contacts: []string{contactA + ";q=0.1", "<sip:alice@192.168.1.21>, <sip:alice@192.168.1.22>;expires=100"}},
			code: 200, check: wantContacts(map[string]string{
				"sip:alice@192.168.1.20:5060": "expires=3600;q=0.1",
				"sip:alice@192.168.1.21":      "expires=3600",
				"sip:alice@192.168.1.22":      "expires=100",
			})},
		// Several contacts per AOR from different UAs; 200 lists ALL, each
		// with its remaining time.
		{name: "200 lists all contacts with remaining time", setup: reg(msg{callID: "ua-1", contacts: []string{contactA}}), advance: 100 * time.Second,
			req: msg{callID: "ua-2", contacts: []string{"<sip:alice@192.168.1.30>;expires=600"}}, code: 200,
			check: wantContacts(map[string]string{
				"sip:alice@192.168.1.20:5060": "expires=3500",
				"sip:alice@192.168.1.30":      "expires=600",
			})},
		// No Contact: fetch the current bindings, write nothing.
		{name: "fetch bindings", setup: reg(msg{contacts: []string{contactA + ";q=0.7"}}), advance: 10 * time.Second,
			req: msg{callID: "other", cseq: 1}, code: 200,
			check: wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": "expires=3590;q=0.7"})},
		{name: "fetch unknown AOR", req: msg{}, code: 200, check: func(t *testing.T, e *testEnv, res *sip.Response) {
			wantContacts(nil)(t, e, res)
			wantNoRecord(t, e, res)
		}},
		// Removal with expires=0 (parameter or header).
		{name: "remove with expires=0", setup: reg(msg{contacts: []string{contactA, "<sip:alice@192.168.1.21>"}}),
			req: msg{cseq: 2, contacts: []string{contactA + ";expires=0"}}, code: 200,
			check: wantContacts(map[string]string{"sip:alice@192.168.1.21": "expires=3600"})},
		{name: "remove with Expires: 0", setup: reg(msg{contacts: []string{contactA}}),
			req: msg{cseq: 2, contacts: []string{contactA}, headers: []string{"Expires: 0"}}, code: 200, check: wantContacts(nil)},
		{name: "remove unknown contact writes nothing", req: msg{contacts: []string{contactA + ";expires=0"}}, code: 200, check: wantNoRecord},
		// Expired bindings are filtered on read and dropped on the next write.
		{name: "expired binding filtered", setup: reg(msg{contacts: []string{contactA + ";expires=60"}}), advance: 61 * time.Second,
			req: msg{callID: "ua-2", contacts: []string{"<sip:alice@192.168.1.30>"}}, code: 200,
			check: func(t *testing.T, e *testEnv, res *sip.Response) {
				wantContacts(map[string]string{"sip:alice@192.168.1.30": "expires=3600"})(t, e, res)
				set, _, _ := e.store.Get(context.Background(), "sip:alice@dsn.test")
				if len(set.Bindings) != 1 {
					t.Errorf("stored %d bindings, want the expired one dropped", len(set.Bindings))
				}
			}},
		// Step 8: Date header from the injected clock.
		{name: "Date header", req: base, code: 200, check: wantHeader("Date", "Sat, 01 Mar 2025 12:00:00 GMT")},
		// Policy: MaxContactsPerAOR.
		{name: "too many contacts", cfg: func(c *Config) { c.MaxContactsPerAOR = 2 },
			setup: reg(msg{contacts: []string{contactA, "<sip:alice@192.168.1.21>"}}),
			req:   msg{callID: "ua-2", contacts: []string{"<sip:alice@192.168.1.30>"}}, code: 403},
		{name: "refresh at the contact limit", cfg: func(c *Config) { c.MaxContactsPerAOR = 2 },
			setup: reg(msg{contacts: []string{contactA, "<sip:alice@192.168.1.21>"}}),
			req:   msg{cseq: 2, contacts: []string{contactA}}, code: 200},
		// RFC 3327: Path stored and echoed when the UA supports it.
		{name: "path stored and echoed", req: msg{contacts: []string{contactA},
			headers: []string{"Supported: path", "Path: <sip:edge1.dsn.test;lr>", "Path: <sip:edge2.dsn.test;lr>"}},
			code: 200, check: func(t *testing.T, e *testEnv, res *sip.Response) {
				wantHeader("Path", "<sip:edge1.dsn.test;lr>, <sip:edge2.dsn.test;lr>")(t, e, res)
				bs := e.lookup(t, "sip:alice@dsn.test")
				if got := strings.Join(bs[0].Path, ","); got != "<sip:edge1.dsn.test;lr>,<sip:edge2.dsn.test;lr>" {
					t.Errorf("stored Path %q", got)
				}
			}},
		{name: "path without Supported", req: msg{contacts: []string{contactA}, headers: []string{"Path: <sip:edge1.dsn.test;lr>"}},
			code: 421, check: wantHeader("Require", "path")},
		{name: "path malformed", req: msg{contacts: []string{contactA}, headers: []string{"Supported: path", "Path: edge1"}}, code: 400},
		{name: "path self added on top", opts: []Option{WithPathSelf(func(aor string) (string, bool) {
			return "sip:10.0.0.1:5060;lr", aor == "sip:alice@dsn.test"
		})}, req: msg{contacts: []string{contactA}, headers: []string{"Supported: path", "Path: <sip:edge1.dsn.test;lr>"}},
			code: 200, check: func(t *testing.T, e *testEnv, res *sip.Response) {
				wantHeader("Path", "<sip:10.0.0.1:5060;lr>, <sip:edge1.dsn.test;lr>")(t, e, res)
				if bs := e.lookup(t, "sip:alice@dsn.test"); len(bs[0].Path) != 2 || bs[0].Path[0] != "<sip:10.0.0.1:5060;lr>" {
					t.Errorf("stored Path %q", bs[0].Path)
				}
			}},
		{name: "path self for UA without path support", opts: []Option{WithPathSelf(func(string) (string, bool) {
			return "<sip:10.0.0.1:5060;lr>", true
		})}, req: base, code: 200, check: func(t *testing.T, e *testEnv, res *sip.Response) {
			wantHeader("Path", "")(t, e, res)
			if bs := e.lookup(t, "sip:alice@dsn.test"); len(bs[0].Path) != 1 {
				t.Errorf("stored Path %q, want the node's own", bs[0].Path)
			}
		}},
		// RFC 3581: the real source is stored as Received.
		{name: "received source stored", req: base, code: 200, check: func(t *testing.T, e *testEnv, _ *sip.Response) {
			b := e.lookup(t, "sip:alice@dsn.test")[0]
			if b.Received != phoneSrc {
				t.Errorf("Received = %v, want %v", b.Received, phoneSrc)
			}
			if tgt, ok := b.NATTarget(); !ok || tgt != phoneSrc {
				t.Errorf("NATTarget = %v %v, want the source (private contact)", tgt, ok)
			}
		}},
		// RFC 5626 instance and reg-id stored and echoed.
		{name: "instance and reg-id", req: msg{contacts: []string{contactA + `;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1`}},
			code: 200, check: func(t *testing.T, e *testEnv, res *sip.Response) {
				wantContacts(map[string]string{"sip:alice@192.168.1.20:5060": `expires=3600;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1`})(t, e, res)
				if b := e.lookup(t, "sip:alice@dsn.test")[0]; b.Instance != "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>" || b.RegID != 1 {
					t.Errorf("instance %q reg-id %d", b.Instance, b.RegID)
				}
			}},
		{name: "bad reg-id", req: msg{contacts: []string{contactA + ";reg-id=x"}}, code: 400},
		// Storage failures: 500 with Retry-After, nothing half-done.
		{name: "store unreachable", wrap: func(s BindingStore) BindingStore {
			return failingStore{BindingStore: s, failGet: true, err: errors.New("dht: peer unreachable")}
		}, req: base, code: 500, check: wantHeader("Retry-After", "5")},
		{name: "conflict retries exhausted", cfg: func(c *Config) { c.MaxConflictRetries = 3 }, wrap: func(s BindingStore) BindingStore {
			return failingStore{BindingStore: s, err: fmt.Errorf("test: %w", ErrConflict)}
		}, req: base, code: 500, check: wantHeader("Retry-After", "5")},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			e := newEnv(t, cfg, c.wrap, c.opts...)
			for _, s := range c.setup {
				e.mustOK(t, s)
			}
			e.clock.Advance(c.advance)
			res := e.do(t, c.req)
			if res.StatusCode != c.code {
				t.Fatalf("got %d %q, want %d", res.StatusCode, res.Reason, c.code)
			}
			if res.GetHeader("Record-Route") != nil {
				t.Error("response carries Record-Route (10.3 forbids it)")
			}
			if c.check != nil {
				c.check(t, e, res)
			}
		})
	}
}

// TestHandleNoWriteOnFetch checks that a fetch leaves the stored version
// alone (expired bindings wait for the next write).
func TestHandleNoWriteOnFetch(t *testing.T) {
	e := newEnv(t, testConfig(), nil)
	e.mustOK(t, msg{contacts: []string{contactA + ";expires=60"}})
	_, v1, _ := e.store.Get(context.Background(), "sip:alice@dsn.test")
	e.clock.Advance(2 * time.Minute)
	res := e.mustOK(t, msg{callID: "fetch"})
	if n := len(contactsOf(res)); n != 0 {
		t.Fatalf("expired binding listed: %d contacts", n)
	}
	set, v2, _ := e.store.Get(context.Background(), "sip:alice@dsn.test")
	if v1 != v2 || len(set.Bindings) != 1 {
		t.Fatalf("fetch wrote: version %d -> %d, %d stored", v1, v2, len(set.Bindings))
	}
}

// TestHandleInProcessRequest: a request built in code (generic Contact
// and Expires headers, no URI scheme) is handled like a parsed one.
func TestHandleInProcessRequest(t *testing.T) {
	e := newEnv(t, testConfig(), nil)
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "dsn.test"})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "bob", Host: "dsn.test"}})
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: "bob", Host: "dsn.test"}})
	callID := sip.CallIDHeader("in-process")
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.REGISTER})
	req.AppendHeader(sip.NewHeader("Contact", "<sip:bob@192.0.2.1>;q=0.3, <sip:bob@192.0.2.2>"))
	exp := sip.ExpiresHeader(120)
	req.AppendHeader(&exp)
	res := e.reg.Handle(context.Background(), req, Source{})
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	bs := e.lookup(t, "sip:bob@dsn.test")
	if len(bs) != 2 || bs[0].Contact != "sip:bob@192.0.2.2" || bs[1].Q != 300 || bs[0].Remaining(e.clock.Now()) != 120 {
		t.Fatalf("bindings %+v", bs)
	}
	if !bs[0].Received.IsZero() {
		t.Fatalf("Received %v from an unknown source", bs[0].Received)
	}
}
