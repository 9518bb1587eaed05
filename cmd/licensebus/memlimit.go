package main

import (
	"fmt"
	"math"
	"runtime/debug"

	"github.com/dustin/go-humanize"
)

// setMemoryLimit sets this process's soft memory limit (Go's GOMEMLIMIT)
// from a size such as 900MiB or 1GB; "" leaves the runtime's setting. It
// returns the limit in bytes now in force, 0 for none.
func setMemoryLimit(s string) (int64, error) {
	if s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil || n == 0 || n > math.MaxInt64 {
			return 0, usageError{fmt.Errorf("--memory-limit %q is not a size such as 900MiB or 2GB", s)}
		}
		debug.SetMemoryLimit(int64(n))
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return l, nil
	}
	return 0, nil
}
