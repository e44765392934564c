package overload

import (
	"errors"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		err      error
		resp     bool
		method   string
		toTag    string // "-" for none
		branch   string // "-" for none
		clen     int64
		bodyFrom int // Len, 0: do not check
	}{
		{name: "initial INVITE", in: invite("z9hG4bKa"), method: "INVITE", toTag: "-", branch: "z9hG4bKa", clen: 5},
		{name: "in-dialog BYE", in: inDialog("BYE", "z9hG4bKb"), method: "BYE", toTag: "b2", branch: "z9hG4bKb", clen: 0},
		{name: "response", in: msg("", "SIP/2.0 180 Ringing", "Via: SIP/2.0/UDP h;branch=z9hG4bKc", "To: <sip:b@h>;tag=x"),
			resp: true, toTag: "x", branch: "z9hG4bKc", clen: 0},
		{name: "status line without reason", in: msg("", "SIP/2.0 200", "Via: SIP/2.0/UDP h;branch=z9hG4bKc"), resp: true, toTag: "-", branch: "z9hG4bKc", clen: 0},
		{name: "compact forms, odd case and spaces", in: msg("",
			"OPTIONS sip:n SIP/2.0", "v : SIP/2.0/TCP h:5061 ; BRANCH = z9hG4bKd ; rport", "t:  sip:b@h ;Tag=  q7 ", "L: 0",
			"i:  c-7 ", "cseq:\t12  OPTIONS"),
			method: "OPTIONS", toTag: "q7", branch: "z9hG4bKd", clen: 0},
		{name: "first via-parm of the first Via", in: msg("",
			"MESSAGE sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bKtop, SIP/2.0/UDP b;branch=z9hG4bKlow", "Via: SIP/2.0/UDP c;branch=z9hG4bKthird"),
			method: "MESSAGE", toTag: "-", branch: "z9hG4bKtop", clen: 0},
		{name: "folded To with tag on the next line", in: msg("",
			"BYE sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bKe", "To: \"B\" <sip:b@h>", " ;tag=f1"),
			method: "BYE", toTag: "f1", branch: "z9hG4bKe", clen: 0},
		{name: "tag inside the URI is not the header's", in: msg("",
			"INVITE sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bKf", "To: <sip:b@h;tag=uri>"),
			method: "INVITE", toTag: "-", branch: "z9hG4bKf", clen: 0},
		{name: "addr-spec To: parameters are the header's", in: msg("",
			"INVITE sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bKg", "To: sip:b@h;tag=hdr"),
			method: "INVITE", toTag: "hdr", branch: "z9hG4bKg", clen: 0},
		{name: "empty tag is no tag", in: msg("", "INVITE sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bKh", "To: <sip:b@h>;tag="),
			method: "INVITE", toTag: "-", branch: "z9hG4bKh", clen: 0},
		{name: "no Via, no Content-Length", in: []byte("REGISTER sip:h SIP/2.0\r\nTo: <sip:a@h>\r\n\r\n"),
			method: "REGISTER", toTag: "-", branch: "-", clen: -1},
		{name: "other SIP version (the stack answers 505)", in: msg("", "OPTIONS sip:h SIP/7.0", "Via: SIP/7.0/UDP a;branch=z9hG4bKv"),
			method: "OPTIONS", toTag: "-", branch: "z9hG4bKv", clen: 0},
		{name: "unknown method", in: msg("", "FOO-BAR sip:h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bKi"),
			method: "FOO-BAR", toTag: "-", branch: "z9hG4bKi", clen: 0},
		{name: "last Content-Length wins (as in sipgo)", in: []byte("INVITE sip:h SIP/2.0\r\nl: 3\r\nContent-Length: 7\r\n\r\n"),
			method: "INVITE", toTag: "-", branch: "-", clen: 7},
		{name: "incomplete head", in: []byte("INVITE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a\r\n"), err: errIncomplete},
		{name: "incomplete start line", in: []byte("INVITE sip:h SI"), err: errIncomplete},
		{name: "not SIP", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), err: ErrMalformed},
		{name: "binary", in: []byte("\x00\x01\x02 \xff SIP/2.0\r\n\r\n"), err: ErrMalformed},
		{name: "bad status code", in: []byte("SIP/2.0 2x0 OK\r\n\r\n"), err: ErrMalformed},
		{name: "bad Content-Length", in: []byte("INVITE sip:h SIP/2.0\r\nContent-Length: -1\r\n\r\n"), err: ErrMalformed},
		{name: "Content-Length over 2^32-1", in: []byte("INVITE sip:h SIP/2.0\r\nContent-Length: 4294967296\r\n\r\n"), err: ErrMalformed},
		{name: "huge but valid Content-Length", in: []byte("INVITE sip:h SIP/2.0\r\nContent-Length: 4294967295\r\n\r\n"),
			method: "INVITE", toTag: "-", branch: "-", clen: 4294967295},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHead(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			str := func(b []byte) string {
				if b == nil {
					return "-"
				}
				return string(b)
			}
			if h.Response != tt.resp || h.Method != tt.method || str(h.ToTag) != tt.toTag || str(h.Branch) != tt.branch || h.ContentLength != tt.clen {
				t.Fatalf("got resp=%v method=%q toTag=%q branch=%q clen=%d, want %v %q %q %q %d",
					h.Response, h.Method, str(h.ToTag), str(h.Branch), h.ContentLength, tt.resp, tt.method, tt.toTag, tt.branch, tt.clen)
			}
			if tt.name == "compact forms, odd case and spaces" {
				if string(h.Via) != "SIP/2.0/TCP h:5061 ; BRANCH = z9hG4bKd ; rport" || string(h.CallID) != "c-7" || string(h.CSeq) != "12" {
					t.Fatalf("Via %q, Call-ID %q, CSeq %q", h.Via, h.CallID, h.CSeq)
				}
			}
			if h.Len <= 0 || h.Len > len(tt.in) || string(tt.in[h.Len-4:h.Len]) != "\r\n\r\n" {
				t.Fatalf("Len = %d: not the end of the head", h.Len)
			}
		})
	}
}

// TestParseHeadTorture runs every RFC 4475 torture message: ParseHead
// never panics, and where sipgo parses a request it agrees with sipgo on
// the method, the To tag and the top branch (what the gate decides on).
func TestParseHeadTorture(t *testing.T) {
	for name, data := range tortureMessages(t) {
		t.Run(name, func(t *testing.T) {
			h, err := ParseHead(data)
			m, perr := sip.ParseMessage(data)
			if perr != nil || err != nil {
				return // either refuses: nothing to compare
			}
			req, ok := m.(*sip.Request)
			if !ok {
				if !h.Response {
					t.Fatalf("sipgo sees a response, ParseHead a request %q", h.Method)
				}
				return
			}
			if h.Method != string(req.Method) {
				t.Errorf("method %q, sipgo %q", h.Method, req.Method)
			}
			sipgoTag := ""
			if to := req.To(); to != nil {
				sipgoTag, _ = to.Params.Get("tag")
			}
			if name == "wsinv" {
				// sipgo does not read a tag with LWS around '='; RFC 4475
				// 3.1.1.1 says this To has the tag 1918181833n.
				sipgoTag = "1918181833n"
			}
			if string(h.ToTag) != sipgoTag {
				t.Errorf("To tag %q, sipgo %q", h.ToTag, sipgoTag)
			}
			if via := req.Via(); via != nil {
				if b, _ := via.Params.Get("branch"); b != string(h.Branch) {
					t.Errorf("branch %q, sipgo %q", h.Branch, b)
				}
			}
			// The transaction identity: the same Call-ID and CSeq number
			// as sipgo reads them.
			if cid := req.CallID(); cid != nil && cid.Value() != string(h.CallID) {
				t.Errorf("Call-ID %q, sipgo %q", h.CallID, cid.Value())
			}
			if n, _ := strconv.ParseUint(string(h.CSeq), 10, 32); req.CSeq() != nil && uint32(n) != req.CSeq().SeqNo {
				t.Errorf("CSeq %q, sipgo %d", h.CSeq, req.CSeq().SeqNo)
			}
		})
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add(invite("z9hG4bKa"))
	f.Add(inDialog("BYE", "z9hG4bKb"))
	f.Add([]byte("SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h;rport;branch=x\r\nt: <sip:b@h>;tag=1\r\nl: 0\r\n\r\n"))
	f.Add([]byte("INVITE sip:h SIP/2.0\r\nTo: a\r\n b;tag=c\r\n\r\n"))
	for _, d := range tortureMessages(f) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHead(b)
		if err != nil {
			return
		}
		if h.Len < 4 || h.Len > len(b) || string(b[h.Len-4:h.Len]) != "\r\n\r\n" {
			t.Fatalf("Len %d does not end the head of %q", h.Len, b)
		}
		if h.Response == (h.Method != "") {
			t.Fatalf("response %v with method %q", h.Response, h.Method)
		}
		if h.ContentLength < -1 || h.ContentLength > 1<<32-1 {
			t.Fatalf("content length %d", h.ContentLength)
		}
		// Whatever the head, a response to it can be built.
		if !h.Response {
			resp, _ := appendResponse(nil, b, &h, 503, "Service Unavailable", 5, testSrc)
			if _, err := ParseHead(resp); err != nil {
				t.Fatalf("response to %q is not a SIP message: %v\n%s", b, err, resp)
			}
		}
	})
}
