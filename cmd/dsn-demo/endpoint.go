package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// endpoint is a sipgo user agent on 127.0.0.1 with UDP and TCP on one port.
type endpoint struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	udp    net.PacketConn
	tcp    net.Listener
	Addr   string
	port   int
	served chan error
}

// newEndpoint binds UDP and TCP on one free loopback port and creates the
// user agent; install handlers on srv, then call serve.
func newEndpoint(name string) (*endpoint, error) {
	var udp net.PacketConn
	var tcp net.Listener
	for try := 0; try < 20 && tcp == nil; try++ {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		l, err := net.Listen("tcp4", c.LocalAddr().String())
		if err != nil {
			c.Close()
			continue
		}
		udp, tcp = c, l
	}
	if tcp == nil {
		return nil, errors.New("no loopback port free for both UDP and TCP")
	}
	addr := udp.LocalAddr().String()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {})))
	if err != nil {
		udp.Close()
		tcp.Close()
		return nil, err
	}
	srv, _ := sipgo.NewServer(ua)
	client, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(addr))
	return &endpoint{ua: ua, srv: srv, client: client, udp: udp, tcp: tcp, Addr: addr,
		port: udp.LocalAddr().(*net.UDPAddr).Port, served: make(chan error, 2)}, nil
}

// serve starts reading the sockets and returns once sipgo has put the UDP
// socket into its connection pool (requests sent from that address can
// only leave through it then). sipgo signals nothing, so this polls, for
// at most two seconds.
func (e *endpoint) serve() error {
	go func() { e.served <- e.srv.ServeUDP(e.udp) }()
	go func() { e.served <- e.srv.ServeTCP(e.tcp) }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if c, err := e.ua.TransportLayer().GetConnection("udp", e.Addr); err == nil {
			_, _ = c.TryClose()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("UDP listener %s not serving", e.Addr)
		}
		time.Sleep(time.Millisecond)
	}
}

// close stops the user agent and its sockets and waits for the serving
// goroutines.
func (e *endpoint) close() {
	_ = e.ua.Close()
	_ = e.udp.Close()
	_ = e.tcp.Close()
	for i := 0; i < 2; i++ {
		<-e.served
	}
}

// request builds an out-of-dialog request to ruri, sent over UDP to dest:
// From with fromTag, To without tag, Call-ID, CSeq, Max-Forwards 70 and
// Contact.
func request(method sip.RequestMethod, ruri, from sip.Uri, fromTag string, to sip.Uri, callID string, cseq uint32,
	contact *sip.ContactHeader, dest string) *sip.Request {
	req := sip.NewRequest(method, *ruri.Clone())
	fh := &sip.FromHeader{Address: from, Params: sip.NewParams()}
	fh.Params.Add("tag", fromTag)
	req.AppendHeader(fh)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(contact)
	req.SetTransport("UDP")
	req.SetDestination(dest)
	return req
}

// expect200 sends a non-INVITE request and waits, at most timeout, for a
// 200.
func (e *endpoint) expect200(ctx context.Context, req *sip.Request, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := e.client.Do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("%s answered %d %s", req.Method, res.StatusCode, res.Reason)
	}
	return nil
}
