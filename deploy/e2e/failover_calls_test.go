package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// stream is one SIPp caller of a chunk: calls to one class of callees.
type stream struct {
	run    *fleet.SIPpRun
	counts fleet.SIPpCounts
}

// chunk is one batch of calls a CSCF places after one DNS resolution.
type chunk struct {
	resolved time.Time
	answer   []netip.AddrPort // what DNS named, in the CSCF's order
	target   string           // where the chunk's calls went (answer[0])
	// steady: callees whose home node and registration path stay alive;
	// homed: callees whose home node is the victim (registered elsewhere).
	steady, homed stream
}

func (c *chunk) created() int { return c.steady.counts.Created + c.homed.counts.Created }
func (c *chunk) failed() int  { return c.steady.counts.Failed + c.homed.counts.Failed }

// watch polls cond (an external process's state: BIND, a node's admin
// API) every 10 ms from now until it holds or d passes, and records when
// it first held.
type watch struct {
	mu   sync.Mutex
	at   time.Time
	done chan struct{}
}

func watchUntil(d time.Duration, cond func() bool) *watch {
	w := &watch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if cond() {
				w.mu.Lock()
				w.at = time.Now()
				w.mu.Unlock()
				return
			}
		}
	}()
	return w
}

// when waits for the watch to end and returns when cond first held (zero
// if it did not).
func (w *watch) when() time.Time {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at
}

// usersFile writes a SIPp injection file, one line per user, formatted by
// line (e.g. "user%04d;dsn.test" for register.xml, "sip:user%04d@dsn.test"
// for uac_uri.xml).
func usersFile(t *testing.T, line string, users []int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for _, u := range users {
		fmt.Fprintf(&b, line+"\n", u)
	}
	p := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 5 acceptance 2: calls flow while a representative fails. A CSCF
// resolves the DSN domain through BIND (SRV, then A) before every chunk of
// 50 calls and sends the chunk to the first target; one chunk a second,
// 1000 calls in all. 0.7 s into a chunk sent to the representative chosen
// as victim, the victim is killed -9. Only calls sent to the dead address
// may fail: every failed call belongs to a chunk whose target was the dead
// representative, and chunks resolved after DNS forgot it complete every
// call.
//
// The callees of the load registered through the four other nodes. Most
// are homed on live nodes (45 calls a chunk); the victim is the home node
// of a few (5 calls a chunk), whose calls through a live representative
// also depend on how fast the ring replaces the dead home node: they are
// counted apart. Phones that registered through the victim itself are
// checked at the end.
func TestCallsDuringRepresentativeFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	fleet.RequireTool(t, "sipp")
	const (
		domain   = "dsn.failover"
		chunks   = 20
		perChunk = 50
		homedPer = 5 // calls a chunk to callees homed on the victim
		// The victim dies in the first chunk from killFrom on that is sent
		// to it (or in chunk killBy whatever its target).
		killFrom, killBy = 6, 12
		// A call to a dead address fails when SIPp has heard nothing for
		// this long (its INVITE retransmissions go unanswered).
		recvTimeout = 3 * time.Second
	)
	aor := func(u int) string { return fmt.Sprintf("sip:user%04d@%s", u, domain) }
	f := fleet.NewDNS(t, domain, 5)
	f.Stable(t, 2, time.Second)
	victim := f.Reps()[0]
	var others []*fleet.Proc
	for _, p := range f.Live() {
		if p != victim {
			others = append(others, p)
		}
	}

	// One phone (a SIPp UAS on one port) for 20 AORs: users 0-15 register
	// through the four other nodes (4 each), users 16-19 through the
	// victim.
	phonePort := strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1"))
	register := func(via *fleet.Proc, users []int) {
		fleet.SIPp(t, via.SIP, "-sf", "testdata/register.xml", "-inf", usersFile(t, "user%04d;"+domain, users),
			"-m", strconv.Itoa(len(users)), "-i", "127.0.0.1", "-p", phonePort, "-r", "50")
	}
	var steady, homed []int
	for i, p := range others {
		users := []int{4 * i, 4*i + 1, 4*i + 2, 4*i + 3}
		register(p, users)
		for _, u := range users {
			if homeOf(t, p, aor(u)) == victim.Name {
				homed = append(homed, u)
			} else {
				steady = append(steady, u)
			}
		}
	}
	viaVictim := []int{16, 17, 18, 19}
	register(victim, viaVictim)
	t.Logf("victim %s (%s); callees registered through the other nodes: %d homed on live nodes, %v homed on the victim",
		victim.Name, victim.SIP, len(steady), homed)
	fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", "127.0.0.1", "-p", phonePort, "-timeout", "80s")

	cscf := fleet.NewCSCF(f.Named, 7)
	resolve := func() []netip.AddrPort {
		t.Helper()
		var last error
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			ans, err := cscf.Resolve(domain)
			if err == nil {
				return ans
			}
			last = err
		}
		t.Fatalf("CSCF cannot resolve %s: %v", domain, last)
		return nil
	}
	calls := func(target, callees string, n, rate int) *fleet.SIPpRun {
		return fleet.StartSIPpCounted(t, target, "-sf", "testdata/uac_uri.xml", "-inf", callees, "-key", "uriparams", "",
			"-i", "127.0.0.1", "-p", strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1")),
			"-m", strconv.Itoa(n), "-r", strconv.Itoa(rate), "-d", "100",
			"-recv_timeout", strconv.Itoa(int(recvTimeout/time.Millisecond)), "-timeout", "20s")
	}
	steadyCallees, homedCallees := usersFile(t, "sip:user%04d@"+domain, steady), usersFile(t, "sip:user%04d@"+domain, homed)
	steadyPer := perChunk
	if len(homed) > 0 {
		steadyPer -= homedPer
	}

	var (
		cs               = make([]chunk, chunks)
		killChunk        = -1
		killedAt         time.Time
		dnsForgot, ringd *watch
	)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	for i := range cs {
		if i > 0 {
			<-tick.C
		}
		c := &cs[i]
		c.answer, c.resolved = resolve(), time.Now()
		c.target = c.answer[0].String()
		c.steady.run = calls(c.target, steadyCallees, steadyPer, steadyPer)
		if len(homed) > 0 {
			c.homed.run = calls(c.target, homedCallees, homedPer, homedPer)
		}
		if killChunk < 0 && (i >= killFrom && c.target == victim.SIP || i == killBy) {
			// Kill when most of the chunk's calls are out, so that the
			// next chunk is resolved while DNS may still name the victim.
			<-time.After(700 * time.Millisecond)
			victim.Kill()
			killChunk, killedAt = i, time.Now()
			dnsForgot = watchUntil(10*time.Second, func() bool {
				ans, err := fleet.NewCSCF(f.Named, 99).Resolve(domain)
				return err == nil && !fleet.Contains(ans, victim.SIP)
			})
			ringd = watchUntil(10*time.Second, func() bool {
				// Every live node must name another home node.
				for _, p := range others {
					if len(homed) == 0 {
						break
					}
					if h := lookupHome(p, aor(homed[0])); h == "" || h == victim.Name {
						return false
					}
				}
				return true
			})
		}
	}
	var total, failed int
	for i := range cs {
		c := &cs[i]
		c.steady.counts = c.steady.run.Counts(t, 30*time.Second)
		if c.homed.run != nil {
			c.homed.counts = c.homed.run.Counts(t, 30*time.Second)
		}
		total += c.created()
		failed += c.failed()
	}
	forgotAt, ringAt := dnsForgot.when(), ringd.when()
	elapsed := time.Since(start)
	if forgotAt.IsZero() {
		t.Fatalf("DNS still names the killed representative %s (%s) 10 s after kill -9", victim.Name, victim.SIP)
	}
	if ringAt.IsZero() {
		t.Fatalf("a live node still names %s home of %v 10 s after kill -9", victim.Name, homed)
	}

	// The report.
	sentToDead := 0
	for i, c := range cs {
		mark := ""
		if c.target == victim.SIP && i >= killChunk {
			mark = " <- sent to the dead representative"
			sentToDead += c.created()
		}
		when := "before kill"
		switch {
		case i == killChunk:
			when = "kill -9 during chunk"
		case i > killChunk && c.resolved.After(forgotAt):
			when = "after DNS forgot"
		case i > killChunk:
			when = "during detection"
		}
		t.Logf("chunk %2d at %5.2fs %-20s DNS %v -> %s: %d calls, %d+%d ok, %d+%d failed%s",
			i, c.resolved.Sub(start).Seconds(), when, c.answer, c.target, c.created(),
			c.steady.counts.Successful, c.homed.counts.Successful, c.steady.counts.Failed, c.homed.counts.Failed, mark)
	}
	t.Logf("killed %s (%s) at %.2fs, in chunk %d; DNS forgot it %.2fs and the ring replaced it as home node %.2fs after kill -9",
		victim.Name, victim.SIP, killedAt.Sub(start).Seconds(), killChunk, forgotAt.Sub(killedAt).Seconds(), ringAt.Sub(killedAt).Seconds())
	t.Logf("calls %d, failed %d (%.1f%%); %d calls were in chunks sent to the dead representative; run %.1fs",
		total, failed, 100*float64(failed)/float64(max(total, 1)), sentToDead, elapsed.Seconds())

	// The claims.
	if total != chunks*perChunk {
		t.Errorf("%d calls placed, want %d", total, chunks*perChunk)
	}
	var homedLate []string // calls to victim-homed callees lost through a live representative
	for i, c := range cs {
		for _, s := range []stream{c.steady, c.homed} {
			if s.counts.Successful+s.counts.Failed != s.counts.Created {
				t.Errorf("chunk %d: %d ok + %d failed != %d created", i, s.counts.Successful, s.counts.Failed, s.counts.Created)
			}
		}
		if c.failed() == 0 {
			continue
		}
		switch {
		case i < killChunk:
			t.Errorf("chunk %d: %d calls failed before the kill: %v %v", i, c.failed(), c.steady.counts.Errors, c.homed.counts.Errors)
		case c.target == victim.SIP && c.resolved.After(forgotAt):
			t.Errorf("chunk %d went to the dead representative although it was resolved after DNS forgot it", i)
		case c.target == victim.SIP:
			// Sent to the dead address while DNS still named it: expected.
		case c.steady.counts.Failed > 0:
			t.Errorf("chunk %d: %d calls failed, but they went to %s, a live representative: %v",
				i, c.steady.counts.Failed, c.target, c.steady.counts.Errors)
		case c.resolved.After(ringAt):
			t.Errorf("chunk %d: %d calls to callees homed on the dead node failed through %s after the ring replaced it: %v",
				i, c.homed.counts.Failed, c.target, c.homed.counts.Errors)
		default:
			homedLate = append(homedLate, fmt.Sprintf("chunk %d (resolved %+.2fs from the kill): %d of %d",
				i, c.resolved.Sub(killedAt).Seconds(), c.homed.counts.Failed, c.homed.counts.Created))
		}
	}
	if k := cs[killChunk]; k.target == victim.SIP && k.failed() == 0 {
		t.Errorf("no call of the chunk the representative died under failed: the kill did not hit the traffic")
	}
	if d := forgotAt.Sub(killedAt); d > 3*time.Second {
		t.Errorf("DNS forgot the dead representative %.2fs after kill -9, want <= 3 s", d.Seconds())
	}

	t.Run("callees homed on the dead node, through a live representative", func(t *testing.T) {
		// Until the ring replaces the dead home node, a live representative
		// still names it; the proxy fails over to the home node's
		// alternates (its successors, which hold the replicas).
		if len(homedLate) > 0 {
			t.Errorf("calls to callees homed on %s failed while the ring still named it (ring replaced it %.2fs after kill -9): %s",
				victim.Name, ringAt.Sub(killedAt).Seconds(), strings.Join(homedLate, "; "))
		}
	})

	t.Run("phones registered through the dead representative", func(t *testing.T) {
		// DNS has forgotten the victim; a CSCF calls these AORs through
		// a live representative. Per the product brief the callee stays
		// reachable.
		target := resolve()[0].String()
		c := calls(target, usersFile(t, "sip:user%04d@"+domain, viaVictim), 2*len(viaVictim), perChunk).Counts(t, 30*time.Second)
		t.Logf("%d calls to %d AORs registered through %s, via %s: %d ok, %d failed",
			c.Created, len(viaVictim), victim.Name, target, c.Successful, c.Failed)
		if c.Failed > 0 {
			var paths []string
			for _, u := range viaVictim {
				paths = append(paths, fmt.Sprintf("user%04d:%v", u, pathOf(t, others[0], aor(u))))
			}
			t.Errorf("%d of %d calls failed to phones registered through the dead node "+
				"(the home node must fall back from the dead Path hop to the phone directly); paths: %s", c.Failed, c.Created, strings.Join(paths, " "))
		}
	})
}

// lookupHome asks a node which node is the home of aor ("" on error).
func lookupHome(p *fleet.Proc, aor string) string {
	var res struct {
		Home struct {
			Name string `json:"name"`
		} `json:"home"`
	}
	if code, err := p.GetJSON("/v1/lookup?aor="+aor, &res); err != nil || code != 200 {
		return ""
	}
	return res.Home.Name
}

// pathOf returns the Path of the first binding of aor, as a node reports it.
func pathOf(t *testing.T, p *fleet.Proc, aor string) []string {
	t.Helper()
	var res struct {
		Bindings []struct {
			Path []string `json:"path"`
		} `json:"bindings"`
	}
	if code, err := p.GetJSON("/v1/bindings?aor="+aor, &res); err != nil || code != 200 {
		return []string{fmt.Sprintf("bindings %d %v", code, err)}
	}
	if len(res.Bindings) == 0 {
		return nil
	}
	return res.Bindings[0].Path
}
