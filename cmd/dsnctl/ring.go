package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dsn-ims/dsn/node"
)

func ringCommand() *command {
	var all string
	return &command{
		name: "ring", summary: "the ring as this node sees it; -all ADDR,... checks several nodes agree",
		help: `Without -all: the ring as seen from the node at -admin: itself, its
predecessor, its successor list (in order) and its distinct fingers.

With -all ADDR,ADDR,...: asks every listed admin address for its status
and prints one row per node sorted by ring ID, then checks that the ring
is consistent: each node's first successor is the next node in ID order
and that node's predecessor is the one before it, and every node sees the
same representative set. List every node of the fleet, or the check
reports the ones missing. Exit 1 when inconsistent, 2 when a node cannot
be asked.`,
		flags: func(fs *flag.FlagSet, _ *globals) {
			fs.StringVar(&all, "all", all, "admin `addresses` (comma list) of every node: print them sorted by ring ID and check consistency")
		},
		run: func(ctx context.Context, e *env, _ []string) (result, error) {
			if all != "" {
				addrs := splitList(all)
				if len(addrs) == 0 {
					return nil, usageErrorf("-all: no address given")
				}
				return ringAll(ctx, addrs), nil
			}
			st, err := fetchStatus(ctx, e.g.admin)
			if err != nil {
				return nil, err
			}
			return ringFromStatus(st), nil
		},
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ringView is the ring as one node sees it.
type ringView struct {
	Self        node.PeerInfo     `json:"self"`
	Predecessor *node.PeerInfo    `json:"predecessor"`
	Successors  []node.PeerInfo   `json:"successors"`
	Fingers     []node.FingerInfo `json:"fingers"`
}

func ringFromStatus(st node.Status) ringView {
	v := ringView{
		Self:        node.PeerInfo{Name: st.Name, ID: st.ID, Cluster: st.Cluster, SIP: st.SIP},
		Predecessor: st.Predecessor,
		Successors:  append([]node.PeerInfo{}, st.Successors...),
		Fingers:     append([]node.FingerInfo{}, st.Fingers...),
	}
	return v
}

func (v ringView) writeTable(w io.Writer) error {
	t := newTable("ROLE", "NAME", "ID", "CLUSTER", "SIP", "FINGER START")
	row := func(role string, p node.PeerInfo, start string) {
		t.add(role, p.Name, p.ID, p.Cluster, p.SIP, start)
	}
	row("self", v.Self, "")
	if v.Predecessor != nil {
		row("predecessor", *v.Predecessor, "")
	} else {
		t.add("predecessor", "(none)", "", "", "", "")
	}
	for i, s := range v.Successors {
		row(fmt.Sprintf("successor %d", i+1), s, "")
	}
	for _, f := range v.Fingers {
		row(fmt.Sprintf("finger %d", f.Index), f.Node, f.Start)
	}
	return t.write(w)
}

// ringNode is one row of ring -all.
type ringNode struct {
	Admin           string   `json:"admin"`
	Name            string   `json:"name,omitempty"`
	ID              string   `json:"id,omitempty"`
	SIP             string   `json:"sip,omitempty"`
	Cluster         string   `json:"cluster,omitempty"`
	Predecessor     string   `json:"predecessor,omitempty"`
	Successor       string   `json:"successor,omitempty"`
	Representative  bool     `json:"representative"`
	Representatives []string `json:"representatives"`
	Owned           int      `json:"owned"`
	Replica         int      `json:"replica"`
	Error           string   `json:"error,omitempty"`

	predID, succID string
}

// ringAllResult is ring -all: the nodes sorted by ring ID and what is
// inconsistent among them.
type ringAllResult struct {
	Nodes       []ringNode `json:"nodes"`
	Consistent  bool       `json:"consistent"`
	Problems    []string   `json:"problems"`
	Unreachable int        `json:"unreachable"`
}

// ringAll asks every address concurrently (one request each) and checks
// the answers.
func ringAll(ctx context.Context, addrs []string) ringAllResult {
	sts := make([]node.Status, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sts[i], errs[i] = fetchStatus(ctx, a)
		}()
	}
	wg.Wait()
	return checkRing(addrs, sts, errs)
}

// checkRing builds the sorted table and the consistency verdict from
// the statuses (errs[i] non-nil: addrs[i] could not be asked).
func checkRing(addrs []string, sts []node.Status, errs []error) ringAllResult {
	res := ringAllResult{Problems: []string{}}
	var ok []ringNode
	for i, a := range addrs {
		if errs[i] != nil {
			res.Unreachable++
			res.Nodes = append(res.Nodes, ringNode{Admin: a, Error: errs[i].Error(), Representatives: []string{}})
			res.Problems = append(res.Problems, fmt.Sprintf("%s: cannot be asked: %v", a, errs[i]))
			continue
		}
		st := sts[i]
		n := ringNode{Admin: a, Name: st.Name, ID: st.ID, SIP: st.SIP, Cluster: st.Cluster,
			Representative: st.Representative, Representatives: []string{},
			Owned: st.Registrations.Owned, Replica: st.Registrations.Replica}
		if st.Predecessor != nil {
			n.Predecessor, n.predID = st.Predecessor.Name, st.Predecessor.ID
		}
		if len(st.Successors) > 0 {
			n.Successor, n.succID = st.Successors[0].Name, st.Successors[0].ID
		}
		for _, r := range st.Representatives {
			n.Representatives = append(n.Representatives, r.Name)
		}
		slices.Sort(n.Representatives)
		ok = append(ok, n)
	}
	slices.SortFunc(ok, func(a, b ringNode) int { return compareID(a.ID, b.ID) })
	res.Problems = append(res.Problems, ringProblems(ok)...)
	res.Nodes = append(ok, res.Nodes...)
	res.Consistent = len(res.Problems) == 0
	return res
}

// ringProblems checks successor/predecessor links around the sorted
// nodes and that they agree on the representatives.
func ringProblems(nodes []ringNode) []string {
	var out []string
	seen := map[string]string{}
	for _, n := range nodes {
		if prev, dup := seen[n.ID]; dup {
			out = append(out, fmt.Sprintf("%s and %s report the same ring ID %s (same -name twice?)", prev, n.Admin, n.ID))
		}
		seen[n.ID] = n.Admin
	}
	k := len(nodes)
	for i, n := range nodes {
		next, prev := nodes[(i+1)%k], nodes[(i+k-1)%k]
		if k == 1 {
			if n.succID != "" && n.succID != n.ID {
				out = append(out, fmt.Sprintf("%s is alone in the list but its successor is %s (list every node)", n.Name, n.Successor))
			}
			continue
		}
		switch {
		case n.succID == "":
			out = append(out, fmt.Sprintf("%s has no successor; want %s", n.Name, next.Name))
		case n.succID != next.ID:
			out = append(out, fmt.Sprintf("%s: successor is %s (%s), want %s (%s)%s", n.Name, n.Successor, n.succID, next.Name, next.ID, notListed(nodes, n.succID)))
		}
		switch {
		case n.predID == "":
			out = append(out, fmt.Sprintf("%s has no predecessor; want %s", n.Name, prev.Name))
		case n.predID != prev.ID:
			out = append(out, fmt.Sprintf("%s: predecessor is %s (%s), want %s (%s)%s", n.Name, n.Predecessor, n.predID, prev.Name, prev.ID, notListed(nodes, n.predID)))
		}
	}
	if k > 1 {
		want := strings.Join(nodes[0].Representatives, ",")
		for _, n := range nodes[1:] {
			if got := strings.Join(n.Representatives, ","); got != want {
				out = append(out, fmt.Sprintf("representative sets differ: %s sees [%s], %s sees [%s]", nodes[0].Name, want, n.Name, got))
			}
		}
	}
	return out
}

func notListed(nodes []ringNode, id string) string {
	for _, n := range nodes {
		if n.ID == id {
			return ""
		}
	}
	return " (not among the nodes asked: list every node with -all)"
}

// compareID orders hexadecimal ring IDs numerically.
func compareID(a, b string) int {
	x, errA := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 64)
	y, errB := strconv.ParseUint(strings.TrimPrefix(b, "0x"), 16, 64)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func (r ringAllResult) exitCode() int {
	switch {
	case r.Unreachable > 0:
		return exitUsage
	case !r.Consistent:
		return exitProblem
	}
	return exitOK
}

func (r ringAllResult) writeTable(w io.Writer) error {
	t := newTable("NAME", "ID", "ADMIN", "SIP", "PREDECESSOR", "SUCCESSOR", "REP", "OWNED", "REPLICA")
	for _, n := range r.Nodes {
		if n.Error != "" {
			t.add("?", "", n.Admin, "", "", "", "", "", "unreachable")
			continue
		}
		t.add(n.Name, n.ID, n.Admin, n.SIP, n.Predecessor, n.Successor, yesNo(n.Representative),
			strconv.Itoa(n.Owned), strconv.Itoa(n.Replica))
	}
	if err := t.write(w); err != nil {
		return err
	}
	if r.Consistent {
		_, err := fmt.Fprintf(w, "\nring consistent: %d nodes\n", len(r.Nodes))
		return err
	}
	fmt.Fprintf(w, "\nring INCONSISTENT (%d problem(s)):\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	return nil
}
