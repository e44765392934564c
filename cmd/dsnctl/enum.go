package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
)

// defaultENUMTTL is the TTL of provisioned NAPTR records.
const defaultENUMTTL = 300 * time.Second

const enumHelpCommon = `

The UPDATE is TSIG-signed with the key of -tsig-key-file and sent to the
-dns-server list in order until one accepts it; the reply's signature is
verified. The zone updated is -dns-zone, by default -enum-suffix
(e164.arpa.). Only E2U+sip NAPTR records are touched: other ENUM services
at the same name are left alone.`

func enumAddCommand() *command {
	var ttl time.Duration = defaultENUMTTL
	return &command{
		name: "enum add", args: "NUMBER URI", minArgs: 2, maxArgs: 2,
		summary: "map a telephone number to a SIP URI (NAPTR E2U+sip)",
		help: `Publishes the ENUM record of NUMBER (E.164, e.g. +4930123456; spaces,
dashes, dots and brackets are ignored):
    <reversed digits>.<suffix>  NAPTR 100 10 "u" "E2U+sip" "!^.*$!URI!" .
replacing the E2U+sip NAPTR records already at that name. URI is a sip:
or sips: URI, e.g. sip:alice@dsn.example.com.` + enumHelpCommon,
		flags: func(fs *flag.FlagSet, _ *globals) {
			fs.DurationVar(&ttl, "ttl", ttl, "`TTL` of the record")
		},
		run: func(ctx context.Context, e *env, args []string) (result, error) {
			e164, err := dnsreport.NormalizeE164(args[0])
			if err != nil {
				return nil, usageErrorf("NUMBER: %v", err)
			}
			rec, err := dnsreport.ENUMRecord(e164, args[1], e.g.enumSuffix, ttl)
			if err != nil {
				return nil, usageErrorf("%v", err)
			}
			return enumUpdate(ctx, e, enumOp{action: "add", number: e164, name: rec.Hdr.Name, add: rec})
		},
	}
}

func enumAddPrefixCommand() *command {
	var ttl time.Duration = defaultENUMTTL
	return &command{
		name: "enum add-prefix", args: "PREFIX DOMAIN", minArgs: 2, maxArgs: 2,
		summary: "send every number starting with PREFIX to sip:+<number>@DOMAIN (wildcard NAPTR)",
		help: `Publishes a wildcard ENUM record for a whole number range:
    *.<reversed prefix digits>.<suffix>  NAPTR 100 10 "u" "E2U+sip" "!^(.*)$!sip:\1@DOMAIN!" .
so that +<number> (any number longer than PREFIX that starts with it)
resolves to sip:+<number>@DOMAIN. A DNS wildcard does not match the
prefix itself. Replaces the E2U+sip NAPTR records at the wildcard name.` + enumHelpCommon,
		flags: func(fs *flag.FlagSet, _ *globals) {
			fs.DurationVar(&ttl, "ttl", ttl, "`TTL` of the record")
		},
		run: func(ctx context.Context, e *env, args []string) (result, error) {
			prefix, err := dnsreport.NormalizeE164(args[0])
			if err != nil {
				return nil, usageErrorf("PREFIX: %v", err)
			}
			rec, err := dnsreport.ENUMPrefixRecord(prefix, args[1], e.g.enumSuffix, ttl)
			if err != nil {
				return nil, usageErrorf("%v", err)
			}
			return enumUpdate(ctx, e, enumOp{action: "add-prefix", number: prefix, name: rec.Hdr.Name, add: rec})
		},
	}
}

func enumDelCommand() *command {
	return &command{
		name: "enum del", args: "NUMBER", minArgs: 1, maxArgs: 1,
		summary: "remove the E2U+sip NAPTR records of a number",
		help: `Deletes the E2U+sip NAPTR records at the ENUM name of NUMBER (records
of other services stay). Deleting what is not there succeeds and says so.` + enumHelpCommon,
		run: func(ctx context.Context, e *env, args []string) (result, error) {
			return enumDelete(ctx, e, "del", args[0], false)
		},
	}
}

func enumDelPrefixCommand() *command {
	return &command{
		name: "enum del-prefix", args: "PREFIX", minArgs: 1, maxArgs: 1,
		summary: "remove the wildcard E2U+sip NAPTR records of a number prefix",
		help: `Deletes the E2U+sip NAPTR records at *.<reversed prefix>.<suffix>, as
published by enum add-prefix.` + enumHelpCommon,
		run: func(ctx context.Context, e *env, args []string) (result, error) {
			return enumDelete(ctx, e, "del-prefix", args[0], true)
		},
	}
}

func enumDelete(ctx context.Context, e *env, action, number string, wildcard bool) (result, error) {
	e164, err := dnsreport.NormalizeE164(number)
	if err != nil {
		return nil, usageErrorf("%s: %v", strings.ToUpper(strings.TrimPrefix(action, "del-")), err)
	}
	name, err := dnsreport.ENUMName(e164, e.g.enumSuffix)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	if wildcard {
		name = "*." + name
	}
	return enumUpdate(ctx, e, enumOp{action: action, number: e164, name: name})
}

// enumOp is one ENUM change: replace the E2U+sip NAPTRs at name by add
// (nil: only delete them).
type enumOp struct {
	action string
	number string
	name   string
	add    *dns.NAPTR
}

// enumResult says what an enum command did.
type enumResult struct {
	Action  string   `json:"action"`
	Number  string   `json:"number"`
	Name    string   `json:"name"`
	Zone    string   `json:"zone"`
	Servers []string `json:"servers"`
	Added   []string `json:"added"`
	Deleted []string `json:"deleted"`
}

// enumUpdate reads the E2U+sip NAPTRs at op.name, then sends one signed
// UPDATE that deletes them (exactly those records) and adds op.add.
func enumUpdate(ctx context.Context, e *env, op enumOp) (result, error) {
	servers, key, err := e.g.dnsSetup(e.stderr)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, usageErrorf("ENUM provisioning needs a TSIG key: give -tsig-key-file (or set %s); "+
			"create one with tsig-keygen -a hmac-sha256 dsn-update and grant it: update-policy { grant dsn-update zonesub ANY; };", envTSIGKey)
	}
	zone := dns.CanonicalName(cmp.Or(e.g.dnsZone, e.g.enumSuffix))
	if !dns.IsSubDomain(zone, op.name) {
		return nil, usageErrorf("%s is outside -dns-zone %s: give the ENUM zone with -dns-zone (or fix -enum-suffix)", op.name, zone)
	}
	cfg := dnsreport.DefaultConfig().Client
	cfg.Servers = servers
	cfg.Timeout = dnsQueryTimeout
	client, err := dnsreport.NewClient(cfg, key)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	old, err := readNAPTR(ctx, client, op.name)
	if err != nil {
		return nil, fmt.Errorf("read the NAPTR records at %s: %w", op.name, err)
	}
	res := &enumResult{Action: op.action, Number: op.number, Name: op.name, Zone: zone, Servers: servers,
		Added: []string{}, Deleted: []string{}}
	ch := dnsreport.Change{Zone: zone}
	for _, n := range old {
		if isSIPService(n.Service) && (op.add == nil || !sameNAPTR(n, op.add)) {
			ch.Delete = append(ch.Delete, n)
			res.Deleted = append(res.Deleted, rrDisplay(n))
		}
	}
	if op.add != nil {
		ch.Add = append(ch.Add, op.add)
		res.Added = append(res.Added, rrDisplay(op.add))
	}
	if ch.IsEmpty() {
		return res, nil // nothing to delete
	}
	if err := client.Update(ctx, ch); err != nil {
		return nil, err
	}
	return res, nil
}

// readNAPTR asks the client's servers in order for the NAPTRs at name
// (queries signed with the client's key, replies verified).
func readNAPTR(ctx context.Context, c *dnsreport.Client, name string) ([]*dns.NAPTR, error) {
	var errs []error
	for _, s := range c.Servers() {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeNAPTR)
		r, err := c.Exchanger().Exchange(ctx, m, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var out []*dns.NAPTR
		for _, rr := range r.Answer {
			if n, ok := rr.(*dns.NAPTR); ok && dns.CanonicalName(n.Hdr.Name) == dns.CanonicalName(name) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	return nil, errors.Join(errs...)
}

// isSIPService reports whether an ENUM service field offers the sip
// enumservice ("E2U+sip", "E2U+voice:sip+sip", any case).
func isSIPService(service string) bool {
	parts := strings.Split(strings.ToLower(service), "+")
	if len(parts) < 2 || parts[0] != "e2u" {
		return false
	}
	for _, p := range parts[1:] {
		if typ, _, _ := strings.Cut(p, ":"); typ == "sip" {
			return true
		}
	}
	return false
}

// rrDisplay is the record in presentation form on one line without tabs.
func rrDisplay(rr dns.RR) string { return strings.ReplaceAll(rr.String(), "\t", " ") }

// sameNAPTR compares the data of two NAPTRs (not the TTL).
func sameNAPTR(a, b *dns.NAPTR) bool {
	x, y := *a, *b
	x.Hdr.Ttl, y.Hdr.Ttl = 0, 0
	return strings.EqualFold(x.String(), y.String())
}

func (r *enumResult) writeTable(w io.Writer) error {
	if len(r.Added)+len(r.Deleted) == 0 {
		_, err := fmt.Fprintf(w, "enum %s %s: no E2U+sip NAPTR at %s; nothing to delete\n", r.Action, r.Number, r.Name)
		return err
	}
	fmt.Fprintf(w, "enum %s %s: zone %s updated (TSIG-signed, via %s)\n", r.Action, r.Number, r.Zone, strings.Join(r.Servers, ","))
	t := newTable("CHANGE", "RECORD")
	for _, d := range r.Deleted {
		t.add("deleted", d)
	}
	for _, a := range r.Added {
		t.add("added", a)
	}
	return t.write(w)
}
