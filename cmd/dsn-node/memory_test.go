package main

import (
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestResolveMemory(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if s, ok := m[name]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	meminfo := "MemTotal:       24000000 kB\nMemFree:        1000 kB\n"
	cases := []struct {
		name      string
		flag      string
		gc        int
		env       map[string]string
		files     map[string]string
		limit     uint64
		from      string
		gcPercent int
		err       string
	}{
		{name: "RAM quarter", flag: "auto", files: map[string]string{"/proc/meminfo": meminfo},
			limit: 24000000 << 10 / 4, from: "RAM/4", gcPercent: 400},
		{name: "cgroup v2 limit wins over RAM", flag: "auto", files: map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "1073741824\n"},
			limit: 1073741824 / 10 * 9, from: "cgroup", gcPercent: 400},
		{name: "cgroup max means none", flag: "auto", files: map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"},
			limit: 24000000 << 10 / 4, from: "RAM/4", gcPercent: 400},
		{name: "cgroup v1 no limit", flag: "", files: map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"},
			limit: 24000000 << 10 / 4, from: "RAM/4", gcPercent: 400},
		{name: "GOMEMLIMIT and GOGC", flag: "auto", env: map[string]string{"GOMEMLIMIT": "3GiB", "GOGC": "150"},
			files: map[string]string{"/proc/meminfo": meminfo}, limit: 3 << 30, from: "GOMEMLIMIT", gcPercent: 0},
		{name: "flag beats everything", flag: "512MiB", gc: 200, env: map[string]string{"GOMEMLIMIT": "3GiB", "GOGC": "150"},
			limit: 512 << 20, from: "flag", gcPercent: 200},
		{name: "plain bytes", flag: "100000000", limit: 100000000, from: "flag", gcPercent: 400},
		{name: "nothing readable", flag: "auto", limit: fallbackMemoryLimit, from: "fallback", gcPercent: 400},
		{name: "bad size", flag: "4GB", err: "-memory-limit"},
		{name: "too small", flag: "1MiB", err: "at least 64MiB"},
		{name: "bad gc", flag: "auto", gc: 10, err: "-gc-percent"},
		{name: "bad GOMEMLIMIT", flag: "auto", env: map[string]string{"GOMEMLIMIT": "lots"}, err: "GOMEMLIMIT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := resolveMemory(c.flag, c.gc, env(c.env), files(c.files))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.limit != c.limit || m.limitFrom != c.from || m.gcPercent != c.gcPercent {
				t.Fatalf("got limit %d from %s, gc %d; want %d from %s, gc %d", m.limit, m.limitFrom, m.gcPercent, c.limit, c.from, c.gcPercent)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "12B": 12, "3KiB": 3 << 10, "5 MiB": 5 << 20, "2GiB": 2 << 30, "1TiB": 1 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "1.5GiB", "99999999999TiB", "1GB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}

func TestMemorySizesTheGate(t *testing.T) {
	var opts options
	fs := newFlagSet(&opts, &strings.Builder{})
	if err := loadFlags(fs, []string{"-dev"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	applyDevDefaults(&opts, fs)
	o := &opts
	o.mem = memorySettings{limit: 6 << 30}
	cfg, _, err := buildConfig(o, nopLogger())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Overload.MaxHeap != 3<<30 || cfg.Overload.MaxTransactions != (3<<30)/(12<<10) {
		t.Fatalf("6 GiB: max heap %d, window %d; want 3 GiB and %d", cfg.Overload.MaxHeap, cfg.Overload.MaxTransactions, (3<<30)/(12<<10))
	}
	if cfg.Overload.TrackTTL != defaultTxLinger {
		t.Fatalf("window TTL %v, want -sip-tx-linger's %v", cfg.Overload.TrackTTL, defaultTxLinger)
	}
	o.txLinger = 32 * time.Second
	if cfg, _, err = buildConfig(o, nopLogger()); err != nil || cfg.Overload.TrackTTL != 32*time.Second {
		t.Fatalf("-sip-tx-linger 32s: window TTL %v, %v", cfg.Overload.TrackTTL, err)
	}
	o.maxTransactions = 20000
	if cfg, _, err = buildConfig(o, nopLogger()); err != nil || cfg.Overload.MaxTransactions != 20000 {
		t.Fatalf("-max-transactions 20000: window %d, %v", cfg.Overload.MaxTransactions, err)
	}
	o.maxTransactions = -1
	if _, _, err = buildConfig(o, nopLogger()); err == nil {
		t.Fatal("-max-transactions -1 accepted")
	}
}
