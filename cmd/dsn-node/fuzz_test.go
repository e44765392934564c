package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadFlags feeds arbitrary -config files and environment values to the
// loader: it must return an error or a configuration, never panic, and
// buildConfig must not panic on whatever the loader accepted.
func FuzzLoadFlags(f *testing.F) {
	f.Add([]byte("name: a\ndomain: d.example\njoin: [1.2.3.4:7946]\nreplicas: 3\n"), "3")
	f.Add([]byte("reps: -1\ndns-ttl: 5x\n"), "x")
	f.Add([]byte("- a\n- b\n"), "")
	f.Add([]byte("name: {a: b}\n"), "0")
	f.Add([]byte("sip: \"[::1]:5060\"\nadmin: ''\nroute-mode: redirect\n"), "99999999999999999999")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte, replicas string) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, file, 0o600); err != nil {
			t.Skip()
		}
		var o options
		fs := newFlagSet(&o, &bytes.Buffer{})
		env := map[string]string{"DSN_REPLICAS": replicas}
		if err := loadFlags(fs, []string{"-config", p}, func(k string) string { return env[k] }); err != nil {
			return
		}
		_, _, _ = buildConfig(&o, nopLogger())
	})
}
