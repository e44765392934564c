package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dsn-ims/dsn/node"
)

func lookupCommand() *command {
	return &command{
		name: "lookup", args: "AOR", minArgs: 1, maxArgs: 1,
		summary: "home node and replica nodes of an AOR, and the hops the lookup took",
		help: `Asks the node at -admin to look AOR up on the ring (GET /v1/lookup):
prints the AOR's canonical form, its ring key, the home node (where its
registration lives), the replica nodes and how many hops the lookup took.
AOR is a SIP URI, e.g. sip:alice@dsn.example.com.`,
		run: func(ctx context.Context, e *env, args []string) (result, error) {
			c, aor, err := aorClient(e, args[0])
			if err != nil {
				return nil, err
			}
			lr, err := c.lookup(ctx, aor)
			if err != nil {
				return nil, err
			}
			if lr.Replicas == nil {
				lr.Replicas = []node.PeerInfo{}
			}
			return lookupResult(lr), nil
		},
	}
}

// aorClient checks the AOR argument and makes the admin client.
func aorClient(e *env, arg string) (*adminClient, string, error) {
	aor, err := checkAOR(arg)
	if err != nil {
		return nil, "", err
	}
	c, err := newAdminClient(e.g.admin)
	return c, aor, err
}

// checkAOR catches the obvious mistakes before asking the node (which
// canonicalises and checks properly).
func checkAOR(s string) (string, error) {
	s = strings.TrimSpace(s)
	l := strings.ToLower(s)
	if !(strings.HasPrefix(l, "sip:") || strings.HasPrefix(l, "sips:")) || !strings.Contains(s, "@") {
		return "", usageErrorf("AOR %q: want a SIP URI like sip:alice@dsn.example.com", s)
	}
	return s, nil
}

type lookupResult node.LookupResult

func (r lookupResult) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "aor   %s\nkey   %s\nhops  %d\n\n", r.AOR, r.KeyID, r.Hops)
	t := newTable("ROLE", "NAME", "ID", "CLUSTER", "SIP")
	t.add("home", r.Home.Name, r.Home.ID, r.Home.Cluster, r.Home.SIP)
	for i, p := range r.Replicas {
		t.add("replica "+strconv.Itoa(i+1), p.Name, p.ID, p.Cluster, p.SIP)
	}
	return t.write(w)
}

func bindingsCommand() *command {
	return &command{
		name: "bindings", args: "AOR", minArgs: 1, maxArgs: 1,
		summary: "the contacts registered for an AOR, with remaining expiry",
		help: `Shows the live contacts registered for AOR (GET /v1/bindings): contact
URI, seconds until it expires, q-value, the address the REGISTER came
from, the Path (nodes a call goes through to reach it), Call-ID and CSeq,
and when it was registered. Exit 1 when the AOR has no registration.`,
		run: func(ctx context.Context, e *env, args []string) (result, error) {
			c, aor, err := aorClient(e, args[0])
			if err != nil {
				return nil, err
			}
			br, err := c.bindings(ctx, aor)
			if err != nil {
				return nil, err
			}
			return bindingsResult(br), nil
		},
	}
}

type bindingsResult bindingsReply

func (r bindingsResult) writeTable(w io.Writer) error {
	if len(r.Bindings) == 0 {
		_, err := fmt.Fprintf(w, "%s has no live binding (it was registered; the last contact expired or was removed)\n", r.AOR)
		return err
	}
	fmt.Fprintf(w, "aor  %s\n\n", r.AOR)
	t := newTable("CONTACT", "EXPIRES", "Q", "RECEIVED", "PATH", "CALL-ID", "CSEQ", "REGISTERED")
	for _, b := range r.Bindings {
		t.add(b.Contact, strconv.Itoa(b.Expires)+"s", b.Q, b.Received, strings.Join(b.Path, ","),
			b.CallID, strconv.FormatUint(uint64(b.CSeq), 10), b.Registered)
	}
	return t.write(w)
}
