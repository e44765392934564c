package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// phoneConfig shapes the phones.
type phoneConfig struct {
	Count int
	// NumberPrefix is the E.164 prefix of the phones' numbers; phone i
	// (from 1) is NumberPrefix followed by i in four digits.
	NumberPrefix string
	Domain       string
	// Keepalive is the period of a phone's OPTIONS ping to its edge node;
	// KeepaliveTimeout bounds one ping, and KeepaliveMisses pings in a row
	// without an answer make the phone register through another node.
	Keepalive        time.Duration
	KeepaliveTimeout time.Duration
	KeepaliveMisses  int
	// RegisterTimeout bounds one REGISTER transaction.
	RegisterTimeout time.Duration
}

// phone is a SIP phone: it registers its number, answers every INVITE with
// 180 then 200, ACK silently, BYE with 200, and pings its edge node.
type phone struct {
	*endpoint
	cfg    *phoneConfig
	Number string // +1555000NNNN
	AOR    string // sip:+1555000NNNN@domain
	callID string
	tag    string

	mu   sync.Mutex
	cseq uint32
	edge *member // the node its registration went through

	Invites atomic.Int64
	Byes    atomic.Int64
}

// reregistration records a phone registering through another node after
// its edge stopped answering keepalives.
type reregistration struct {
	Phone    *phone
	From, To string    // node names
	At       time.Time // when the new registration was confirmed
}

// phoneBank is the phones and what they share: the fleet's node list
// (what a phone is provisioned with; it does not know which nodes died)
// and the random source for picking a node.
type phoneBank struct {
	cfg    phoneConfig
	fleet  *fleet
	phones []*phone

	mu      sync.Mutex
	rng     *rand.Rand
	reregs  []reregistration
	stopped chan struct{}
	wg      sync.WaitGroup
}

func newPhoneBank(cfg phoneConfig, f *fleet, rng *rand.Rand) *phoneBank {
	return &phoneBank{cfg: cfg, fleet: f, rng: rng, stopped: make(chan struct{})}
}

// start creates and serves every phone.
func (b *phoneBank) start() error {
	for i := 1; i <= b.cfg.Count; i++ {
		number := fmt.Sprintf("%s%04d", b.cfg.NumberPrefix, i)
		ep, err := newEndpoint("phone-" + number)
		if err != nil {
			return err
		}
		p := &phone{endpoint: ep, cfg: &b.cfg, Number: number, AOR: "sip:" + number + "@" + b.cfg.Domain,
			callID: "reg-" + sip.GenerateTagN(12), tag: sip.GenerateTagN(8)}
		p.install()
		b.phones = append(b.phones, p)
		if err := ep.serve(); err != nil {
			return err
		}
	}
	return nil
}

// pick returns a random node other than those in skip.
func (b *phoneBank) pick(skip map[*member]bool) *member {
	b.mu.Lock()
	defer b.mu.Unlock()
	var cands []*member
	for _, m := range b.fleet.members {
		if !skip[m] {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[b.rng.IntN(len(cands))]
}

// registerAll registers every phone through a random node, several at a
// time.
func (b *phoneBank) registerAll(ctx context.Context) error {
	sem := make(chan struct{}, 10)
	errs := make(chan error, len(b.phones))
	var wg sync.WaitGroup
	for _, p := range b.phones {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			via := b.pick(nil)
			if err := p.register(ctx, via); err != nil {
				errs <- fmt.Errorf("%s through %s: %w", p.Number, via.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// startKeepalives starts every phone's keepalive loop; stop ends them.
func (b *phoneBank) startKeepalives() {
	for _, p := range b.phones {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.keepalive(p)
		}()
	}
}

// keepalive pings the phone's edge node with OPTIONS; after
// KeepaliveMisses unanswered pings in a row it registers through another
// node (any other: the phone does not know which ones died), trying the
// others in random order until one accepts.
func (b *phoneBank) keepalive(p *phone) {
	t := time.NewTicker(b.cfg.Keepalive)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-b.stopped:
			return
		case <-t.C:
		}
		edge := p.Edge()
		if err := p.ping(edge); err == nil {
			misses = 0
			continue
		}
		if misses++; misses < b.cfg.KeepaliveMisses {
			continue
		}
		skip := map[*member]bool{edge: true}
		for {
			via := b.pick(skip)
			if via == nil {
				break // every node refused: keep pinging the old edge
			}
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RegisterTimeout)
			err := p.register(ctx, via)
			cancel()
			if err == nil {
				b.mu.Lock()
				b.reregs = append(b.reregs, reregistration{Phone: p, From: edge.Name, To: via.Name, At: time.Now()})
				b.mu.Unlock()
				misses = 0
				break
			}
			skip[via] = true
		}
	}
}

// reregistrations returns the re-registrations so far.
func (b *phoneBank) reregistrations() []reregistration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]reregistration(nil), b.reregs...)
}

// stop ends the keepalives and closes every phone.
func (b *phoneBank) stop() {
	select {
	case <-b.stopped:
		return
	default:
		close(b.stopped)
	}
	b.wg.Wait()
	for _, p := range b.phones {
		p.close()
	}
}

// Edge returns the node the phone's registration went through.
func (p *phone) Edge() *member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.edge
}

func (p *phone) uri() sip.Uri { return sip.Uri{Scheme: "sip", User: p.Number, Host: p.cfg.Domain} }

func (p *phone) contact() *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.Number, Host: "127.0.0.1", Port: p.port}}
}

// register sends REGISTER for the phone's AOR through via (one Call-ID
// per phone, CSeq counting up) and waits for 200.
func (p *phone) register(ctx context.Context, via *member) error {
	p.mu.Lock()
	p.cseq++
	cseq := p.cseq
	p.mu.Unlock()
	req := request(sip.REGISTER, sip.Uri{Scheme: "sip", Host: p.cfg.Domain}, p.uri(), p.tag, p.uri(), p.callID, cseq, p.contact(), via.SIP)
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	if err := p.expect200(ctx, req, p.cfg.RegisterTimeout); err != nil {
		return err
	}
	p.mu.Lock()
	p.edge = via
	p.mu.Unlock()
	return nil
}

// ping sends OPTIONS to the edge node itself (which answers 200 as a
// keepalive, RFC 3261 11) and waits at most KeepaliveTimeout.
func (p *phone) ping(edge *member) error {
	host, port, _ := net.SplitHostPort(edge.SIP)
	pn, _ := strconv.Atoi(port)
	node := sip.Uri{Scheme: "sip", Host: host, Port: pn}
	req := request(sip.OPTIONS, node, p.uri(), sip.GenerateTagN(8), node, "ka-"+sip.GenerateTagN(12), 1, p.contact(), edge.SIP)
	return p.expect200(context.Background(), req, p.cfg.KeepaliveTimeout)
}

// install sets the phone's request handlers.
func (p *phone) install() {
	p.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.Invites.Add(1)
		tag := sip.GenerateTagN(10)
		for _, code := range []int{180, 200} {
			reason := "Ringing"
			if code == 200 {
				reason = "OK"
			}
			res := sip.NewResponseFromRequest(req, code, reason, nil)
			if to := res.To(); to != nil {
				to.Params.Add("tag", tag)
			}
			res.AppendHeader(p.contact())
			if err := tx.Respond(res); err != nil {
				return
			}
		}
	})
	p.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	ok := func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.Byes.Add(1)
		ok(req, tx)
	})
	p.srv.OnOptions(ok)
}
