package main

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
)

// The node's memory settings: the Go runtime's soft memory limit and
// garbage-collection target, and from the limit the overload gate's
// bounds (overload.Config.ForMemory). A node's live heap is mostly SIP
// transactions that sipgo keeps 32 s after their final response, so the
// collector scans the same large, pointer-rich heap over and over: at
// Go's default GOGC=100 that was a third of a node's CPU under call
// load (bench/kamailio). The node therefore lets the heap grow to 5x
// its live size (gc percent 400) and relies on the memory limit to
// collect sooner when memory is short.

// defaultGCPercent is the garbage-collection target used unless GOGC or
// -gc-percent says otherwise.
const defaultGCPercent = 400

// memorySettings are what the node applies to the runtime.
type memorySettings struct {
	limit     uint64 // bytes
	limitFrom string // where limit came from: flag, GOMEMLIMIT, cgroup, RAM/4, fallback
	gcPercent int    // 0: leave the runtime's (GOGC)
	gcFrom    string
}

// fallbackMemoryLimit is used when neither the environment, the cgroup
// nor /proc/meminfo tells the machine's memory.
const fallbackMemoryLimit = 2 << 30

// resolveMemory works out the settings from -memory-limit ("auto" or a
// size) and -gc-percent (0: auto), with getenv and readFile injected.
// auto takes GOMEMLIMIT when set, else 90% of the cgroup's memory limit,
// else a quarter of the machine's RAM (as the JVM sizes its heap).
func resolveMemory(limitFlag string, gcPercent int, getenv func(string) string, readFile func(string) ([]byte, error)) (memorySettings, error) {
	var m memorySettings
	switch {
	case gcPercent < 0 || (gcPercent > 0 && gcPercent < 25):
		return m, fmt.Errorf("-gc-percent %d: want 0 (auto: GOGC if set, else %d) or at least 25", gcPercent, defaultGCPercent)
	case gcPercent > 0:
		m.gcPercent, m.gcFrom = gcPercent, "flag"
	case getenv("GOGC") != "":
		m.gcFrom = "GOGC" // already applied by the runtime
	default:
		m.gcPercent, m.gcFrom = defaultGCPercent, "default"
	}
	if s := strings.TrimSpace(limitFlag); s != "" && s != "auto" {
		n, err := parseSize(s)
		if err != nil {
			return m, fmt.Errorf("-memory-limit %q: %w (e.g. 4GiB, 512MiB, or auto)", limitFlag, err)
		}
		if n < 64<<20 {
			return m, fmt.Errorf("-memory-limit %q: want at least 64MiB", limitFlag)
		}
		m.limit, m.limitFrom = n, "flag"
		return m, nil
	}
	if s := getenv("GOMEMLIMIT"); s != "" && s != "off" {
		n, err := parseSize(s)
		if err != nil {
			return m, fmt.Errorf("GOMEMLIMIT %q: %w", s, err)
		}
		m.limit, m.limitFrom = n, "GOMEMLIMIT"
		return m, nil
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n >= 1<<60 {
			continue // "max", or cgroup v1's "no limit"
		}
		m.limit, m.limitFrom = n/10*9, "cgroup"
		return m, nil
	}
	if b, err := readFile("/proc/meminfo"); err == nil {
		if kib := memTotalKiB(b); kib > 0 {
			m.limit, m.limitFrom = kib<<10/4, "RAM/4"
			return m, nil
		}
	}
	m.limit, m.limitFrom = fallbackMemoryLimit, "fallback"
	return m, nil
}

// apply sets the runtime's memory limit and GC target.
func (m memorySettings) apply() {
	debug.SetMemoryLimit(int64(min(m.limit, 1<<62)))
	if m.gcPercent > 0 {
		debug.SetGCPercent(m.gcPercent)
	}
}

// memTotalKiB reads MemTotal from /proc/meminfo.
func memTotalKiB(meminfo []byte) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

// parseSize parses a byte count the way GOMEMLIMIT is written: a number
// with an optional suffix B, KiB, MiB, GiB or TiB.
func parseSize(s string) (uint64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	num, shift := s, uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a size in bytes with an optional B, KiB, MiB, GiB or TiB")
	}
	if shift > 0 && n > (1<<63)>>shift {
		return 0, fmt.Errorf("too large")
	}
	return n << shift, nil
}
