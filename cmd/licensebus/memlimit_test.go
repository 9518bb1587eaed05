package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// Ensure the soft memory limit is on by default, derived from the memory
// the machine or cgroup gives (issue 21), and that a flag or GOMEMLIMIT
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
		preset    int64 // the limit in force before (GOMEMLIMIT's)
		want      int64 // 0: none
		from      string
	}{
		{"a large machine: the budget", "", false, 23 * gib, math.MaxInt64, budgetJoined, "default"},
		{"a 1 GiB cgroup: half of it", "", false, gib, math.MaxInt64, gib / 2, "default"},
		{"memory unknown: the budget", "", false, 0, math.MaxInt64, budgetJoined, "default"},
		{"GOMEMLIMIT wins over the default", "", true, 23 * gib, 3 * gib, 3 * gib, "GOMEMLIMIT"},
		{"the flag wins over GOMEMLIMIT", "2GiB", true, 23 * gib, 3 * gib, 2 * gib, "flag"},
		{"none turns it off", "none", false, 23 * gib, 3 * gib, 0, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(tt.preset)
			rs, err := setMemoryLimit(tt.flag, budgetJoined, tt.env, tt.available)
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
	if memoryAvailable() <= 0 {
		t.Errorf("memoryAvailable() = %d on Linux, want the machine's or cgroup's memory", memoryAvailable())
	}
}
