package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
)

// globals are the flags every command accepts.
type globals struct {
	admin       string
	output      string
	timeout     time.Duration
	dnsServer   string
	tsigKeyFile string
	tsigKeyName string
	dnsZone     string
	enumSuffix  string
}

// Environment variables that give the global flags their defaults.
const (
	envAdmin     = "DSNCTL_ADMIN"
	envDNSServer = "DSNCTL_DNS_SERVER"
	envTSIGKey   = "DSNCTL_TSIG_KEY_FILE"
	envDNSZone   = "DSNCTL_DNS_ZONE"
)

func defaultGlobals(getenv func(string) string) globals {
	g := globals{
		admin:      "127.0.0.1:8080",
		output:     "table",
		timeout:    10 * time.Second,
		enumSuffix: dnsreport.DefaultENUMSuffix,
	}
	if v := getenv(envAdmin); v != "" {
		g.admin = v
	}
	g.dnsServer = getenv(envDNSServer)
	g.tsigKeyFile = getenv(envTSIGKey)
	g.dnsZone = getenv(envDNSZone)
	return g
}

// register defines the global flags on fs with the current values as
// defaults, so a command's flag set can accept them again.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.admin, "admin", g.admin, "admin HTTP `address` of a dsn-node (host:port or http://host:port); env "+envAdmin)
	fs.StringVar(&g.output, "o", g.output, "output `format`: table (aligned, for people) or json (stable keys, for scripts)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "overall `time` limit of the command")
	fs.StringVar(&g.dnsServer, "dns-server", g.dnsServer, "DNS `server`(s) (host[:port], comma list, tried in order) for dns-check and enum; env "+envDNSServer)
	fs.StringVar(&g.tsigKeyFile, "tsig-key-file", g.tsigKeyFile, "TSIG key `file` in BIND format (tsig-keygen); signs UPDATEs, queries and AXFR; env "+envTSIGKey)
	fs.StringVar(&g.tsigKeyName, "tsig-key-name", g.tsigKeyName, "which key of -tsig-key-file to use when it holds several (`name`)")
	fs.StringVar(&g.dnsZone, "dns-zone", g.dnsZone, "`zone` to update or read (default: -enum-suffix for enum, the node's domain for dns-check); env "+envDNSZone)
	fs.StringVar(&g.enumSuffix, "enum-suffix", g.enumSuffix, "ENUM `suffix` numbers are mapped under (RFC 6116)")
}

func (g globals) validate() error {
	switch g.output {
	case "table", "json":
	default:
		return fmt.Errorf("-o %q: want table or json", g.output)
	}
	if g.timeout <= 0 {
		return fmt.Errorf("-timeout %v: must be positive", g.timeout)
	}
	if g.admin == "" {
		return fmt.Errorf("-admin is empty: give the admin address of a dsn-node (or set %s)", envAdmin)
	}
	return nil
}

// dnsServers returns the -dns-server list, normalised, or an error that
// says how to give one.
func (g globals) dnsServers() ([]string, error) {
	var out []string
	for _, s := range strings.Split(g.dnsServer, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		n, err := dnsreport.NormalizeServer(s)
		if err != nil {
			return nil, usageErrorf("-dns-server: %v", err)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, usageErrorf("no DNS server: give -dns-server host[:port] (or set %s)", envDNSServer)
	}
	return out, nil
}

// dnsSetup returns the DNS servers and the TSIG key (nil when no key
// file is given).
func (g globals) dnsSetup(stderr io.Writer) ([]string, *dnsreport.Key, error) {
	servers, err := g.dnsServers()
	if err != nil {
		return nil, nil, err
	}
	key, err := g.key(stderr)
	return servers, key, err
}

// key loads the TSIG key; nil without error when no file is given.
func (g globals) key(stderr io.Writer) (*dnsreport.Key, error) {
	if g.tsigKeyFile == "" {
		if g.tsigKeyName != "" {
			return nil, usageErrorf("-tsig-key-name without -tsig-key-file")
		}
		return nil, nil
	}
	keys, warn, err := dnsreport.LoadKeyFile(g.tsigKeyFile)
	if warn != nil {
		fmt.Fprintf(stderr, "dsnctl: warning: %s\n", warn)
	}
	if err != nil {
		return nil, usageErrorf("-tsig-key-file: %v", err)
	}
	k, err := dnsreport.SelectKey(keys, g.tsigKeyName)
	if err != nil {
		return nil, usageErrorf("-tsig-key-file %s: %v (use -tsig-key-name)", g.tsigKeyFile, err)
	}
	return &k, nil
}

// command is one dsnctl command.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	minArgs int
	maxArgs int
	summary string
	help    string
	flags   func(fs *flag.FlagSet, g *globals) // command-only flags
	run     func(ctx context.Context, e *env, args []string) (result, error)
}

// commands lists every command in the order the usage shows them.
func commands() []*command {
	return []*command{
		statusCommand(),
		readyCommand(),
		ringCommand(),
		lookupCommand(),
		bindingsCommand(),
		repsCommand(),
		dnsCheckCommand(),
		enumAddCommand(),
		enumAddPrefixCommand(),
		enumDelCommand(),
		enumDelPrefixCommand(),
	}
}

const usageHead = `dsnctl: operator CLI of a DSN fleet

Usage:
  dsnctl [flags] COMMAND [arguments]
  dsnctl help COMMAND         (or dsnctl COMMAND -h) explains one command

Commands:
`

const usageTail = `
Exit status: 0 success; 1 the command found a problem (stale or missing DNS
entries, inconsistent ring, no registration, UPDATE refused); 2 usage
errors and servers that cannot be reached.
`

func writeUsage(w io.Writer) {
	io.WriteString(w, usageHead)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	io.WriteString(w, "\nGlobal flags (accepted before or after the command):\n")
	g := defaultGlobals(func(string) string { return "" })
	fs := flag.NewFlagSet("dsnctl", flag.ContinueOnError)
	g.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	io.WriteString(w, usageTail)
}

func writeCommandHelp(w io.Writer, c *command, g globals) {
	fmt.Fprintf(w, "Usage: dsnctl %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.help))
	if c.flags != nil {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs, &g)
		io.WriteString(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	io.WriteString(w, "\nGlobal flags: see dsnctl -h.\n")
}
