package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	full := `Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`
	c, err := ParseAuthorization(full)
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{Username: "bob", Realm: "biloxi.com", Nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", URI: "sip:bob@biloxi.com",
		QOP: "auth", NC: "00000001", Cnonce: "0a4f113b", Response: "6629fae49393a05397450978507c4ef1", Opaque: "5ccc069c403ebaf9f0171e9517f40e41"}
	if *c != want {
		t.Fatalf("got %+v\nwant %+v", *c, want)
	}
	again, err := ParseAuthorization(c.String())
	if err != nil || *again != *c {
		t.Fatalf("round trip of %q: %+v %v", c.String(), again, err)
	}

	for _, tc := range []struct {
		name, in string
		check    func(*Credentials) bool
	}{
		{"case, tabs, quoted qop/nc/algorithm, unknown params, empty elements",
			"digest\tUserName = \"a\\\"b\" ,, REALM=\"r\",nonce=\"n\", uri=\"sip:r\", response=\"ABCDEF\", algorithm=\"SHA-256\", qop=\"auth\", nc=\"0000000A\", cnonce=\"c\", foo=bar, baz=\"q,x\",",
			func(c *Credentials) bool {
				return c.Username == `a"b` && c.Algorithm == "SHA-256" && c.QOP == "auth" && c.NC == "0000000A" && c.Response == "ABCDEF"
			}},
		{"no qop (RFC 2069)", `Digest username="a", realm="r", nonce="n", uri="sip:r", response="00"`,
			func(c *Credentials) bool { return c.QOP == "" && c.NC == "" }},
		{"userhash", `Digest username="a", realm="r", nonce="n", uri="sip:r", response="00", userhash=TRUE`,
			func(c *Credentials) bool { return c.Userhash }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseAuthorization(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("parsed %+v", *c)
			}
		})
	}

	base := `username="a", realm="r", nonce="n", uri="sip:r", response="00"`
	for _, tc := range []struct{ name, in, msg string }{
		{"other scheme", `Basic YWxhZGRpbjpvcGVuc2VzYW1l`, "not a Digest header"},
		{"no params", `Digest`, "no parameters"},
		{"no params but spaces", `Digest   ,  `, "no parameters"},
		{"missing username", `Digest realm="r", nonce="n", uri="sip:r", response="00"`, "no username"},
		{"missing response", `Digest username="a", realm="r", nonce="n", uri="sip:r"`, "no response"},
		{"empty nonce", `Digest username="a", realm="r", nonce="", uri="sip:r", response="00"`, "no nonce"},
		{"response not hex", `Digest username="a", realm="r", nonce="n", uri="sip:r", response="xyz"`, "not hex"},
		{"duplicate", "Digest " + base + `, Realm="s"`, "realm given twice"},
		{"qop without nc", "Digest " + base + `, qop=auth, cnonce="c"`, `nc "" is not 8 hex digits`},
		{"qop without cnonce", "Digest " + base + `, qop=auth, nc=00000001`, "qop without cnonce"},
		{"nc zero", "Digest " + base + `, qop=auth, nc=00000000, cnonce="c"`, "count from 00000001"},
		{"nc short", "Digest " + base + `, qop=auth, nc=1, cnonce="c"`, "not 8 hex digits"},
		{"nc without qop", "Digest " + base + `, nc=00000001`, "without qop"},
		{"unterminated quote", `Digest username="a`, "unterminated quoted string"},
		{"dangling escape", `Digest username="a\`, "unterminated escape"},
		{"control char", "Digest username=\"a\x01\"", "control character"},
		{"escaped control char", "Digest username=\"a\\\x7f\"", "control character"},
		{"no equals", `Digest username "a"`, "want '=' after username"},
		{"no value", `Digest username=, realm="r"`, "username has no value"},
		{"junk after value", `Digest username="a" realm="r"`, "want ',' after username"},
		{"bad name", `Digest ="a"`, "want a parameter name"},
		{"too long", "Digest " + base + `, x="` + strings.Repeat("a", MaxHeaderLen) + `"`, "longer than"},
		{"too many params", "Digest " + base + manyParams(maxParams), "more than 32 parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAuthorization(tc.in)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want ErrMalformed with %q", err, tc.msg)
			}
		})
	}
}

func TestChallengeValue(t *testing.T) {
	got := challengeValue("dsn.test", "abc", "0123", SHA256, true)
	want := `Digest realm="dsn.test", nonce="abc", opaque="0123", stale=true, algorithm=SHA-256, qop="auth"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	c := parseChal(t, got)
	if c["realm"] != "dsn.test" || c["stale"] != "true" || c["qop"] != "auth" || c["algorithm"] != "SHA-256" {
		t.Fatalf("parsed %v", c)
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ", x%d=1", i)
	}
	return b.String()
}
