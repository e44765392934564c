package dnsserver

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("testConfig().Validate() = %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"empty Addr", func(c *Config) { c.Addr = "" }, "dnsserver: Addr:"},
		{"Addr without port", func(c *Config) { c.Addr = "127.0.0.1" }, "dnsserver: Addr:"},
		{"Addr with bad port", func(c *Config) { c.Addr = "127.0.0.1:dns" }, "dnsserver: Addr: port"},
		{"Addr with port 00", func(c *Config) { c.Addr = "127.0.0.1:00" }, "dnsserver: Addr: port"},
		{"empty origin", func(c *Config) { c.Zones[0].Origin = "" }, "dnsserver: Zones[0].Origin: empty"},
		{"bad origin", func(c *Config) { c.Zones[1].Origin = "a..b" }, "dnsserver: Zones[1].Origin:"},
		{"duplicate origin", func(c *Config) { c.Zones[1].Origin = "DSN.example.com" }, "dnsserver: Zones[1].Origin: \"DSN.example.com\" already served by Zones[0]"},
		{"no data", func(c *Config) { c.Zones[2].Text = "" }, "dnsserver: Zones[2].File: neither"},
		{"both data", func(c *Config) { c.Zones[2].File = "x.zone" }, "dnsserver: Zones[2].File: both"},
		{"empty key name", func(c *Config) { c.Keys[0].Name = "" }, "dnsserver: Keys[0]: dnsreport: TSIG key has no name"},
		{"bad algorithm", func(c *Config) { c.Keys[1].Algorithm = "hmac-md5" }, "dnsserver: Keys[1]: dnsreport: TSIG key \"sha1-key.\": algorithm \"hmac-md5\" is not supported"},
		{"secret not base64", func(c *Config) { c.Keys[2].Secret = "!!" }, "dnsserver: Keys[2]: dnsreport: TSIG key \"sha384-key.\": secret is not valid base64"},
		{"empty secret", func(c *Config) { c.Keys[3].Secret = "" }, "dnsserver: Keys[3]: dnsreport: TSIG key \"sha512-key.\": secret is empty"},
		{"duplicate key", func(c *Config) { c.Keys[1].Name = "Update-Key" }, "dnsserver: Keys[1].Name: \"Update-Key\" already used by Keys[0]"},
		{"AXFR without keys", func(c *Config) { c.Keys = nil }, "dnsserver: AllowAXFR:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.modify(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want prefix %q", err, tc.want)
			}
			if _, nerr := New(c, nil, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestNewLoadsFiles(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/dsn.zone"
	if err := writeFile(path, dsnZone); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Zones = []ZoneConfig{{Origin: zoneName, File: path}}
	h, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := h.Store().Lookup("node1.dsn.example.com.", 1); len(got) != 1 {
		t.Errorf("node1 A = %v", got)
	}

	cfg.Zones[0].File = dir + "/missing.zone"
	if _, err := New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "dnsserver: Zones[0]:") {
		t.Errorf("missing file: %v", err)
	}
	cfg.Zones[0] = ZoneConfig{Origin: zoneName, Text: "@ 300 IN A 192.0.2.1\n"}
	if _, err := New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "no SOA") {
		t.Errorf("zone without SOA: %v", err)
	}
}
