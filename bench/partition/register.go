package partition

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"strings"
	"time"
)

// Phone sends REGISTER requests over UDP from a socket inside one node
// namespace, as a SIP phone on that network would.
type Phone struct {
	conn   *net.UDPConn
	domain string
	rng    *rand.Rand
	cseq   uint32
}

// NewPhone opens the phone's socket on ip inside its namespace.
func NewPhone(n *Net, ip, domain string, rng *rand.Rand) (*Phone, error) {
	c, err := n.ListenUDP(ip)
	if err != nil {
		return nil, err
	}
	return &Phone{conn: c, domain: domain, rng: rng}, nil
}

// Close closes the socket.
func (p *Phone) Close() error { return p.conn.Close() }

// Contact is the contact URI Register binds user to.
func (p *Phone) Contact(user string) string {
	return fmt.Sprintf("sip:%s@%s", user, p.conn.LocalAddr().String())
}

// Register binds sip:user@domain to this phone's contact through the
// registrar at target (host:port), retransmitting as RFC 3261 timer E does
// (500 ms, doubling) until a final response or timeout; it fails on any
// final response other than 200.
func (p *Phone) Register(target, user string, timeout time.Duration) error {
	to, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		return fmt.Errorf("partition: register %s: %w", user, err)
	}
	p.cseq++
	local := p.conn.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK-%016x", p.rng.Uint64())
	callID := fmt.Sprintf("%016x@partition", p.rng.Uint64())
	aor := fmt.Sprintf("sip:%s@%s", user, p.domain)
	msg := "REGISTER sip:" + p.domain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <" + aor + ">;tag=" + fmt.Sprintf("%08x", p.rng.Uint32()) + "\r\n" +
		"To: <" + aor + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		fmt.Sprintf("CSeq: %d REGISTER\r\n", p.cseq) +
		"Contact: <" + p.Contact(user) + ">\r\n" +
		"Expires: 3600\r\n" +
		"Content-Length: 0\r\n\r\n"
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65535)
	rto := 500 * time.Millisecond
	for time.Now().Before(deadline) {
		if _, err := p.conn.WriteToUDP([]byte(msg), to); err != nil {
			return fmt.Errorf("partition: register %s: %w", user, err)
		}
		next := time.Now().Add(rto)
		if next.After(deadline) {
			next = deadline
		}
		rto = min(2*rto, 4*time.Second)
		for {
			_ = p.conn.SetReadDeadline(next)
			k, _, err := p.conn.ReadFromUDP(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return fmt.Errorf("partition: register %s: %w", user, err)
			}
			code, ok := finalFor(string(buf[:k]), callID)
			if !ok {
				continue // provisional, or a stray answer to an earlier request
			}
			if code != 200 {
				return fmt.Errorf("partition: register %s via %s: answered %d", user, target, code)
			}
			return nil
		}
	}
	return fmt.Errorf("partition: register %s via %s: no final response within %s", user, target, timeout)
}

// finalFor returns the status code of a final response to the request
// with Call-ID callID.
func finalFor(resp, callID string) (int, bool) {
	var code int
	if _, err := fmt.Sscanf(resp, "SIP/2.0 %d", &code); err != nil || code < 200 {
		return 0, false
	}
	for _, line := range strings.Split(resp, "\r\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if n := strings.ToLower(strings.TrimSpace(name)); (n == "call-id" || n == "i") && strings.TrimSpace(val) == callID {
			return code, true
		}
	}
	return 0, false
}
