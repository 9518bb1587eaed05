package bench

import (
	"os"
	"testing"
	"time"
)

// Ensure CPU time is read for this process, by pid too, and that a process
// that does not exist is reported as unmeasured rather than as zero.
func TestCPUTime(t *testing.T) {
	spin := func() {
		// Enough work to cross several clock ticks.
		for end := time.Now().Add(80 * time.Millisecond); time.Now().Before(end); {
		}
	}
	for _, tc := range []struct {
		name   string
		pid    int
		wantOK bool
	}{
		{"self", 0, true},
		{"self by pid", os.Getpid(), true},
		{"no such process", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, ok := cpuTime(tc.pid)
			if ok != tc.wantOK {
				t.Fatalf("cpuTime(%d) ok=%v, want %v", tc.pid, ok, tc.wantOK)
			}
			if !ok {
				return
			}
			spin()
			after, _ := cpuTime(tc.pid)
			if after-before < 2*clockTick {
				t.Errorf("cpuTime(%d) moved %v over 80ms of spinning, want at least %v", tc.pid, after-before, 2*clockTick)
			}
		})
	}
}
