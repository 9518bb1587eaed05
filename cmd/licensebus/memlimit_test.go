package main

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/licensebus/licensebus/internal/pacer"
)

// Ensure the soft memory limit is on by default, a share of the memory the
// cgroup or the machine gives (issue 21), and that a flag or GOMEMLIMIT
// wins over the default.
func TestDefaultMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	const gib = 1 << 30
	tests := []struct {
		name      string
		flag      string
		env       bool
		available int64
		cgroup    bool
		preset    int64 // the limit in force before (GOMEMLIMIT's)
		want      int64 // 0: none
		from      string
	}{
		{"a machine: half its memory", "", false, 24 * gib, false, math.MaxInt64, 12 * gib, "default: 1/2 of the machine's memory"},
		{"a 2 GiB container: 3/4 of its limit", "", false, 2 * gib, true, math.MaxInt64, 3 * gib / 2, "default: 3/4 of the cgroup's memory limit"},
		{"memory unknown: none", "", false, 0, false, math.MaxInt64, 0, "none: memory unknown"},
		{"GOMEMLIMIT wins over the default", "", true, 24 * gib, false, 3 * gib, 3 * gib, "GOMEMLIMIT"},
		{"the flag wins over GOMEMLIMIT", "2GiB", true, 24 * gib, false, 3 * gib, 2 * gib, "flag"},
		{"none turns it off", "none", false, 24 * gib, false, 3 * gib, 0, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(tt.preset)
			rs, err := setMemoryLimit(tt.flag, tt.env, tt.available, tt.cgroup)
			if err != nil {
				t.Fatal(err)
			}
			if rs.limit != tt.want || rs.from != tt.from {
				t.Errorf("limit %d from %q, want %d from %q", rs.limit, rs.from, tt.want, tt.from)
			}
			if got := debug.SetMemoryLimit(-1); (tt.want == 0 && got != math.MaxInt64) || (tt.want != 0 && got != tt.want) {
				t.Errorf("runtime limit %d, want %d", got, tt.want)
			}
		})
	}
	if n, _ := memoryAvailable(); n <= 0 {
		t.Errorf("memoryAvailable() = %d on Linux, want the machine's or cgroup's memory", n)
	}
}

// Ensure the collector is paced by default, and that --gc-percent or GOGC
// fix its ratio instead.
func TestCollectorPacedByDefault(t *testing.T) {
	before, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(before); debug.SetMemoryLimit(limit) })
	tests := []struct {
		name  string
		flag  int
		gogc  string
		paced bool
		gc    int
	}{
		{"default", 0, "", true, 0},
		{"--gc-percent", 80, "", false, 80},
		{"GOGC", 0, "150", false, 100}, // the runtime applied GOGC at start; here it is what the test set
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			debug.SetGCPercent(100)
			rs, err := setRuntime("", tt.flag)
			if err != nil {
				t.Fatal(err)
			}
			if (rs.pacing != nil) != tt.paced || rs.gc != tt.gc {
				t.Fatalf("paced %v, GOGC %d; want paced %v, GOGC %d", rs.pacing != nil, rs.gc, tt.paced, tt.gc)
			}
			if tt.paced && (rs.pacing.Floor <= 0 || rs.pacing.Floor > pacer.Default.Floor || !strings.Contains(rs.gcLog(), "paced")) {
				t.Fatalf("policy %+v, log %q", *rs.pacing, rs.gcLog())
			}
		})
	}
}
