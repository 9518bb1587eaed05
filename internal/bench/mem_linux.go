package bench

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// peakRSSMB is the process's maximum resident set size so far.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // kB on Linux
}

// currentRSSMB is the process's resident set size now (VmRSS).
func currentRSSMB() float64 { return procStatusMB("/proc/self/status", "VmRSS:") }

// processRSSMB is another process's peak and current resident set size
// (VmHWM, VmRSS), read before it ends.
func processRSSMB(pid int) (peak, now float64) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	return procStatusMB(path, "VmHWM:"), procStatusMB(path, "VmRSS:")
}

func procStatusMB(path, field string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
