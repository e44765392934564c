package auth

import (
	"errors"
	"strings"
	"testing"
)

// TestDigestResponseRFCVectors checks the response computation against
// the published examples: RFC 7616 section 3.9.1 (SHA-256 and MD5) and
// RFC 2617 section 3.5 (MD5), plus a hand computation without qop.
func TestDigestResponseRFCVectors(t *testing.T) {
	const (
		user7616   = "Mufasa"
		realm7616  = "http-auth@example.org"
		pass7616   = "Circle of Life"
		nonce7616  = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
		cnonce7616 = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	)
	for _, tc := range []struct {
		name                                  string
		alg                                   Algorithm
		user, realm, pass, nonce, cnonce, qop string
		nc, method, uri, want                 string
	}{
		{"RFC 7616 SHA-256", SHA256, user7616, realm7616, pass7616, nonce7616, cnonce7616, "auth",
			"00000001", "GET", "/dir/index.html", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
		{"RFC 7616 MD5", MD5, user7616, realm7616, pass7616, nonce7616, cnonce7616, "auth",
			"00000001", "GET", "/dir/index.html", "8ca523f5e9506fed4657c9700eebdbec"},
		{"RFC 2617 MD5", MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "0a4f113b", "auth",
			"00000001", "GET", "/dir/index.html", "6629fae49393a05397450978507c4ef1"},
		{"SIP no qop MD5", MD5, "bob", "biloxi.com", "zanzibar", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "", "",
			"", "REGISTER", "sip:biloxi.com",
			hexHash("MD5", hexHash("MD5", "bob", "biloxi.com", "zanzibar"), "dcd98b7102dd2f0e8b11d0f600bfb0c093", hexHash("MD5", "REGISTER", "sip:biloxi.com"))},
		{"SIP qop SHA-256", SHA256, "bob", "biloxi.com", "zanzibar", "n", "c", "auth", "0000000a", "REGISTER", "sip:biloxi.com",
			hexHash("SHA-256", hexHash("SHA-256", "bob", "biloxi.com", "zanzibar"), "n", "0000000a", "c", "auth", hexHash("SHA-256", "REGISTER", "sip:biloxi.com"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ha1, err := HA1(tc.user, tc.realm, tc.pass, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			if got := digestResponse(tc.alg, ha1, tc.nonce, tc.nc, tc.cnonce, tc.qop, tc.method, tc.uri); got != tc.want {
				t.Fatalf("response = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHA1Line(t *testing.T) {
	md5Line, err := HA1Line("alice", "dsn.test", "s3cret", MD5)
	if err != nil {
		t.Fatal(err)
	}
	if want := "alice dsn.test " + hexHash("MD5", "alice", "dsn.test", "s3cret"); md5Line != want {
		t.Fatalf("MD5 line %q, want %q", md5Line, want)
	}
	shaLine, err := HA1Line("alice", "dsn.test", "s3cret", SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := "alice dsn.test sha256:" + hexHash("SHA-256", "alice", "dsn.test", "s3cret"); shaLine != want {
		t.Fatalf("SHA-256 line %q, want %q", shaLine, want)
	}
	es, err := ParseFile(strings.NewReader(md5Line+"\n"+shaLine+"\n"), "gen")
	if err != nil || len(es) != 2 || es[0].Algorithm != MD5 || es[1].Algorithm != SHA256 {
		t.Fatalf("generated lines do not parse back: %v %+v", err, es)
	}
	for _, bad := range []struct{ user, realm string }{{"", "r"}, {"a b", "r"}, {"a", ""}, {"a", "r@x"}, {`a"`, "r"}, {"a", "r\\"}, {"#a", "r"}} {
		if _, err := HA1Line(bad.user, bad.realm, "p", MD5); !errors.Is(err, ErrCredentials) {
			t.Errorf("HA1Line(%q, %q): err %v, want ErrCredentials", bad.user, bad.realm, err)
		}
	}
	if _, err := HA1Line("a", "r", "p", "SHA-512"); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("SHA-512: err %v, want ErrAlgorithm", err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	for in, want := range map[string]Algorithm{"MD5": MD5, "md5": MD5, "SHA-256": SHA256, "sha-256": SHA256} {
		if got, err := ParseAlgorithm(in); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "SHA256", "MD5-sess", "SHA-512-256", " MD5"} {
		if _, err := ParseAlgorithm(in); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("ParseAlgorithm(%q): err %v", in, err)
		}
	}
}

func TestParseAlgorithmList(t *testing.T) {
	for in, want := range map[string]string{
		"SHA-256,MD5": "SHA-256 MD5", " md5 , sha-256 ": "MD5 SHA-256", "MD5": "MD5",
		"": "error", "MD5,MD5": "error", "MD5,SHA-512": "error", " , ": "error",
	} {
		got, err := ParseAlgorithmList(in)
		s := "error"
		if err == nil {
			var names []string
			for _, a := range got {
				names = append(names, string(a))
			}
			s = strings.Join(names, " ")
		}
		if s != want {
			t.Errorf("ParseAlgorithmList(%q) = %q (%v), want %q", in, s, err, want)
		}
	}
}
