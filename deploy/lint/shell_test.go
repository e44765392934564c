package lint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShellScriptsParse runs bash -n on every script under deploy/.
func TestShellScriptsParse(t *testing.T) {
	bash := requireTool(t, "bash")
	var scripts []string
	err := filepath.WalkDir(deployDir(t), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".run" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".sh") {
			scripts = append(scripts, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no shell script found under deploy/")
	}
	for _, s := range scripts {
		if out, err := exec.Command(bash, "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
		if st, err := os.Stat(s); err == nil && st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}
}

// TestEmbeddedScriptsParse runs sh -n on the shell scripts inside the
// compose file and the StatefulSet's init container ($$ is a literal $
// in both).
func TestEmbeddedScriptsParse(t *testing.T) {
	sh := requireTool(t, "sh")
	check := func(where, script string) {
		script = strings.ReplaceAll(script, "$$", "$")
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s\n%s", where, err, out, script)
		}
	}
	compose := readDocs(t, filepath.Join(deployDir(t), "compose", "compose.yaml"))[0]
	n := 0
	for name, svc := range mapAt(compose, "services") {
		if ep := list(svc, "entrypoint"); len(ep) > 0 && strings.HasSuffix(ep[0].(string), "sh") {
			for _, c := range list(svc, "command") {
				check("compose "+name, c.(string))
				n++
			}
		}
	}
	sts := k8sObjects(t)["StatefulSet/dsn"]
	for _, c := range list(sts, "spec", "template", "spec", "initContainers") {
		for _, a := range list(c, "args") {
			check("init container "+str(c, "name"), a.(string))
			n++
		}
	}
	if n < 3 {
		t.Errorf("checked %d embedded scripts, want at least 3", n)
	}
}
