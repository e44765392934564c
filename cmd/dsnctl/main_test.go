package main

import (
	"testing"
)

func TestUsage(t *testing.T) {
	r := dsnctl(t, nil).want(t, 2)
	mustContain(t, r.stderr, "Usage:", "dns-check", "enum add-prefix PREFIX DOMAIN", "-tsig-key-file", "Exit status")

	r = dsnctl(t, nil, "-h").want(t, 0)
	mustContain(t, r.stdout, "Commands:", "status", "ring", "lookup AOR", "bindings AOR", "reps", "DSNCTL_ADMIN")

	for _, cmd := range [][]string{{"help", "dns-check"}, {"dns-check", "-h"}} {
		r = dsnctl(t, nil, cmd...).want(t, 0)
		mustContain(t, r.stdout, "Usage: dsnctl dns-check", "STALE", "MISSING", "-axfr", "-ignore")
	}
	r = dsnctl(t, nil, "enum", "add-prefix", "-h").want(t, 0)
	mustContain(t, r.stdout, "wildcard", "-ttl")
	r = dsnctl(t, nil, "help", "ring").want(t, 0)
	mustContain(t, r.stdout, "-all")
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command", []string{"stat"}, []string{`unknown command "stat"`, "dsnctl -h"}},
		{"unknown flag", []string{"-adm", "x", "status"}, []string{"flag provided but not defined: -adm"}},
		{"unknown command flag", []string{"status", "-all", "x"}, []string{"dsnctl status: flag provided but not defined: -all", "dsnctl status -h"}},
		{"bad output", []string{"-o", "yaml", "status"}, []string{`-o "yaml": want table or json`}},
		{"extra argument", []string{"status", "now"}, []string{"want no arguments, got 1"}},
		{"missing AOR", []string{"lookup"}, []string{"want 1 argument(s) (AOR)", "usage: dsnctl lookup AOR"}},
		{"bad timeout", []string{"-timeout", "0s", "status"}, []string{"-timeout 0s: must be positive"}},
		{"help for nothing", []string{"help", "nothing"}, []string{`unknown command "nothing"`}},
		{"empty -all", []string{"ring", "-all", ","}, []string{"-all: no address given"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dsnctl(t, nil, tc.args...).want(t, 2)
			mustContain(t, r.stderr, tc.want...)
		})
	}
}
