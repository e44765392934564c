package dnsserver

import (
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func addNode9(t testing.TB) *dns.Msg {
	m := new(dns.Msg).SetUpdate(zoneName)
	m.Insert(mustRRs(t, "node9.dsn.example.com. 30 IN A 192.0.2.9"))
	return m
}

func TestUpdateTSIG(t *testing.T) {
	wrongSecret := keySHA256
	wrongSecret.Secret = secret("not the secret")
	tests := []struct {
		name     string
		s        signer
		rcode    int
		tsigErr  uint16
		noTSIG   bool // the reply carries no TSIG at all
		verified bool // the reply signature must verify on the client
	}{
		{name: "hmac-sha256", s: signedWith(keySHA256), rcode: dns.RcodeSuccess, verified: true},
		{name: "hmac-sha1", s: signedWith(keySHA1), rcode: dns.RcodeSuccess, verified: true},
		{name: "hmac-sha384", s: signedWith(keySHA384), rcode: dns.RcodeSuccess, verified: true},
		{name: "hmac-sha512", s: signedWith(keySHA512), rcode: dns.RcodeSuccess, verified: true},
		{name: "key name in other case", s: signer{key: &keySHA256, name: "UPDATE-Key."}, rcode: dns.RcodeSuccess, verified: true},
		{name: "unsigned", s: signer{}, rcode: dns.RcodeNotAuth, noTSIG: true},
		{name: "wrong secret", s: signedWith(wrongSecret), rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadSig},
		{name: "unknown key", s: signer{key: &keySHA256, name: "stranger."}, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
		{name: "right key, wrong algorithm", s: signer{key: &keySHA256, alg: dns.HmacSHA512}, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
		{name: "right key, unsupported algorithm", s: signer{key: &keySHA256, alg: dns.HmacSHA224}, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
		{name: "signed an hour ago", s: signer{key: &keySHA256, at: time.Now().Add(-time.Hour)}, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadTime},
		{name: "signed an hour ahead", s: signer{key: &keySHA256, at: time.Now().Add(time.Hour)}, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, testConfig())
			rt := exchange(t, h, addNode9(t), tc.s, false)
			r := rt.one(t)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(tc.rcode))
			}
			tsig := r.IsTsig()
			switch {
			case tc.noTSIG && tsig != nil:
				t.Errorf("reply to an unsigned request carries TSIG %v", tsig)
			case !tc.noTSIG && tsig == nil:
				t.Fatal("reply carries no TSIG")
			case tsig != nil && tsig.Error != tc.tsigErr:
				t.Errorf("TSIG error %s, want %s", rcodeName(int(tsig.Error)), rcodeName(int(tc.tsigErr)))
			}
			if tc.verified && rt.verr[0] != nil {
				t.Errorf("reply signature does not verify: %v", rt.verr[0])
			}
			if tc.tsigErr == dns.RcodeBadSig || tc.tsigErr == dns.RcodeBadKey {
				if tsig.MACSize != 0 {
					t.Errorf("%s reply is signed; RFC 8945 wants it unsigned", rcodeName(int(tc.tsigErr)))
				}
			}
			if tc.tsigErr == dns.RcodeBadTime {
				if tsig.MACSize == 0 || tsig.OtherLen != 6 {
					t.Errorf("BADTIME reply: MAC size %d, other len %d; want signed with the server time", tsig.MACSize, tsig.OtherLen)
				} else if st, _ := strconv.ParseUint(tsig.OtherData, 16, 64); st != tsig.TimeSigned {
					t.Errorf("BADTIME other data %s, want the server time %d", tsig.OtherData, tsig.TimeSigned)
				}
			}
			applied := len(h.Store().Lookup("node9.dsn.example.com.", dns.TypeA)) == 1
			if applied != (tc.rcode == dns.RcodeSuccess) {
				t.Errorf("record applied = %v with rcode %s", applied, rcodeName(r.Rcode))
			}
			st := h.Stats()
			if tc.rcode == dns.RcodeNotAuth && st.UpdatesNotAuth != 1 {
				t.Errorf("stats %+v: the NOTAUTH is not counted", st)
			}
			wantBad := uint64(0)
			if tc.tsigErr != 0 {
				wantBad = 1
			}
			if st.BadTSIG != wantBad {
				t.Errorf("stats %+v: BadTSIG = %d, want %d", st, st.BadTSIG, wantBad)
			}
		})
	}
}

func TestSignedQuery(t *testing.T) {
	h := newHandler(t, testConfig())
	rt := exchange(t, h, query("node1.dsn.example.com.", dns.TypeA), signedWith(keySHA384), false)
	r := rt.one(t)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("rcode %s answer %v", rcodeName(r.Rcode), r.Answer)
	}
	if r.IsTsig() == nil || rt.verr[0] != nil {
		t.Errorf("signed query: reply TSIG %v, verification %v; want a verified signature", r.IsTsig(), rt.verr[0])
	}

	// A query with a failing TSIG is not answered with data.
	bad := keySHA384
	bad.Secret = secret("wrong")
	r = exchange(t, h, query("node1.dsn.example.com.", dns.TypeA), signedWith(bad), false).one(t)
	if r.Rcode != dns.RcodeNotAuth || len(r.Answer) != 0 || r.IsTsig().Error != dns.RcodeBadSig {
		t.Errorf("badly signed query: rcode %s answer %v", rcodeName(r.Rcode), r.Answer)
	}
	if st := h.Stats(); st.BadTSIG != 1 || st.UpdatesNotAuth != 0 {
		t.Errorf("stats %+v, want one bad TSIG and no update counted", st)
	}
}

func TestMisplacedTSIG(t *testing.T) {
	h := newHandler(t, testConfig())
	m := addNode9(t)
	m.SetTsig(keySHA256.Name, dns.HmacSHA256, 300, time.Now().Unix())
	m.SetEdns0(1232, false) // the TSIG is no longer last
	r := exchange(t, h, m, signer{}, false).one(t)
	if r.Rcode != dns.RcodeFormatError || r.IsTsig() != nil {
		t.Errorf("TSIG not last: rcode %s, reply TSIG %v; want an unsigned FORMERR", rcodeName(r.Rcode), r.IsTsig())
	}
	m = addNode9(t)
	m.Ns = append(m.Ns, &dns.TSIG{Hdr: dns.RR_Header{Name: "update-key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY}, Algorithm: dns.HmacSHA256})
	if r := exchange(t, h, m, signer{}, false).one(t); r.Rcode != dns.RcodeFormatError {
		t.Errorf("TSIG in the update section: rcode %s, want FORMERR", rcodeName(r.Rcode))
	}
	if len(h.Store().Lookup("node9.dsn.example.com.", dns.TypeA)) != 0 {
		t.Error("a malformed UPDATE was applied")
	}
}

func TestKeyRingProvider(t *testing.T) {
	ring, err := newKeyRing([]Key{keySHA256})
	if err != nil {
		t.Fatal(err)
	}
	good := &dns.TSIG{Hdr: dns.RR_Header{Name: "UPDATE-KEY."}, Algorithm: "HMAC-SHA256."}
	mac, err := ring.Generate([]byte("msg"), good)
	if err != nil || len(mac) != 32 {
		t.Fatalf("Generate = %x, %v", mac, err)
	}
	for _, tc := range []struct {
		name string
		t    *dns.TSIG
		err  error
	}{
		{"unknown key", &dns.TSIG{Hdr: dns.RR_Header{Name: "other."}, Algorithm: dns.HmacSHA256}, dns.ErrSecret},
		{"wrong algorithm", &dns.TSIG{Hdr: dns.RR_Header{Name: "update-key."}, Algorithm: dns.HmacSHA1}, dns.ErrKeyAlg},
		{"bad MAC", &dns.TSIG{Hdr: dns.RR_Header{Name: "update-key."}, Algorithm: dns.HmacSHA256, MAC: "00"}, dns.ErrSig},
		{"MAC not hex", &dns.TSIG{Hdr: dns.RR_Header{Name: "update-key."}, Algorithm: dns.HmacSHA256, MAC: "zz"}, dns.ErrSig},
	} {
		if err := ring.Verify([]byte("msg"), tc.t); err != tc.err {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.err)
		}
	}
}
