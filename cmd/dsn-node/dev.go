package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
	"github.com/dsn-ims/dsn/node"
)

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
	host, port, _ := net.SplitHostPort(sipAddr)
	dnsHost, dnsPort, _ := net.SplitHostPort(d.dns.Addr())
	fmt.Fprintf(w, `
dsn-node is running in development mode (one-node ring, embedded DNS).

  SIP        %s (UDP and TCP), domain %s
  Admin API  http://%s/v1/status
  DNS        %s port %s (zones %s and e164.arpa.), TSIG key file %s

Register a phone (any SIP softphone, or SIPp):
  user alice, domain %s, registrar/proxy %s:%s (no password in -dev)
  sipp -sn uac ... or:  sipp %s -sf register.xml -s alice -m 1   (see sip/proxy/testdata/sipp)
Place a call: from a second phone registered the same way, call sip:alice@%s
Look at it:   curl 'http://%s/v1/bindings?aor=sip:alice@%s'
              dig @%s -p %s %s SOA
Stop with Ctrl-C (graceful leave).
`, sipAddr, d.domain, n.AdminAddr(), dnsHost, dnsPort, d.domain, d.keyFile,
		d.domain, host, port, sipAddr, d.domain, n.AdminAddr(), d.domain, dnsHost, dnsPort, d.domain)
}
