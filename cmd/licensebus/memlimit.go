package main

import (
	"fmt"
	"math"
	"runtime/debug"

	"github.com/dustin/go-humanize"
)

// setRuntime applies --memory-limit and --gc-percent, as serve and bench
// take them, and returns the settings now in force.
func setRuntime(memLimit string, gcPercent int) (limit int64, gc int, err error) {
	if limit, err = setMemoryLimit(memLimit); err != nil {
		return 0, 0, err
	}
	gc, err = setGCPercent(gcPercent)
	return limit, gc, err
}

// setGCPercent sets the collector's target heap growth (Go's GOGC); 0
// leaves the runtime's setting. With a memory limit, a high percentage
// makes the collector run mostly when the heap nears the limit.
func setGCPercent(p int) (int, error) {
	if p < 0 {
		return 0, usageError{fmt.Errorf("--gc-percent %d: want a positive percentage, or 0 for GOGC's", p)}
	}
	if p > 0 {
		debug.SetGCPercent(p)
		return p, nil
	}
	cur := debug.SetGCPercent(100) // the runtime has no getter: read it and put it back
	debug.SetGCPercent(cur)
	return cur, nil
}

// minMemoryLimit is the smallest --memory-limit taken.
const minMemoryLimit = 64 << 20

// setMemoryLimit sets this process's soft memory limit (Go's GOMEMLIMIT)
// from a size such as 900MiB or 1GB; "" leaves the runtime's setting. It
// returns the limit in bytes now in force, 0 for none.
func setMemoryLimit(s string) (int64, error) {
	if s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil || n > math.MaxInt64 {
			return 0, usageError{fmt.Errorf("--memory-limit %q is not a size such as 900MiB or 2GB", s)}
		}
		// A limit below what the process needs to start makes the
		// collector run without pause: a typo (12 for 12GiB), not a choice.
		if n < minMemoryLimit {
			return 0, usageError{fmt.Errorf("--memory-limit %s is below %s (sizes are bytes unless they say MiB, GiB, ...)", s, humanize.IBytes(minMemoryLimit))}
		}
		debug.SetMemoryLimit(int64(n))
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return l, nil
	}
	return 0, nil
}
