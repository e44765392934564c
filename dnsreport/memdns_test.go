package dnsreport

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// memDNS is an in-memory Exchanger answering queries from zone text, with
// simple wildcard support, for socket-free tests. Failures can be injected
// per query name.
type memDNS struct {
	mu      sync.Mutex
	rrs     []dns.RR
	fail    map[string]error // lower-case qname -> error to return
	queries []string         // "name TYPE" in order
}

var _ Exchanger = (*memDNS)(nil)

func newMemDNS(t *testing.T, zone string) *memDNS {
	t.Helper()
	m := &memDNS{fail: map[string]error{}}
	zp := dns.NewZoneParser(strings.NewReader(zone), ".", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		m.rrs = append(m.rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("memDNS zone: %v", err)
	}
	return m
}

func (m *memDNS) Exchange(_ context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	qn := strings.ToLower(q.Question[0].Name)
	qt := q.Question[0].Qtype
	m.queries = append(m.queries, qn+" "+dns.TypeToString[qt])
	if err, ok := m.fail[qn]; ok {
		return nil, err
	}
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	owner, exists := qn, m.exists(qn)
	if !exists {
		// Wildcard: replace labels from the left with "*".
		labels := dns.SplitDomainName(qn)
		for i := 1; i < len(labels); i++ {
			w := "*." + strings.Join(labels[i:], ".") + "."
			if m.exists(w) {
				owner, exists = w, true
				break
			}
			if m.exists(strings.Join(labels[i:], ".") + ".") {
				break // closest encloser exists without a wildcard
			}
		}
	}
	if !exists {
		r.Rcode = dns.RcodeNameError
		return r, nil
	}
	for _, rr := range m.rrs {
		h := rr.Header()
		if strings.EqualFold(h.Name, owner) && h.Rrtype == qt {
			cp := dns.Copy(rr)
			cp.Header().Name = q.Question[0].Name
			r.Answer = append(r.Answer, cp)
		}
	}
	return r, nil
}

// exists: name owns records or is an empty non-terminal.
func (m *memDNS) exists(name string) bool {
	for _, rr := range m.rrs {
		n := strings.ToLower(rr.Header().Name)
		if n == name || strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
