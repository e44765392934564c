package lint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// root is the repository root (this package lives in deploy/lint).
func root(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	r := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(r, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", r, err)
	}
	return r
}

func deployDir(t *testing.T) string { return filepath.Join(root(t), "deploy") }

// requireTool returns the path of an external binary; it skips the test
// when the binary is missing and CI is unset, and fails it when CI is set.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (deploy/test.sh installs it)", name)
	}
	t.Skipf("%s is not installed; run deploy/test.sh to install it", name)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// tools are dsn-node and dsnctl built once per test run.
type tools struct {
	dir       string
	node, ctl string
	flags     map[string]bool // dsn-node's flags, without the dash
}

var (
	toolsOnce sync.Once
	builtTool tools
	toolsErr  error
)

func buildTools(t *testing.T) tools {
	t.Helper()
	toolsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dsn-lint-bin-")
		if err != nil {
			toolsErr = err
			return
		}
		builtTool = tools{dir: dir, node: filepath.Join(dir, "dsn-node"), ctl: filepath.Join(dir, "dsnctl")}
		for bin, pkg := range map[string]string{builtTool.node: "./cmd/dsn-node", builtTool.ctl: "./cmd/dsnctl"} {
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = root(t)
			if out, err := cmd.CombinedOutput(); err != nil {
				toolsErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
		out, _ := exec.Command(builtTool.node, "-h").CombinedOutput()
		builtTool.flags = parseFlags(string(out))
		if len(builtTool.flags) == 0 {
			toolsErr = fmt.Errorf("dsn-node -h lists no flags:\n%s", out)
		}
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	return builtTool
}

var flagLine = regexp.MustCompile(`(?m)^\s+-([a-z0-9][a-z0-9-]*)`)

// parseFlags reads the flag names from Go flag package usage output.
func parseFlags(usage string) map[string]bool {
	out := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(usage, -1) {
		out[m[1]] = true
	}
	return out
}

// envFlag maps DSN_CLUSTER_KEY_FILE to cluster-key-file.
func envFlag(env string) (string, bool) {
	if !strings.HasPrefix(env, "DSN_") {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, "DSN_"), "_", "-")), true
}

// checkEnvNames fails for every DSN_* variable that names no dsn-node flag.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	flags := buildTools(t).flags
	for _, n := range names {
		if f, ok := envFlag(n); ok && !flags[f] {
			t.Errorf("%s: %s names no dsn-node flag (-%s); dsn-node would ignore it", where, n, f)
		}
	}
}

// yamlFiles lists every .yaml/.yml file under dir, skipping run state.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".run" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// decodeAll decodes every document of a YAML stream into generic maps.
func decodeAll(data []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeAll(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return docs
}

// get walks a decoded YAML tree: keys for maps, ints for lists.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func mapAt(v any, path ...any) map[string]any {
	m, _ := get(v, path...).(map[string]any)
	return m
}
