package lint

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitFile is a systemd unit: section -> key -> values (keys may repeat).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value inside a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join(deployDir(t), "systemd", "dsn-node.service")
	u := parseUnit(t, path)
	svc := u["Service"]
	if svc == nil {
		t.Fatal("no [Service] section")
	}
	want := map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallFilter":        "@system-service",
		"KillSignal":              "SIGTERM",
		"DynamicUser":             "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
		"SystemCallArchitectures": "native",
	}
	for k, v := range want {
		if got := svc[k]; len(got) == 0 || got[0] != v {
			t.Errorf("[Service] %s=%v, want %s", k, got, v)
		}
	}
	exec0 := svc["ExecStart"]
	if len(exec0) != 1 {
		t.Fatalf("ExecStart %v", exec0)
	}
	argv := strings.Fields(exec0[0])
	if argv[0] != "/usr/local/bin/dsn-node" {
		t.Errorf("ExecStart runs %s", argv[0])
	}
	flags := buildTools(t).flags
	creds := map[string]bool{}
	for _, lc := range svc["LoadCredential"] {
		name, _, _ := strings.Cut(lc, ":")
		creds[name] = true
	}
	seenConfig := false
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		f := strings.TrimLeft(a, "-")
		if !flags[f] {
			t.Errorf("ExecStart flag %s is not a dsn-node flag", a)
		}
		if i+1 < len(argv) {
			v := argv[i+1]
			if f == "config" {
				seenConfig = v == "/etc/dsn/dsn-node.yaml"
			}
			if strings.HasPrefix(v, "%d/") && !creds[strings.TrimPrefix(v, "%d/")] {
				t.Errorf("ExecStart reads credential %s that no LoadCredential provides", v)
			}
		}
	}
	if !seenConfig {
		t.Error("ExecStart does not read -config /etc/dsn/dsn-node.yaml")
	}
	if len(creds) < 2 {
		t.Errorf("want LoadCredential for the cluster key and the TSIG key, have %v", creds)
	}
}

// TestSystemdAnalyze runs systemd-analyze verify and the offline security
// score on a copy of the unit whose ExecStart points at a built dsn-node.
// systemd-analyze is used only where it is installed.
func TestSystemdAnalyze(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (it comes with systemd); the unit is checked by TestSystemdUnit only")
	}
	src, err := os.ReadFile(filepath.Join(deployDir(t), "systemd", "dsn-node.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "dsn-node.service")
	text := strings.ReplaceAll(string(src), "/usr/local/bin/dsn-node", buildTools(t).node)
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure at most 3.0 ("OK") by systemd's own scoring.
	cmd := exec.Command(sa, "security", "--offline=true", "--threshold=30", "--no-pager", unit)
	out, err = cmd.CombinedOutput()
	if strings.Contains(string(out), "Unknown option") || strings.Contains(string(out), "unrecognized option") {
		t.Skipf("this systemd-analyze has no offline security scoring: %s", out)
	}
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 3.0 or error: %v\n%s", err, lastLines(string(out), 5))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
