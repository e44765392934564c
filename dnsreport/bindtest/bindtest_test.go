package bindtest

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func soa(t *testing.T, addr, zone string) error {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(zone, dns.TypeSOA)
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	_, _, err := c.Exchange(m, addr)
	return err
}

func TestStartStopStartClose(t *testing.T) {
	s := Require(t, Config{Zones: []Zone{{Origin: "dsn.test", Text: MinimalZone("dsn.test.", "x IN A 127.0.0.5")}}})
	addr := s.Addr()
	if err := soa(t, addr, "dsn.test."); err != nil {
		t.Fatalf("SOA after Start: %v", err)
	}
	if st, err := os.Stat(s.KeyFile()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", st, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := soa(t, addr, "dsn.test."); err == nil {
		t.Fatal("named still answers after Stop")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Errorf("address changed across restart: %s -> %s", addr, s.Addr())
	}
	if err := soa(t, addr, "dsn.test."); err != nil {
		t.Fatalf("SOA after restart: %v", err)
	}
	if !strings.Contains(s.Log(), "running") {
		t.Errorf("log lacks named's start-up lines:\n%s", s.Log())
	}
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind", dir)
	}
}

func TestStartFailureCarriesNamedLog(t *testing.T) {
	if skip, err := Availability(); err != nil {
		t.Fatal(err)
	} else if skip != "" {
		t.Skip(skip)
	}
	_, err := Start(Config{Zones: []Zone{{Origin: "bad.test", Text: "this is not a zone\n"}}, StartTimeout: 5 * time.Second})
	if err == nil {
		t.Fatal("Start accepted a broken zone")
	}
	if !strings.Contains(err.Error(), "named.log") || !strings.Contains(err.Error(), "bad.test") {
		t.Errorf("error does not carry the log: %v", err)
	}
}

func TestAvailabilitySkipsOrFailsPerCI(t *testing.T) {
	t.Setenv("CI", "")
	skip, err := Availability("no-such-binary-for-bindtest")
	if err != nil || !strings.Contains(skip, "CI=true") {
		t.Errorf("without CI: skip=%q err=%v", skip, err)
	}
	t.Setenv("CI", "true")
	skip, err = Availability("no-such-binary-for-bindtest")
	if err == nil || skip != "" {
		t.Errorf("with CI: skip=%q err=%v", skip, err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Zones: []Zone{{Origin: "dsn.test.", Text: MinimalZone("dsn.test.")}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	for name, c := range map[string]Config{
		"no zones":    {},
		"bad origin":  {Zones: []Zone{{Origin: "a..b"}}},
		"bad key":     {Zones: ok.Zones, KeyName: `k"; };`},
		"neg timeout": {Zones: ok.Zones, StartTimeout: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
