package main

import (
	"bufio"
	"bytes"
	"context"
	"time"

	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/licensebus/licensebus/internal/pacer"

	"github.com/dustin/go-humanize"
)

// The soft memory limit a process gets when neither --memory-limit nor
// GOMEMLIMIT says otherwise: a guard against running out of memory, set
// well above what the process needs. Measured (docs/performance.md), a
// limit below the live heap makes the collector run without pause: the
// bench's 10k × 50 fleet took 175 s instead of 59 under an 800 MiB limit,
// its live heap being about 1.1 GB. So the default leaves the heap room:
// 3/4 of the cgroup's limit in a container (whose limit kills the
// process), else 1/2 of the machine's memory.
const (
	cgroupShare  = 0.75
	machineShare = 0.5
)

// runtimeSettings are the collector's settings in force, for the log.
type runtimeSettings struct {
	limit     int64  // soft memory limit in bytes, 0 for none
	from      string // flag, GOMEMLIMIT, default or none
	available int64  // the machine's or cgroup's memory, 0 if unknown
	gc        int    // GOGC, when fixed (flag or env); 0 when paced
	// pacing is the collector's policy when neither --gc-percent nor GOGC
	// fixes its ratio (internal/pacer).
	pacing *pacer.Policy
}

// gcLog is the collector's setting as the start-up log gives it.
func (rs runtimeSettings) gcLog() string {
	if rs.pacing == nil {
		return fmt.Sprintf("GOGC %d", rs.gc)
	}
	return fmt.Sprintf("paced: %s of headroom or %.0f%% of the live heap, whichever is more",
		humanize.IBytes(uint64(rs.pacing.Floor)), 100*rs.pacing.Share)
}

// pace runs the collector's policy, if any, until ctx ends.
func (rs runtimeSettings) pace(ctx context.Context) {
	if rs.pacing != nil {
		go pacer.Run(ctx, *rs.pacing, 100*time.Millisecond)
	}
}

// setRuntime applies --memory-limit and --gc-percent, as serve and bench
// take them, and returns the settings now in force.
func setRuntime(memLimit string, gcPercent int) (runtimeSettings, error) {
	avail, cgroup := memoryAvailable()
	rs, err := setMemoryLimit(memLimit, os.Getenv("GOMEMLIMIT") != "", avail, cgroup)
	if err != nil {
		return rs, err
	}
	if gcPercent == 0 && os.Getenv("GOGC") == "" {
		// The default: paced (internal/pacer), with a floor no more than a
		// quarter of the memory limit, for small machines.
		p := pacer.Default
		if rs.limit > 0 {
			p.Floor = min(p.Floor, rs.limit/4)
		}
		rs.pacing = &p
		return rs, nil
	}
	rs.gc, err = setGCPercent(gcPercent)
	return rs, err
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
// from a size such as 900MiB or 1GB, or "none"; "" keeps GOMEMLIMIT when
// it is set (env), else sets the default: a share of available, the
// cgroup's limit (cgroup) or the machine's memory; none if unknown.
func setMemoryLimit(s string, env bool, available int64, cgroup bool) (runtimeSettings, error) {
	rs := runtimeSettings{available: available}
	switch {
	case s == "none":
		debug.SetMemoryLimit(math.MaxInt64)
		rs.from = "none"
	case s != "":
		n, err := humanize.ParseBytes(s)
		if err != nil || n > math.MaxInt64 {
			return rs, usageError{fmt.Errorf("--memory-limit %q is not a size such as 900MiB or 2GB, or none", s)}
		}
		// A limit below what the process needs to start makes the
		// collector run without pause: a typo (12 for 12GiB), not a choice.
		if n < minMemoryLimit {
			return rs, usageError{fmt.Errorf("--memory-limit %s is below %s (sizes are bytes unless they say MiB, GiB, ...)", s, humanize.IBytes(minMemoryLimit))}
		}
		debug.SetMemoryLimit(int64(n))
		rs.from = "flag"
	case env:
		rs.from = "GOMEMLIMIT" // the runtime applied it at start
	case available <= 0:
		rs.from = "none: memory unknown"
	default:
		share, from := machineShare, "default: 1/2 of the machine's memory"
		if cgroup {
			share, from = cgroupShare, "default: 3/4 of the cgroup's memory limit"
		}
		debug.SetMemoryLimit(max(minMemoryLimit, int64(float64(available)*share)))
		rs.from = from
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		rs.limit = l
	}
	return rs, nil
}

// memoryAvailable is the memory this process may use: its cgroup's limit
// (cgroup true) when it has one below the machine's, else the machine's;
// 0 if unknown (not Linux).
func memoryAvailable() (int64, bool) {
	total := memTotal()
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) when there is no limit.
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			return n, true
		}
		break
	}
	return total, false
}

// memTotal is MemTotal of /proc/meminfo in bytes, 0 if unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
