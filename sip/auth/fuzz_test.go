package auth

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzParseAuthorization: no input panics or is accepted without the
// required fields; whatever parses renders (String) to a value that
// parses to the same Credentials. Seeds: f.Add below and
// testdata/fuzz/FuzzParseAuthorization.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		`Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
		`Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
		`Digest username="a", realm="r", nonce="n", uri="sip:r", response="00"`,
		"digest\tUSERNAME = \"a\\\"b\" ,, realm=\"r\",nonce=\"n\", uri=\"sip:r\", response=\"AB\", algorithm=\"md5\", qop=\"auth\", nc=\"0000000a\", cnonce=\"c\", x=y,",
		`Digest username="a", realm="r", nonce="n", uri="sip:r", response="00", userhash=true`,
		`Basic YWxhZGRpbjpvcGVuc2VzYW1l`,
		`Digest username="a`,
		`Digest`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseAuthorization(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.Username == "" || c.Realm == "" || c.Nonce == "" || c.URI == "" || c.Response == "" {
			t.Fatalf("accepted without a required field: %+v", *c)
		}
		if (c.QOP == "") != (c.NC == "") || (c.QOP == "") != (c.Cnonce == "") {
			t.Fatalf("qop/nc/cnonce inconsistent: %+v", *c)
		}
		out := c.String()
		again, err := ParseAuthorization(out)
		if err != nil {
			t.Fatalf("String %q of %q does not parse: %v", out, in, err)
		}
		if *again != *c {
			t.Fatalf("round trip changed %+v to %+v (via %q)", *c, *again, out)
		}
	})
}

// TestFuzzCorpusPresent keeps the checked-in corpus from disappearing
// silently.
func TestFuzzCorpusPresent(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseAuthorization"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus missing: %v", err)
	}
}

// FuzzAuthenticate: whatever Authorization value a REGISTER carries,
// Authenticate does not panic, answers 400 or 401 (never another code),
// and never accepts: no input can carry a right response for a nonce the
// fuzzer has not been given.
func FuzzAuthenticate(f *testing.F) {
	f.Add(`Digest username="alice", realm="dsn.test", nonce="AAAAAGfC3yAAAAAAAAAAAX3rGe8lJpPfd7h5Y8uV6iA", uri="sip:dsn.test", response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", algorithm=SHA-256, cnonce="0a4f113b", qop=auth, nc=00000001`)
	f.Add(`Digest username="alice", realm="dsn.test", nonce="n", uri="sip:dsn.test", response="00"`)
	f.Add(`Digest username="alice", realm="dsn.test", nonce="n", uri="\x00", response="00"`)
	f.Add(`Basic x`)
	store, err := NewStore(testEntries(f, testDomain))
	if err != nil {
		f.Fatal(err)
	}
	d, err := New(testDigestConfig(), store, nil, newFakeClock().Now, seededRand(1), nil) // f's logger is not for fuzz targets
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authz string) {
		req := register(t, "alice", "")
		req.AppendHeader(sip.NewHeader("Authorization", authz))
		id, rej := d.Authenticate(ctx, req, phoneSrc)
		if id != "" || rej == nil || (rej.Code != 400 && rej.Code != 401) {
			t.Fatalf("Authorization %q: identity %q, rejection %+v", authz, id, rej)
		}
	})
}
