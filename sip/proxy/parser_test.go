package proxy

import (
	"os"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestTrimSeparatorLWS(t *testing.T) {
	for _, c := range []struct {
		in, want string
		slash    bool
	}{
		{`<sip:a@b> ;  tag = 98asjd8`, `<sip:a@b>;tag=98asjd8`, false},
		{"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n", "sip:vivekg@chair-dnrc.example.com;tag=1918181833n", false},
		{`"J Rosenberg \\\""       <sip:jdrosen@example.com>   ;   tag = 98asjd8`, `"J Rosenberg \\\""       <sip:jdrosen@example.com>;tag=98asjd8`, false},
		{`"a ; b = c" <sip:x@y ; z>;tag=1`, `"a ; b = c" <sip:x@y ; z>;tag=1`, false},
		{`Bob <sip:bob@biloxi.com>;tag=a6c85cf`, `Bob <sip:bob@biloxi.com>;tag=a6c85cf`, false},
		{"SIP  /   2.0  /UDP     192.0.2.2;branch=390skdjuw", "SIP/2.0/UDP     192.0.2.2;branch=390skdjuw", true},
		{"SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8  ,  SIP  /    2.0   / UDP  192.168.255.111   ; branch=  z9hG4bK30239",
			"SIP/2.0/TCP     spindle.example.com;branch=z9hG4bK9ikj8,SIP/2.0/UDP  192.168.255.111;branch=z9hG4bK30239", true},
		{`"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =      newvalue ;   secondparam ; q = 0.33`,
			`"Quoted string \"\"" <sip:jdrosen@example.com>;newparam=newvalue;secondparam;q=0.33`, false},
		{`unterminated "quote ; x = y`, `unterminated "quote ; x = y`, false},
	} {
		if got := trimSeparatorLWS(c.in, c.slash); got != c.want {
			t.Errorf("trimSeparatorLWS(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestParserWsinv: RFC 4475 3.1.1.1, valid, with white space everywhere
// the grammar allows: the node's parser finds the From and To tags, the
// Vias and the Contact parameters.
func TestParserWsinv(t *testing.T) {
	data, err := os.ReadFile("testdata/torture/wsinv.dat")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sip.ParseMessage(data); err == nil && m.(*sip.Request).From().Params.Has("tag") {
		t.Log("sipgo's own parser now finds the From tag; NewParser may be unnecessary")
	}
	m, err := NewParser().ParseSIP(data)
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	if tag, _ := req.From().Params.Get("tag"); tag != "98asjd8" {
		t.Errorf("From tag %q", tag)
	}
	if tag, _ := req.To().Params.Get("tag"); tag != "1918181833n" {
		t.Errorf("To tag %q", tag)
	}
	vias := req.GetHeaders("Via")
	if len(vias) != 3 {
		t.Fatalf("%d Vias: %v", len(vias), vias)
	}
	if v := req.Via(); v.Host != "192.0.2.2" || v.Transport != "UDP" || v.Params.GetOr("branch", "") != "390skdjuw" {
		t.Errorf("top Via %+v", v)
	}
	if c := req.Contact(); c == nil || c.Params.GetOr("q", "") != "0.33" || !c.Params.Has("secondparam") || c.Address.Host != "example.com" {
		t.Errorf("Contact %+v", c)
	}
	if _, err := sip.ServerTxKeyMake(req); err != nil {
		t.Errorf("no transaction key: %v", err)
	}
	if rej := validate(req); rej != nil {
		t.Errorf("validate: %d %s", rej.code, rej.reason)
	}
}

// TestIntmethCSeqCase: RFC 4475 3.1.1.2: sipgo upper-cases the start
// line's method, not the CSeq's; the request is valid, and a forwarded
// copy keeps the method as sent.
func TestIntmethCSeqCase(t *testing.T) {
	data, err := os.ReadFile("testdata/torture/intmeth.dat")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewParser().ParseSIP(data)
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	if rej := validate(req); rej != nil {
		t.Fatalf("validate: %d %s", rej.code, rej.reason)
	}
	e := newRouteEnv(t, nil)
	work := e.p.baseCopy(req, callerSrc)
	if want := "!interesting-Method0123456789_*+`.%indeed'~"; string(work.Method) != want {
		t.Fatalf("forwarded method %q, want %q", work.Method, want)
	}
	d, _ := e.decide(t, req, callerSrc)
	if d.rej == nil || d.rej.code != 404 {
		t.Fatalf("unknown user: %+v", d.rej)
	}
}
