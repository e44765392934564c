package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
	"github.com/dsn-ims/dsn/node"
	"github.com/miekg/dns"
)

// devENUMPrefix is the number range -dev maps to the DSN domain in ENUM.
const devENUMPrefix = "+1555"

// applyDevDefaults switches unset flags to loopback, self-contained values.
func applyDevDefaults(o *options, fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	def := func(name string, p *string, v string) {
		if !set[name] && os.Getenv(envName(name)) == "" {
			*p = v
		}
	}
	def("domain", &o.domain, "dsn.local")
	def("name", &o.name, "dev-1")
	def("sip", &o.sip, "127.0.0.1:5060")
	def("cluster", &o.cluster, "127.0.0.1:7946")
	def("admin", &o.admin, "127.0.0.1:8080")
	def("log-format", &o.logFormat, "console")
}

// devEnv is what -dev starts besides the node.
type devEnv struct {
	dns     *dnsserver.Server
	dir     string
	keyFile string
	domain  string
}

// startDev starts the embedded DNS server with a generated TSIG key and
// points the DNS flags that were not given at it.
func startDev(o *options, log *zap.Logger) (*devEnv, error) {
	key, err := dnsreport.GenerateKey("dsn-dev", "", rand.Reader)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dsn-dev-")
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "tsig.key")
	if err := os.WriteFile(keyFile, []byte(key.BINDFormat()), 0o600); err != nil {
		return nil, err
	}
	srv, err := dnsserver.Start(dnsserver.DevConfig(o.domain, "", key), log.Named("dns"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded DNS server: %w", err)
	}
	// ENUM: every number starting +1555 maps to sip:+1555...@<domain>, so
	// a phone registered as +15550001 can be called as tel:+15550001.
	naptr, err := dnsreport.ENUMPrefixRecord(devENUMPrefix, o.domain, "", 5*time.Minute)
	if err == nil {
		var client *dnsreport.Client
		if client, err = dnsreport.NewClient(dnsreport.ClientConfig{Servers: []string{srv.Addr()}, Timeout: 2 * time.Second}, &key); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = client.Update(ctx, dnsreport.Change{Zone: dnsreport.DefaultENUMSuffix, Add: []dns.RR{naptr}})
			cancel()
		}
	}
	if err != nil {
		srv.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("provisioning ENUM in the embedded DNS server: %w", err)
	}
	if o.dnsServer == "" {
		o.dnsServer = srv.Addr()
		o.tsigKeyFile = keyFile
	}
	if o.resolver == "system" {
		o.resolver = srv.Addr()
	}
	return &devEnv{dns: srv, dir: dir, keyFile: keyFile, domain: o.domain}, nil
}

func (d *devEnv) Close() {
	d.dns.Close()
	os.RemoveAll(d.dir)
}

// PrintInstructions tells the developer how to use the running node.
func (d *devEnv) PrintInstructions(w io.Writer, n *node.Node) {
	sipAddr := n.SIPAddr()
	dnsHost, dnsPort, _ := net.SplitHostPort(d.dns.Addr())
	fmt.Fprintf(w, `
dsn-node is running in development mode (one-node ring, embedded DNS).

  SIP        %[1]s (UDP and TCP), domain %[2]s
  Admin API  http://%[3]s/v1/status
  DNS        %[4]s port %[5]s (zones %[2]s and e164.arpa.; this node is published as a representative)
  TSIG key   %[6]s

Register a phone: any SIP softphone with user alice, domain %[2]s, proxy %[1]s
(no password in -dev). Or with SIPp, from the repository root:
  sipp %[1]s -sf sip/proxy/testdata/sipp/register.xml -s alice -key domain %[2]s -i 127.0.0.1 -p 5070 -m 1
  sipp -sf sip/proxy/testdata/sipp/uas.xml -i 127.0.0.1 -p 5070 -m 1 &         # the phone answers one call
Place a call to it:
  sipp %[1]s -sf sip/proxy/testdata/sipp/uac.xml -s alice -key domain %[2]s -i 127.0.0.1 -p 5080 -m 1
Numbers: ENUM maps %[7]s... to sip:%[7]s...@%[2]s, so a phone registered as user +15550001 is
reachable as tel:+15550001 (the node resolves ENUM in the embedded DNS):
  dig @%[4]s -p %[5]s 1.0.0.0.5.5.5.1.e164.arpa NAPTR
Look at it:
  curl 'http://%[3]s/v1/bindings?aor=sip:alice@%[2]s'
  dig @%[4]s -p %[5]s _sip._udp.%[2]s SRV
Stop with Ctrl-C (graceful leave: the node withdraws its DNS records first).
`, sipAddr, d.domain, n.AdminAddr(), dnsHost, dnsPort, d.keyFile, devENUMPrefix)
}
