package dnsreport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Exchanger sends one DNS message to one server ("host:port") and returns
// the reply. Implementations must not modify m.
//
// Contract: err is nil only for a reply with rcode NOERROR or NXDOMAIN
// that (when the exchanger holds a TSIG key) carries a TSIG record that
// verified. Every other outcome is an *UpdateError (the reply, when there
// was one, is returned alongside for diagnostics).
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error)
}

var _ Exchanger = (*NetExchanger)(nil)

// tsigFudge is the TSIG time window in seconds (RFC 8945 recommends 300).
const tsigFudge = 300

// NetExchanger is the miekg/dns Exchanger: UDP first, TCP when the reply
// is truncated or the request is too large for UDP. With a key every
// request is TSIG-signed and every NOERROR/NXDOMAIN reply must carry a TSIG
// that verifies. Safe for concurrent use.
type NetExchanger struct {
	timeout time.Duration
	key     *Key
}

// NewNetExchanger makes an exchanger with a per-attempt timeout; key nil
// sends unsigned messages and accepts unsigned replies.
func NewNetExchanger(timeout time.Duration, key *Key) *NetExchanger {
	var k *Key
	if key != nil {
		cp := *key
		k = &cp
	}
	return &NetExchanger{timeout: timeout, key: k}
}

// Exchange implements Exchanger.
func (x *NetExchanger) Exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	network := "udp"
	if m.Len()+200 > dns.MinMsgSize && m.IsEdns0() == nil { // 200: room for the TSIG
		network = "tcp"
	}
	r, err := x.exchangeOnce(ctx, m, server, network)
	if err == nil && r != nil && r.Truncated && network == "udp" {
		r, err = x.exchangeOnce(ctx, m, server, "tcp")
	}
	return x.check(m, server, r, err)
}

func (x *NetExchanger) exchangeOnce(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, error) {
	q := m.Copy() // miekg strips the TSIG stub from the message it signs
	c := &dns.Client{Net: network, Timeout: x.timeout, UDPSize: dns.DefaultMsgSize}
	if x.key != nil {
		q.SetTsig(x.key.Name, x.key.Algorithm, tsigFudge, time.Now().Unix())
		c.TsigSecret = map[string]string{x.key.Name: x.key.Secret}
	}
	r, _, err := c.ExchangeContext(ctx, q, server)
	return r, err
}

// isTSIGError tells the TSIG verification failures of miekg/dns apart from
// transport and parse errors.
func isTSIGError(err error) bool {
	for _, e := range []error{dns.ErrSig, dns.ErrTime, dns.ErrSecret, dns.ErrAuth, dns.ErrNoSig, dns.ErrKeyAlg} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (x *NetExchanger) check(m *dns.Msg, server string, r *dns.Msg, err error) (*dns.Msg, error) {
	ue := &UpdateError{Server: server, Rcode: NoReply}
	if len(m.Question) > 0 && m.Opcode == dns.OpcodeUpdate {
		ue.Zone = m.Question[0].Name
	}
	switch {
	case r == nil && err == nil:
		ue.Err = fmt.Errorf("%w: empty reply", ErrBadReply)
		return nil, ue
	case r == nil:
		ue.Err = err
		return nil, ue
	case err != nil && !isTSIGError(err):
		ue.Err = fmt.Errorf("%w: %v", ErrBadReply, err)
		return r, ue
	}
	tsig := r.IsTsig()
	if tsig != nil {
		ue.TSIGError = tsig.Error
	}
	ue.Signed = x.key != nil && tsig != nil && err == nil && tsig.Error == 0
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		ue.Rcode = r.Rcode
		return r, ue
	}
	if x.key == nil {
		return r, nil
	}
	switch {
	case err != nil:
		ue.Err = fmt.Errorf("%w: %v", ErrBadReplySignature, err)
	case tsig == nil:
		ue.Err = ErrUnsignedReply
	case tsig.Error != 0:
		ue.Err = fmt.Errorf("%w: TSIG error %s", ErrBadReplySignature, dns.RcodeToString[int(tsig.Error)])
	default:
		return r, nil
	}
	return r, ue
}
