package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

const (
	// replyFudge is the TSIG fudge (seconds) put on replies.
	replyFudge = 300
	// ednsSize is the UDP payload size advertised in replies to EDNS requests.
	ednsSize = 1232
	// maxUDPReply caps the size of UDP replies whatever the client offers.
	maxUDPReply = 4096
	// maxMACLen is the longest MAC a reply can carry (HMAC-SHA512).
	maxMACLen = 64
)

// Request is one decoded DNS message with what the transport knows about it.
type Request struct {
	// Msg is the message as decoded from the wire by dns.Msg.Unpack (RFC
	// 2136 relies on the RDLENGTH the decoder keeps in each RR header).
	Msg *dns.Msg
	// TSIGStatus is the outcome of verifying Msg's TSIG record, as
	// dns.ResponseWriter.TsigStatus reports it when the dns.Server has the
	// handler's TsigProvider: nil means valid. It is ignored when Msg
	// carries no TSIG.
	TSIGStatus error
	// TCP is true when the message came over TCP (AXFR needs it; UDP replies
	// are truncated to fit).
	TCP bool
	// Remote is the sender, for logs; it may be nil.
	Remote net.Addr
}

// Handler is the synchronous core of the server: it turns a request into
// reply messages and never touches a socket. It is safe for concurrent use.
type Handler struct {
	store     *Store
	keys      *keyRing
	allowAXFR bool
	log       *zap.Logger
	now       func() time.Time
	stats     counters
}

// New validates cfg, loads its zones and keys and returns the handler. now
// supplies the time put on signed replies (nil: time.Now); logger may be nil.
func New(cfg Config, logger *zap.Logger, now func() time.Time) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	zones := make([]*Zone, 0, len(cfg.Zones))
	for i, zc := range cfg.Zones {
		z, err := loadZone(zc)
		if err != nil {
			return nil, fmt.Errorf("dnsserver: Zones[%d]: %w", i, err)
		}
		zones = append(zones, z)
	}
	store, err := NewStore(zones...)
	if err != nil {
		return nil, err
	}
	keys, err := newKeyRing(cfg.Keys)
	if err != nil {
		return nil, err
	}
	return &Handler{store: store, keys: keys, allowAXFR: cfg.AllowAXFR, log: logger, now: now}, nil
}

func loadZone(zc ZoneConfig) (*Zone, error) {
	if zc.Text != "" {
		return ParseZone(zc.Origin, strings.NewReader(zc.Text), "")
	}
	f, err := os.Open(zc.File)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseZone(zc.Origin, f, zc.File)
}

// Store returns the zone data the handler serves.
func (h *Handler) Store() *Store { return h.store }

// TsigProvider returns the provider a dns.Server (or client) must use so
// that TSIGStatus and reply signatures match the configured keys.
func (h *Handler) TsigProvider() dns.TsigProvider { return h.keys }

// Stats returns a snapshot of the counters.
func (h *Handler) Stats() Stats { return h.stats.snapshot() }

// Handle answers one request. It returns the reply messages in sending
// order: several AXFR envelopes, exactly one message otherwise, or none for
// a message that must not be answered (a response). A reply that ends in a
// TSIG record is to be signed by the transport with TsigProvider, chaining
// MACs over the envelopes (dns.ResponseWriter.WriteMsg does this).
func (h *Handler) Handle(req Request) []*dns.Msg {
	m := req.Msg
	if m == nil || m.Response {
		return nil
	}
	reply := new(dns.Msg)
	reply.SetReply(m)
	reply.Compress = true

	tsig, err := requestTSIG(m)
	if err != nil {
		return []*dns.Msg{h.fail(req, reply, dns.RcodeFormatError, err.Error())}
	}
	if tsig != nil && req.TSIGStatus != nil {
		h.stats.badTSIG.Add(1)
		if m.Opcode == dns.OpcodeUpdate {
			h.stats.updatesNotAuth.Add(1)
		}
		reply.Rcode = dns.RcodeNotAuth
		h.sign(reply, tsig, tsigError(req.TSIGStatus))
		h.log.Warn("dnsserver: bad TSIG", zap.String("key", tsig.Hdr.Name), zap.Error(req.TSIGStatus),
			zap.String("opcode", dns.OpcodeToString[m.Opcode]), zap.Stringer("remote", addr{req.Remote}))
		return []*dns.Msg{reply}
	}
	if opt := m.IsEdns0(); opt != nil {
		reply.SetEdns0(ednsSize, false)
		if opt.Version() != 0 {
			reply.Rcode = dns.RcodeBadVers
			return []*dns.Msg{h.finish(req, reply, tsig)}
		}
	}

	switch m.Opcode {
	case dns.OpcodeQuery:
		h.stats.queries.Add(1)
		if len(m.Question) == 1 && m.Question[0].Qtype == dns.TypeAXFR {
			return h.transfer(req, reply, tsig)
		}
		h.query(m, reply)
	case dns.OpcodeUpdate:
		h.update(req, reply, tsig)
	default:
		reply.Rcode = dns.RcodeNotImplemented
	}
	return []*dns.Msg{h.finish(req, reply, tsig)}
}

// query fills reply with the answer to a standard query.
func (h *Handler) query(m, reply *dns.Msg) {
	if len(m.Question) != 1 {
		reply.Rcode = dns.RcodeFormatError
		return
	}
	q := m.Question[0]
	switch {
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
		reply.Rcode = dns.RcodeRefused
		return
	case q.Qtype == dns.TypeIXFR, q.Qtype == dns.TypeMAILA, q.Qtype == dns.TypeMAILB:
		reply.Rcode = dns.RcodeNotImplemented
		return
	case isMetaType(q.Qtype) && q.Qtype != dns.TypeANY:
		reply.Rcode = dns.RcodeFormatError
		return
	}
	a := h.store.query(q.Name, q.Qtype)
	reply.Rcode = a.rcode
	reply.Authoritative = a.authoritative
	reply.Answer, reply.Ns = a.answer, a.ns
	reply.Extra = append(a.extra, reply.Extra...) // keep the OPT last
}

// update fills reply with the outcome of an RFC 2136 UPDATE.
func (h *Handler) update(req Request, reply *dns.Msg, tsig *dns.TSIG) {
	m := req.Msg
	var res updateResult
	switch {
	case tsig == nil:
		res = updateFailed(dns.RcodeNotAuth, "UPDATE is not TSIG-signed")
	case len(m.Question) != 1 || m.Question[0].Qtype != dns.TypeSOA:
		res = updateFailed(dns.RcodeFormatError, "zone section must hold one SOA-type zone")
	case m.Question[0].Qclass != dns.ClassINET:
		res = updateFailed(dns.RcodeRefused, "zone class %s is not served", dns.Class(m.Question[0].Qclass))
	default:
		res = h.store.update(m.Question[0].Name, m.Answer, m.Ns)
	}
	reply.Rcode = res.rcode
	fields := []zap.Field{zap.String("rcode", dns.RcodeToString[res.rcode]), zap.Stringer("remote", addr{req.Remote})}
	if len(m.Question) > 0 {
		fields = append(fields, zap.String("zone", m.Question[0].Name))
	}
	if tsig != nil {
		fields = append(fields, zap.String("key", tsig.Hdr.Name))
	}
	switch res.rcode {
	case dns.RcodeSuccess:
		h.stats.updatesOK.Add(1)
		h.log.Info("dnsserver: update applied", append(fields, zap.Int("changes", res.changes), zap.Uint32("serial", res.serial))...)
		return
	case dns.RcodeRefused:
		h.stats.updatesRefused.Add(1)
	case dns.RcodeNotAuth:
		h.stats.updatesNotAuth.Add(1)
	default:
		h.stats.updatesBad.Add(1)
	}
	h.log.Warn("dnsserver: update rejected", append(fields, zap.String("reason", res.reason))...)
}

// transfer answers AXFR: only over TCP, only when enabled, only to a signed
// request.
func (h *Handler) transfer(req Request, reply *dns.Msg, tsig *dns.TSIG) []*dns.Msg {
	q := req.Msg.Question[0]
	var reason string
	switch {
	case !h.allowAXFR:
		reason = "transfers are disabled"
	case !req.TCP:
		reason = "AXFR needs TCP"
	case tsig == nil:
		reason = "AXFR is not TSIG-signed"
	}
	if reason != "" {
		return []*dns.Msg{h.fail(req, reply, dns.RcodeRefused, reason)}
	}
	envelopes, rcode := h.store.transfer(q.Name)
	if rcode != dns.RcodeSuccess {
		return []*dns.Msg{h.fail(req, reply, rcode, "zone not served")}
	}
	h.stats.transfers.Add(1)
	h.log.Info("dnsserver: zone transfer", zap.String("zone", q.Name), zap.String("key", tsig.Hdr.Name),
		zap.Int("messages", len(envelopes)), zap.Stringer("remote", addr{req.Remote}))
	out := make([]*dns.Msg, len(envelopes))
	for i, env := range envelopes {
		m := new(dns.Msg)
		m.SetReply(req.Msg)
		m.Authoritative = true
		m.Compress = true
		m.Answer = env
		if req.Msg.IsEdns0() != nil && i == 0 {
			m.SetEdns0(ednsSize, false)
		}
		h.sign(m, tsig, dns.RcodeSuccess)
		out[i] = m
	}
	return out
}

// fail turns reply into an error reply carrying only the question.
func (h *Handler) fail(req Request, reply *dns.Msg, rcode int, reason string) *dns.Msg {
	reply.Rcode = rcode
	reply.Answer, reply.Ns, reply.Extra = nil, nil, nil
	h.log.Debug("dnsserver: request failed", zap.String("rcode", dns.RcodeToString[rcode]),
		zap.String("reason", reason), zap.Stringer("remote", addr{req.Remote}))
	if rcode == dns.RcodeFormatError {
		return reply // the request's TSIG, if any, is not trusted
	}
	tsig, _ := requestTSIG(req.Msg)
	if req.Msg.IsEdns0() != nil {
		reply.SetEdns0(ednsSize, false)
	}
	return h.finish(req, reply, tsig)
}

// finish signs reply when the request was signed and fits it into the
// client's UDP buffer.
func (h *Handler) finish(req Request, reply *dns.Msg, tsig *dns.TSIG) *dns.Msg {
	if tsig != nil {
		h.sign(reply, tsig, dns.RcodeSuccess)
	}
	if !req.TCP {
		fitUDP(reply, udpLimit(req.Msg))
	}
	return reply
}

// sign appends the TSIG stub that the transport completes: key and
// algorithm from the request, the handler's clock, and the TSIG error. A
// BADTIME reply carries the server time in Other Data (RFC 8945 section
// 5.2.3); BADKEY and BADSIG replies stay unsigned (the transport leaves the
// MAC empty for them).
func (h *Handler) sign(reply *dns.Msg, tsig *dns.TSIG, tsigErr uint16) {
	now := h.now().Unix()
	reply.SetTsig(tsig.Hdr.Name, tsig.Algorithm, replyFudge, now)
	t := reply.Extra[len(reply.Extra)-1].(*dns.TSIG)
	t.Error = tsigErr
	if tsigErr == dns.RcodeBadTime {
		t.OtherLen, t.OtherData = 6, fmt.Sprintf("%012x", now)
	}
}

// requestTSIG returns the request's TSIG record, or nil. A TSIG that is not
// the last record of the additional section, or one in another section, is
// malformed (RFC 8945 section 5.1).
func requestTSIG(m *dns.Msg) (*dns.TSIG, error) {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeTSIG {
				return nil, errors.New("TSIG outside the additional section")
			}
		}
	}
	for i, rr := range m.Extra {
		if t, ok := rr.(*dns.TSIG); ok || rr.Header().Rrtype == dns.TypeTSIG {
			if i != len(m.Extra)-1 || !ok {
				return nil, errors.New("TSIG is not the last record")
			}
			return t, nil
		}
	}
	return nil, nil
}

// udpLimit is the largest UDP reply the client accepts.
func udpLimit(m *dns.Msg) int {
	if opt := m.IsEdns0(); opt != nil {
		return min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPReply)
	}
	return dns.MinMsgSize
}

// fitUDP truncates reply to size bytes, setting TC. A signed reply that is
// too large keeps only its header, question, OPT and TSIG.
func fitUDP(reply *dns.Msg, size int) {
	if reply.IsTsig() == nil {
		reply.Truncate(size)
		return
	}
	if reply.Len()+maxMACLen <= size {
		return
	}
	keep := reply.Extra[:0:0]
	for _, rr := range reply.Extra {
		if t := rr.Header().Rrtype; t == dns.TypeOPT || t == dns.TypeTSIG {
			keep = append(keep, rr)
		}
	}
	reply.Answer, reply.Ns, reply.Extra = nil, nil, keep
	reply.Truncated = true
}

// addr prints a possibly nil net.Addr.
type addr struct{ a net.Addr }

func (a addr) String() string {
	if a.a == nil {
		return "-"
	}
	return a.a.String()
}
