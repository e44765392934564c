package churn

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
	"github.com/dsn-ims/dsn/dht"
)

// FinalCheck is the end-of-run check of every AOR: /v1/lookup at a live
// node names a live home node and Replicas-1 replica nodes, the same the
// ring order of the live nodes gives; and asked one by one for their own
// copy (/v1/bindings?aor=...&local=1), exactly those Replicas nodes hold
// the AOR with the phone's binding.
type FinalCheck struct {
	AORs int
	// OK counts AORs that passed everything.
	OK int
	// Lost: no live node holds a copy with the binding (a lost
	// registration). Under: fewer copies than Replicas; Over: more;
	// Misplaced: a copy on a node that is not the home or a replica node.
	Lost, Under, Over, Misplaced int
	// HomeNotLive: /v1/lookup named a home or replica node that is not
	// live (or failed). LookupMismatch: it named other nodes than the
	// ring order of the live nodes.
	HomeNotLive, LookupMismatch int
	// Copies counts AORs by the number of live nodes holding them.
	Copies map[int]int
	// Examples are the first problems found.
	Examples []string
	// Requests is the number of admin API requests made; Took the time.
	Requests int
	Took     time.Duration
}

// Passed reports whether every AOR passed.
func (c FinalCheck) Passed() bool { return c.AORs > 0 && c.OK == c.AORs }

type aorResult struct {
	ok      bool
	copies  int
	lost    bool
	under   bool
	over    bool
	misplac bool
	notLive bool
	mismat  bool
	problem string
}

// finalCheck checks every AOR against the live nodes.
func (r *runner) finalCheck() FinalCheck {
	start := time.Now()
	live := r.live()
	byName := map[string]*fleet.Proc{}
	var ids []dht.ID
	idName := map[dht.ID]string{}
	for _, p := range live {
		byName[p.Name] = p
		id := dht.NodeID(p.Name)
		ids = append(ids, id)
		idName[id] = p.Name
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	expected := func(aor string) []string {
		key := dht.HashKey(aor)
		i := sort.Search(len(ids), func(i int) bool { return ids[i] >= key })
		var out []string
		for k := 0; k < r.cfg.Replicas && k < len(ids); k++ {
			out = append(out, idName[ids[(i+k)%len(ids)]])
		}
		return out
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	get := func(p *fleet.Proc, path string, v any) (int, error) {
		res, err := client.Get("http://" + p.Admin + path)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		return res.StatusCode, json.NewDecoder(res.Body).Decode(v)
	}

	checkOne := func(i int) aorResult {
		aor := r.aor(i)
		q := url.QueryEscape(aor)
		var res aorResult
		want := expected(aor)
		var lk struct {
			Home     struct{ Name string }   `json:"home"`
			Replicas []struct{ Name string } `json:"replicas"`
		}
		via := live[i%len(live)]
		code, err := get(via, "/v1/lookup?aor="+q, &lk)
		named := []string{lk.Home.Name}
		for _, rp := range lk.Replicas {
			named = append(named, rp.Name)
		}
		switch {
		case err != nil || code != http.StatusOK:
			res.notLive = true
			res.problem = fmt.Sprintf("%s: lookup at %s: %d %v", aor, via.Name, code, err)
		case strings.Join(named, ",") != strings.Join(want, ","):
			res.mismat = true
			res.problem = fmt.Sprintf("%s: lookup at %s names %v, the live ring %v", aor, via.Name, named, want)
		}
		for _, n := range named {
			if byName[n] == nil && !res.notLive {
				res.notLive = true
				res.problem = fmt.Sprintf("%s: lookup at %s names %v: %s is not live", aor, via.Name, named, n)
			}
		}
		var holders []string
		for _, p := range live {
			var b struct {
				Bindings []struct {
					Contact string `json:"contact"`
				} `json:"bindings"`
			}
			code, err := get(p, "/v1/bindings?local=1&aor="+q, &b)
			if err != nil || (code != http.StatusOK && code != http.StatusNotFound) {
				res.problem = fmt.Sprintf("%s: local copy at %s: %d %v", aor, p.Name, code, err)
				continue
			}
			if code == http.StatusOK && len(b.Bindings) == 1 && b.Bindings[0].Contact == r.contact(i) {
				holders = append(holders, p.Name)
			}
		}
		sort.Strings(holders)
		res.copies = len(holders)
		sortedWant := append([]string(nil), want...)
		sort.Strings(sortedWant)
		switch {
		case len(holders) == 0:
			res.lost = true
		case len(holders) < r.cfg.Replicas:
			res.under = true
		case len(holders) > r.cfg.Replicas:
			res.over = true
		}
		for _, h := range holders {
			if !contains(want, h) {
				res.misplac = true
			}
		}
		if res.problem == "" && (res.lost || res.under || res.over || res.misplac) {
			res.problem = fmt.Sprintf("%s: held by %v, want %v", aor, holders, sortedWant)
		}
		res.ok = res.problem == "" && !res.lost && !res.under && !res.over && !res.misplac && !res.notLive && !res.mismat
		return res
	}

	results := make([]aorResult, r.cfg.AORs)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = checkOne(i)
			}
		}()
	}
	for i := range results {
		next <- i
	}
	close(next)
	wg.Wait()

	fc := FinalCheck{AORs: r.cfg.AORs, Copies: map[int]int{}, Requests: r.cfg.AORs * (1 + len(live))}
	for _, res := range results {
		fc.Copies[res.copies]++
		if res.ok {
			fc.OK++
		}
		for _, c := range []struct {
			b bool
			n *int
		}{{res.lost, &fc.Lost}, {res.under, &fc.Under}, {res.over, &fc.Over}, {res.misplac, &fc.Misplaced},
			{res.notLive, &fc.HomeNotLive}, {res.mismat, &fc.LookupMismatch}} {
			if c.b {
				*c.n++
			}
		}
		if res.problem != "" && len(fc.Examples) < 20 {
			fc.Examples = append(fc.Examples, res.problem)
		}
	}
	fc.Took = time.Since(start)
	return fc
}
