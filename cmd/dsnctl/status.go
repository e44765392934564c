package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dsn-ims/dsn/node"
)

func statusCommand() *command {
	return &command{
		name: "status", summary: "this node: name, ring ID, addresses, neighbours, representative role, registrations",
		help: `Shows GET /v1/status of the node at -admin: its name, ring ID, SIP and
cluster addresses, predecessor and successors, the number of distinct
fingers, whether it is a representative and the representative set it
sees, and the registrations it stores (owned and as replica).
-o json prints the node's status document unchanged.`,
		run: func(ctx context.Context, e *env, _ []string) (result, error) {
			st, err := fetchStatus(ctx, e.g.admin)
			if err != nil {
				return nil, err
			}
			return statusResult(st), nil
		},
	}
}

// statusResult renders node.Status; its JSON is the node's own.
type statusResult node.Status

func (s statusResult) writeTable(w io.Writer) error {
	pred := ""
	if s.Predecessor != nil {
		pred = peerString(*s.Predecessor)
	}
	var succ []string
	for _, p := range s.Successors {
		succ = append(succ, p.Name)
	}
	var reps []string
	for _, p := range s.Representatives {
		reps = append(reps, peerSIP(p))
	}
	return keyValues(w, [][2]string{
		{"name", s.Name},
		{"id", s.ID},
		{"domain", s.Domain},
		{"sip", s.SIP},
		{"cluster", s.Cluster},
		{"uptime", s.Uptime},
		{"members", fmt.Sprint(s.Members)},
		{"predecessor", pred},
		{"successors", strings.Join(succ, ", ")},
		{"fingers", fmt.Sprintf("%d distinct", len(s.Fingers))},
		{"representative", yesNo(s.Representative)},
		{"representatives", strings.Join(reps, ", ")},
		{"registrations", fmt.Sprintf("%d owned, %d replica", s.Registrations.Owned, s.Registrations.Replica)},
	})
}

// peerString is "name (id) cluster-address".
func peerString(p node.PeerInfo) string {
	return fmt.Sprintf("%s (%s) %s", p.Name, p.ID, p.Cluster)
}

// peerSIP is "name sip-address".
func peerSIP(p node.PeerInfo) string {
	if p.SIP == "" {
		return p.Name
	}
	return p.Name + " " + p.SIP
}

func repsCommand() *command {
	return &command{
		name: "reps", summary: "the representative set as this node sees it",
		help: `Lists the representatives (the nodes that publish the DSN domain in DNS)
from GET /v1/status of the node at -admin: name, ring ID, SIP address
(what DNS should hold) and cluster address. SELF marks the node asked.
Compare with DNS: dsnctl dns-check.`,
		run: func(ctx context.Context, e *env, _ []string) (result, error) {
			st, err := fetchStatus(ctx, e.g.admin)
			if err != nil {
				return nil, err
			}
			return repsFromStatus(st), nil
		},
	}
}

// repsResult is the representative set of one node's view.
type repsResult struct {
	Node            string          `json:"node"`
	Domain          string          `json:"domain"`
	Representative  bool            `json:"representative"`
	Representatives []node.PeerInfo `json:"representatives"`
}

func repsFromStatus(st node.Status) repsResult {
	r := repsResult{Node: st.Name, Domain: st.Domain, Representative: st.Representative,
		Representatives: append([]node.PeerInfo{}, st.Representatives...)}
	return r
}

func (r repsResult) writeTable(w io.Writer) error {
	if len(r.Representatives) == 0 {
		_, err := fmt.Fprintf(w, "node %s sees no representatives for %s\n", r.Node, r.Domain)
		return err
	}
	t := newTable("NAME", "ID", "SIP", "CLUSTER", "SELF")
	for _, p := range r.Representatives {
		self := ""
		if p.Name == r.Node {
			self = "*"
		}
		t.add(p.Name, p.ID, p.SIP, p.Cluster, self)
	}
	return t.write(w)
}

func readyCommand() *command {
	return &command{
		name: "ready", summary: "exit 0 when the node is ready (GET /readyz), 1 when not: for health checks",
		help: `Asks the node at -admin whether it is ready (GET /readyz: joined the
ring and, when it is a representative, registered in DNS) and prints the
node's answer. Exit 0 when ready, 1 when not ready, 2 when the admin API
cannot be reached. Meant for health checks of images without a shell or
curl (the container image has dsnctl next to dsn-node).`,
		run: func(ctx context.Context, e *env, _ []string) (result, error) {
			c, err := newAdminClient(e.g.admin)
			if err != nil {
				return nil, err
			}
			ok, why, err := c.ready(ctx)
			if err != nil {
				return nil, err
			}
			return readyResult{Ready: ok, Reason: why}, nil
		},
	}
}

// readyResult is the node's readiness.
type readyResult struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
}

func (r readyResult) writeTable(w io.Writer) error {
	state := "ready"
	if !r.Ready {
		state = "not ready"
	}
	if r.Reason != "" && r.Reason != state {
		state += ": " + r.Reason
	}
	_, err := fmt.Fprintln(w, state)
	return err
}

func (r readyResult) exitCode() int {
	if r.Ready {
		return exitOK
	}
	return exitProblem
}
