package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

const scenarios = "../../sip/proxy/testdata/sipp/"

// homeOf asks a node which node is the home of aor.
func homeOf(t *testing.T, p *fleet.Proc, aor string) string {
	t.Helper()
	var res struct {
		Home struct {
			Name string `json:"name"`
		} `json:"home"`
	}
	if code, err := p.GetJSON("/v1/lookup?aor="+aor, &res); err != nil || code != 200 {
		t.Fatalf("lookup %s: %d %v", aor, code, err)
	}
	return res.Home.Name
}

// Issue 3 acceptance 2 and 6 with real SIPp and dsn-node processes.
func TestCallsThroughFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const domain = "dsn.calls"
	f := fleet.New(t, domain)
	var ps []*fleet.Proc
	for i := 0; i < 3; i++ {
		var join []string
		if i > 0 {
			join = []string{ps[0].Cluster}
		}
		ps = append(ps, f.Start(fmt.Sprintf("cn%d", i+1), fmt.Sprintf("127.0.0.%d", 31+i), join))
	}
	// A fourth node routes by redirect.
	red := f.Start("cn-redirect", "127.0.0.34", []string{ps[0].Cluster}, "-route-mode", "redirect")
	all := append(append([]*fleet.Proc(nil), ps...), red)
	fleet.Eventually(t, 15*time.Second, "ring of 4", func() error { return fleet.RingConsistent(all) })

	// Pick a user whose home is ps[2]: the phone registers through ps[0]
	// (A), the caller sends to ps[1] (B), neither of them the home node.
	A, B, H := ps[0], ps[1], ps[2]
	user := ""
	for i := 0; i < 1000 && user == ""; i++ {
		u := "bob" + strconv.Itoa(i)
		if homeOf(t, A, "sip:"+u+"@"+domain) == H.Name {
			user = u
		}
	}
	if user == "" {
		t.Fatal("no user homed on " + H.Name)
	}
	phonePort := fleet.FreeUDPPort(t, "127.0.0.1")
	register := func(via *fleet.Proc) {
		fleet.SIPp(t, via.SIP, "-sf", scenarios+"register.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(phonePort),
			"-s", user, "-key", "domain", domain, "-m", "1")
	}
	register(A)

	t.Run("proxy mode: 100 calls/s for 30 s through a non-home node", func(t *testing.T) {
		calls := 3000
		if v := os.Getenv("DSN_E2E_CALLS"); v != "" {
			calls, _ = strconv.Atoi(v)
		}
		uas := fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(phonePort),
			"-m", strconv.Itoa(calls), "-timeout", "120s", "-timeout_error")
		uac := fleet.StartSIPp(t, B.SIP, "-sf", scenarios+"uac.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1")),
			"-s", user, "-key", "domain", domain, "-m", strconv.Itoa(calls), "-r", "100", "-d", "500",
			"-timeout", "120s", "-timeout_error")
		uac.Wait(t, 150*time.Second)
		uas.Wait(t, 30*time.Second)
	})
	if t.Failed() {
		return
	}

	t.Run("redirect mode: 302 to the home node, follow-up completes", func(t *testing.T) {
		uas := fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(phonePort),
			"-m", "50", "-timeout", "60s", "-timeout_error")
		uac := fleet.StartSIPp(t, red.SIP, "-sf", scenarios+"uac_redirect.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1")),
			"-s", user, "-key", "domain", domain, "-m", "50", "-r", "20", "-d", "200", "-timeout", "60s", "-timeout_error")
		uac.Wait(t, 90*time.Second)
		uas.Wait(t, 30*time.Second)
	})

	t.Run("home node killed: the next call still reaches the phone", func(t *testing.T) {
		H.Kill()
		live := []*fleet.Proc{A, B, red}
		fleet.Eventually(t, 15*time.Second, "ring of 3", func() error { return fleet.RingConsistent(live) })
		if h := homeOf(t, B, "sip:"+user+"@"+domain); h == H.Name {
			t.Fatalf("home still %s", h)
		}
		uas := fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(phonePort),
			"-m", "20", "-timeout", "60s", "-timeout_error")
		uac := fleet.StartSIPp(t, B.SIP, "-sf", scenarios+"uac.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1")),
			"-s", user, "-key", "domain", domain, "-m", "20", "-r", "10", "-d", "200", "-timeout", "60s", "-timeout_error")
		uac.Wait(t, 90*time.Second)
		uas.Wait(t, 30*time.Second)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
