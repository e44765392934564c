package dnsreport

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// Updater applies one Change to the DNS. It returns nil only when a server
// confirmed the update with a verified reply; otherwise an error for which
// UpdateErrors lists the per-server failures.
type Updater interface {
	Update(ctx context.Context, ch Change) error
}

var _ Updater = (*Client)(nil)

// Client is the RFC 2136 Updater over miekg/dns. Every UPDATE is signed
// with the TSIG key (unless the config explicitly allows Insecure and no
// key is given) and every reply must carry a verifying TSIG. Servers are
// tried in order until one accepts the update. Safe for concurrent use;
// Update blocks for at most len(Servers) * Timeout (or until ctx ends).
type Client struct {
	cfg ClientConfig
	ex  Exchanger
}

// NewClient makes a Client. key may be nil only with cfg.Insecure.
func NewClient(cfg ClientConfig, key *Key) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if key == nil && !cfg.Insecure {
		return nil, errors.New("dnsreport: refusing to send unsigned DNS UPDATEs: give a TSIG key (-tsig-key-file)")
	}
	if key != nil {
		if err := key.Validate(); err != nil {
			return nil, err
		}
	}
	servers := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		servers[i], _ = NormalizeServer(s) // checked by Validate
	}
	cfg.Servers = servers
	return &Client{cfg: cfg, ex: NewNetExchanger(cfg.Timeout, key)}, nil
}

// Exchanger returns the client's exchanger (same servers' key and
// timeout), for reading back what was published.
func (c *Client) Exchanger() Exchanger { return c.ex }

// Servers returns a copy of the configured server list.
func (c *Client) Servers() []string { return append([]string(nil), c.cfg.Servers...) }

// Update sends ch to the servers in order and returns on the first
// success. When all fail the error joins one *UpdateError per server.
func (c *Client) Update(ctx context.Context, ch Change) error {
	if err := ch.Validate(); err != nil {
		return err
	}
	var errs []error
	for _, server := range c.cfg.Servers {
		if err := ctx.Err(); err != nil {
			errs = append(errs, &UpdateError{Server: server, Zone: ch.Zone, Rcode: NoReply, Err: err})
			break
		}
		err := c.updateOne(ctx, ch, server)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

func (c *Client) updateOne(ctx context.Context, ch Change, server string) error {
	r, err := c.ex.Exchange(ctx, ch.Msg(), server)
	if err != nil {
		var ue *UpdateError
		if errors.As(err, &ue) && ue.Zone == "" {
			ue.Zone = ch.Zone
		}
		return err
	}
	if r.Rcode != dns.RcodeSuccess { // NXDOMAIN passes the exchanger; an UPDATE has no use for it
		return &UpdateError{Server: server, Zone: ch.Zone, Rcode: r.Rcode, Signed: r.IsTsig() != nil}
	}
	if r.Opcode != dns.OpcodeUpdate {
		return &UpdateError{Server: server, Zone: ch.Zone, Rcode: NoReply, Err: fmt.Errorf("%w: reply has opcode %s, want UPDATE", ErrBadReply, dns.OpcodeToString[r.Opcode])}
	}
	return nil
}
