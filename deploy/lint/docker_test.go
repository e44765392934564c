package lint

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerfile is the parsed instructions of a Dockerfile, continuation
// lines joined.
type dockerfile struct {
	stages [][]instr
}

type instr struct {
	cmd  string // upper case
	args string
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var df dockerfile
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			df.stages = append(df.stages, nil)
		}
		if len(df.stages) == 0 {
			t.Fatalf("%s: %s before FROM", path, in.cmd)
		}
		df.stages[len(df.stages)-1] = append(df.stages[len(df.stages)-1], in)
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return df
}

func (df dockerfile) find(stage int, cmd string) []string {
	var out []string
	for _, in := range df.stages[stage] {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

var buildTarget = regexp.MustCompile(`go build [^&;]*?(\./cmd/[A-Za-z0-9_./-]+)`)

func TestDockerfile(t *testing.T) {
	path := filepath.Join(deployDir(t), "docker", "Dockerfile")
	df := parseDockerfile(t, path)
	if len(df.stages) != 2 {
		t.Fatalf("want a builder and a final stage, got %d stages", len(df.stages))
	}
	from := df.find(0, "FROM")[0]
	goMod, err := os.ReadFile(filepath.Join(root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if goVer == nil || !strings.HasPrefix(from, "golang:"+string(goVer[1])) {
		t.Errorf("builder %q does not match go.mod's go %s", from, goVer[1])
	}
	builder := strings.Join(append(df.find(0, "RUN"), df.find(0, "ENV")...), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath"} {
		if !strings.Contains(builder, want) {
			t.Errorf("builder stage lacks %s", want)
		}
	}
	var targets []string
	for _, m := range buildTarget.FindAllStringSubmatch(builder, -1) {
		targets = append(targets, m[1])
	}
	for _, want := range []string{"./cmd/dsn-node", "./cmd/dsnctl"} {
		if !slices.Contains(targets, want) {
			t.Errorf("the image does not build %s (builds %v)", want, targets)
		}
	}
	// The targets exist and are commands.
	args := append([]string{"list", "-f", "{{.ImportPath}} {{.Name}}"}, targets...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", targets, err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasSuffix(line, " main") {
			t.Errorf("go list: %s is not a command (package main)", line)
		}
	}

	final := df.find(1, "FROM")[0]
	if !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("final stage %q: want distroless/static or scratch", final)
	}
	users := df.find(1, "USER")
	if len(users) == 0 {
		t.Fatal("final stage has no USER")
	}
	if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		t.Errorf("final stage runs as %s", users[len(users)-1])
	}
	expose := strings.Fields(strings.Join(df.find(1, "EXPOSE"), " "))
	for _, p := range []string{"5060/udp", "5060/tcp", "7946/udp", "7946/tcp", "8080"} {
		if !slices.ContainsFunc(expose, func(e string) bool { return e == p || e == p+"/tcp" }) {
			t.Errorf("EXPOSE lacks %s (has %v)", p, expose)
		}
	}
	entry := df.find(1, "ENTRYPOINT")
	if len(entry) != 1 || !strings.Contains(entry[0], "/dsn-node") {
		t.Errorf("ENTRYPOINT %v does not run dsn-node", entry)
	}
	copied := strings.Join(df.find(1, "COPY"), " ")
	for _, bin := range []string{"dsn-node", "dsnctl"} {
		if !strings.Contains(copied, "/"+bin) {
			t.Errorf("final stage does not copy %s", bin)
		}
	}
}
