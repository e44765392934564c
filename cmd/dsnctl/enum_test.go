package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
)

// enumResolve resolves number through the fixture's server like a CSCF.
func enumResolve(t *testing.T, d *dnsFixture, number string) (string, error) {
	t.Helper()
	cfg := dnsreport.FastConfig().Resolver
	cfg.Server = d.addr
	r, err := dnsreport.NewResolver(cfg, nil, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.ENUM(ctx, number)
}

func TestENUMAddResolveDelete(t *testing.T) {
	d := startDNS(t, "dsn.test")
	env := map[string]string{envDNSServer: d.addr, envTSIGKey: d.keyFile}

	out := dsnctl(t, env, "enum", "add", "+49 30 1234-567", "sip:alice@dsn.test").want(t, 0).stdout
	mustContain(t, out, "enum add +49301234567: zone e164.arpa. updated", "added",
		"7.6.5.4.3.2.1.0.3.9.4.e164.arpa.", `"E2U+sip" "!^.*$!sip:alice@dsn.test!"`)
	if got, err := enumResolve(t, d, "+49301234567"); err != nil || got != "sip:alice@dsn.test" {
		t.Fatalf("ENUM after add: %q, %v", got, err)
	}

	// Adding again with another URI replaces the record.
	var res enumResult
	dsnctl(t, env, "-o", "json", "enum", "add", "+49301234567", "sip:alice2@dsn.test").want(t, 0).decode(t, &res)
	if res.Action != "add" || res.Number != "+49301234567" || res.Name != "7.6.5.4.3.2.1.0.3.9.4.e164.arpa." ||
		len(res.Added) != 1 || len(res.Deleted) != 1 || !strings.Contains(res.Deleted[0], "sip:alice@dsn.test") {
		t.Errorf("json enum add %+v", res)
	}
	if got, err := enumResolve(t, d, "+49301234567"); err != nil || got != "sip:alice2@dsn.test" {
		t.Fatalf("ENUM after replace: %q, %v", got, err)
	}

	out = dsnctl(t, env, "enum", "del", "+49301234567").want(t, 0).stdout
	mustContain(t, out, "enum del +49301234567", "deleted", "sip:alice2@dsn.test")
	if got, err := enumResolve(t, d, "+49301234567"); !errors.Is(err, dnsreport.ErrNotFound) {
		t.Fatalf("ENUM after del: %q, %v (want not found)", got, err)
	}
	// Deleting again is not an error.
	out = dsnctl(t, env, "enum", "del", "+49301234567").want(t, 0).stdout
	mustContain(t, out, "nothing to delete")
}

func TestENUMKeepsOtherServices(t *testing.T) {
	d := startDNS(t, "dsn.test")
	name, _ := dnsreport.ENUMName("+15550001", "")
	tel, err := dns.NewRR(name + ` 300 IN NAPTR 100 20 "u" "E2U+tel" "!^.*$!tel:+15550001!" .`)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.client.Update(t.Context(), dnsreport.Change{Zone: "e164.arpa.", Add: []dns.RR{tel}}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envDNSServer: d.addr, envTSIGKey: d.keyFile}
	dsnctl(t, env, "enum", "add", "+15550001", "sip:bob@dsn.test").want(t, 0)
	dsnctl(t, env, "enum", "del", "+15550001").want(t, 0)
	rrs, err := dnsreport.Transfer(t.Context(), d.addr, "e164.arpa.", &d.key, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var naptrs []string
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NAPTR); ok {
			naptrs = append(naptrs, n.Service)
		}
	}
	if strings.Join(naptrs, ",") != "E2U+tel" {
		t.Errorf("NAPTRs left: %v, want only the E2U+tel one", naptrs)
	}
}

func TestENUMPrefix(t *testing.T) {
	d := startDNS(t, "dsn.test")
	env := map[string]string{envDNSServer: d.addr, envTSIGKey: d.keyFile}
	out := dsnctl(t, env, "enum", "add-prefix", "+4930", "dsn.test").want(t, 0).stdout
	mustContain(t, out, "*.0.3.9.4.e164.arpa.", `!^(.*)$!sip:\\1@dsn.test!`)
	for _, n := range []string{"+4930123", "+49301234567"} {
		if got, err := enumResolve(t, d, n); err != nil || got != "sip:"+n+"@dsn.test" {
			t.Errorf("ENUM %s: %q, %v", n, got, err)
		}
	}
	if _, err := enumResolve(t, d, "+4940123"); !errors.Is(err, dnsreport.ErrNotFound) {
		t.Errorf("a number outside the prefix resolved: %v", err)
	}
	var res enumResult
	dsnctl(t, env, "-o", "json", "enum", "del-prefix", "+4930").want(t, 0).decode(t, &res)
	if res.Action != "del-prefix" || len(res.Deleted) != 1 || res.Name != "*.0.3.9.4.e164.arpa." {
		t.Errorf("json del-prefix %+v", res)
	}
	if _, err := enumResolve(t, d, "+4930123"); !errors.Is(err, dnsreport.ErrNotFound) {
		t.Errorf("prefix still resolves after del-prefix: %v", err)
	}
}

func TestENUMErrors(t *testing.T) {
	d := startDNS(t, "dsn.test")
	wrong, err := dnsreport.GenerateKey("k", "", strings.NewReader(strings.Repeat("x", 64)))
	if err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong.key")
	if err := os.WriteFile(wrongFile, []byte(wrong.BINDFormat()), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := []string{"-dns-server", d.addr, "-tsig-key-file", d.keyFile}
	for _, tc := range []struct {
		name string
		code int
		args []string
		want []string
	}{
		{"no key", 2, []string{"-dns-server", d.addr, "enum", "add", "+1555", "sip:a@b"}, []string{"needs a TSIG key", "tsig-keygen"}},
		{"no server", 2, []string{"-tsig-key-file", d.keyFile, "enum", "del", "+1555"}, []string{"no DNS server"}},
		{"bad number", 2, append(ok, "enum", "add", "+1-55x", "sip:a@b"), []string{"NUMBER:", "unexpected character 'x'"}},
		{"bad URI", 2, append(ok, "enum", "add", "+1555", "http://a"), []string{"not a sip: or sips: URI"}},
		{"missing URI", 2, append(ok, "enum", "add", "+1555"), []string{"want 2 argument(s)", "usage: dsnctl enum add NUMBER URI"}},
		{"no subcommand", 2, append(ok, "enum"), []string{"enum needs a subcommand"}},
		{"unknown subcommand", 2, append(ok, "enum", "list"), []string{`unknown command "enum list"`}},
		{"zone mismatch", 2, append(ok, "-dns-zone", "dsn.test", "enum", "del", "+1555"), []string{"outside -dns-zone dsn.test."}},
		{"wrong secret", 1, []string{"-dns-server", d.addr, "-tsig-key-file", wrongFile, "enum", "add", "+1555", "sip:a@b"}, []string{"TSIG", "check"}},
		{"server down", 2, []string{"-dns-server", deadAddr(t), "-tsig-key-file", d.keyFile, "enum", "del", "+1555"}, []string{"check that the DNS server address and port are right"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dsnctl(t, nil, tc.args...).want(t, tc.code)
			mustContain(t, r.stderr, tc.want...)
		})
	}
}
