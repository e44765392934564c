package lint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bindCopy copies deploy/bind into a temporary directory with the
// absolute paths (/etc/bind, /var/lib/bind) pointing into it and a fresh
// TSIG key, so the configuration can be checked without installing it.
func bindCopy(t *testing.T) (dir string, rewrite func(string) string) {
	t.Helper()
	dir = t.TempDir()
	rewrite = func(s string) string {
		s = strings.ReplaceAll(s, "/etc/bind/", dir+"/etc/")
		s = strings.ReplaceAll(s, "/var/lib/bind/", dir+"/zones/")
		return strings.ReplaceAll(s, "/var/cache/bind", dir+"/cache")
	}
	for _, d := range []string{"etc/keys", "zones", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	keygen := requireTool(t, "tsig-keygen")
	key, err := exec.Command(keygen, "-a", "hmac-sha256", "dsn-update").Output()
	if err != nil {
		t.Fatalf("tsig-keygen: %v", err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/keys/dsn-update.key", key)
	src := filepath.Join(deployDir(t), "bind")
	for _, f := range []string{"named.conf", "named.conf.snippet"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		write("etc/"+f, []byte(rewrite(string(b))))
	}
	zones, _ := filepath.Glob(filepath.Join(src, "zones", "*.db"))
	for _, z := range zones {
		b, err := os.ReadFile(z)
		if err != nil {
			t.Fatal(err)
		}
		write("zones/"+filepath.Base(z), b)
	}
	return dir, rewrite
}

// TestBindSnippet wraps the snippet in a minimal named.conf and runs
// named-checkconf on it.
func TestBindSnippet(t *testing.T) {
	checkconf := requireTool(t, "named-checkconf")
	snippet, err := os.ReadFile(filepath.Join(deployDir(t), "bind", "named.conf.snippet"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(snippet)
	for _, want := range []string{`include "/etc/bind/keys/dsn-update.key"`, "update-policy { grant dsn-update zonesub ANY; };",
		"allow-transfer { key dsn-update; };", `zone "e164.arpa"`} {
		if !strings.Contains(s, want) {
			t.Errorf("snippet lacks %s", want)
		}
	}
	if n := strings.Count(s, "update-policy { grant dsn-update zonesub ANY; };"); n != 2 {
		t.Errorf("update-policy appears %d times, want 2 (DSN zone and ENUM zone)", n)
	}
	dir, _ := bindCopy(t)
	conf := filepath.Join(dir, "minimal.conf")
	minimal := "options { directory \"" + dir + "/cache\"; recursion no; };\ninclude \"" + dir + "/etc/named.conf.snippet\";\n"
	if err := os.WriteFile(conf, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(checkconf, "-z", conf).CombinedOutput(); err != nil {
		t.Errorf("named-checkconf -z (snippet): %v\n%s", err, out)
	}
}

// TestBindComposeConfig checks the full named.conf the compose fleet
// mounts, loading the seed zones.
func TestBindComposeConfig(t *testing.T) {
	checkconf := requireTool(t, "named-checkconf")
	checkzone := requireTool(t, "named-checkzone")
	dir, _ := bindCopy(t)
	if out, err := exec.Command(checkconf, "-z", filepath.Join(dir, "etc", "named.conf")).CombinedOutput(); err != nil {
		t.Errorf("named-checkconf -z named.conf: %v\n%s", err, out)
	}
	for zone, file := range map[string]string{"dsn.example.com": "dsn.example.com.db", "e164.arpa": "e164.arpa.db"} {
		if out, err := exec.Command(checkzone, zone, filepath.Join(deployDir(t), "bind", "zones", file)).CombinedOutput(); err != nil {
			t.Errorf("named-checkzone %s: %v\n%s", zone, err, out)
		}
	}
}
