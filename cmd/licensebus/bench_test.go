package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Ensure `licensebus bench` runs every phase and reports every figure. The
// tiny sizes say nothing about speed, so no figure is compared with a
// threshold; they only have to be there, and positive where measured.
func TestBenchTiny(t *testing.T) {
	// With a CPU and a heap profile of the NATS server's process, written
	// by that process.
	natsProf, natsHeap := filepath.Join(t.TempDir(), "nats.prof"), filepath.Join(t.TempDir(), "nats.heap")
	out := mustCLI(t, "", "bench", "--tiny", "-o", "json", "--nats-cpuprofile", natsProf, "--nats-memprofile", natsHeap)
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("bench -o json: %v in %q", err, out)
	}
	positive := []string{
		"raw_append_msgs_per_s", "raw_sync_p50_ms", "raw_sync_p99_ms", "append_events_per_s",
		"activations_per_s", "msgs_per_activation", "product_msgs_per_s", "efficiency",
		"e2e_p50_ms", "e2e_p99_ms", "raw_replay_msgs_per_s", "rebuild_events_per_s", "rebuild_ratio",
		"peak_rss_mb", "rss_after_fleet_mb", "cores", "payload_bytes", "messages",
		"activations_auth_on_per_s", "activations_auth_off_per_s", "auth_activations", "console_p99_ms",
	}
	for _, k := range positive {
		v, ok := got[k].(float64)
		if !ok {
			t.Errorf("%s=%v (%T), want a number", k, got[k], got[k])
			continue
		}
		if v <= 0 {
			t.Errorf("%s=%v, want > 0", k, v)
		}
	}
	for _, k := range []string{"fleet_targets", "fleet_devices", "fleet_seconds_to_green", "fleet_targets_per_min"} {
		if v, ok := got[k].(float64); !ok || v < 0 {
			t.Errorf("%s=%v, want a number >= 0", k, got[k])
		}
	}
	// The NATS server ran in a process of its own (this test binary again),
	// whose memory is reported apart.
	if got["nats_process"] != "own" {
		t.Errorf("nats_process=%v, want own", got["nats_process"])
	}
	if v, _ := got["nats_peak_rss_mb"].(float64); runtime.GOOS == "linux" && v <= 0 {
		t.Errorf("nats_peak_rss_mb=%v, want > 0", got["nats_peak_rss_mb"])
	}
	// CPU per unit of work, split by process: keys always there, numbers
	// where measured (Linux; a tiny run may fall inside one 10 ms clock
	// tick, so no figure must be positive; cpu_linux_test.go checks the
	// clock).
	for _, k := range []string{"raw_cpu_us_per_msg", "nats_cpu_us_per_raw_msg", "cpu_us_per_activation", "nats_cpu_us_per_activation", "nats_cost_per_msg_vs_raw",
		"replay_cpu_us_per_msg", "nats_replay_cpu_us_per_msg", "rebuild_cpu_us_per_event", "nats_rebuild_cpu_us_per_event"} {
		if v, ok := got[k].(float64); !ok || v < 0 {
			t.Errorf("%s=%v, want a number >= 0", k, got[k])
		}
	}
	// The collector's figures of both processes: the bytes an activation
	// allocates in each (the NATS server's process answers over its
	// control lines), its cycles and CPU at half load.
	for _, k := range []string{"alloc_kb_per_activation", "nats_alloc_kb_per_activation"} {
		if v, _ := got[k].(float64); v <= 0 {
			t.Errorf("%s=%v, want > 0", k, got[k])
		}
	}
	for _, k := range []string{"e2e_gc_cycles", "nats_e2e_gc_cycles", "e2e_gc_cores", "nats_e2e_gc_cores"} {
		if v, ok := got[k].(float64); !ok || v < 0 {
			t.Errorf("%s=%v, want a number >= 0", k, got[k])
		}
	}
	// Raw JetStream beside the latency phase, from the probe's process:
	// it sends its first message as it starts, so there is a sample.
	probe, _ := got["raw_probe"].(map[string]any)
	if n, _ := probe["samples"].(float64); n < 1 {
		t.Errorf("raw_probe=%v, want samples", got["raw_probe"])
	}
	if p99, _ := probe["p99_ms"].(float64); p99 <= 0 {
		t.Errorf("raw_probe=%v, want a p99 > 0", got["raw_probe"])
	}
	// The latency split into the five steps of an activation, each timed.
	hops, _ := got["e2e_hops"].([]any)
	if len(hops) != 5 {
		t.Errorf("e2e_hops=%v, want 5 steps", got["e2e_hops"])
	}
	for _, h := range hops {
		h, _ := h.(map[string]any)
		if name, _ := h["hop"].(string); name == "" {
			t.Errorf("e2e hop %v without a name", h)
		}
		if p99, ok := h["p99_ms"].(float64); !ok || p99 < 0 {
			t.Errorf("e2e hop %v: p99_ms want a number >= 0", h)
		}
	}
	for _, k := range []string{"auth_overhead", "auth_cpu_overhead", "cpu_us_per_activation_auth_on", "cpu_us_per_activation_auth_off"} {
		if _, ok := got[k].(float64); !ok {
			t.Errorf("%s=%v, want a number", k, got[k])
		}
	}
	for _, k := range []string{"go_version", "server_version"} {
		if v, ok := got[k].(string); !ok || v == "" {
			t.Errorf("%s=%v, want a version", k, got[k])
		}
	}
	// pprof writes gzip-compressed protocol buffers.
	if b, err := os.ReadFile(natsProf); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("NATS server CPU profile: %d bytes, err %v; want a gzip-compressed profile", len(b), err)
	}
	if b, err := os.ReadFile(natsHeap); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("NATS server heap profile: %d bytes, err %v; want a gzip-compressed profile", len(b), err)
	}
}

// Ensure runtime settings that make no sense are refused before anything
// runs, with a reason naming the flag.
func TestBenchRuntimeFlagsRefused(t *testing.T) {
	for _, args := range [][]string{{"--memory-limit", "lots"}, {"--memory-limit", "12"}, {"--gc-percent", "-5"},
		{"--nats-cpuprofile", "nats.prof", "--shared-process"}, {"--nats-memprofile", "nats.heap", "--shared-process"}, {"--soak", "2"}, {"--soak-pool", "0"}} {
		t.Run(args[0]+"="+args[1], func(t *testing.T) {
			r := cli(t, "", append([]string{"bench", "--tiny"}, args...)...)
			if r.code != exitUsage || !strings.Contains(r.err, args[0]) {
				t.Fatalf("exit %d, stderr %q; want %d and a reason naming %s", r.code, r.err, exitUsage, args[0])
			}
		})
	}
}

// Ensure a profile path the NATS server's process could not write is
// refused before the run, as a path of this process's profiles is, not
// found out in the child's log after minutes of measuring.
func TestBenchUnwritableProfileRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	for _, flag := range []string{"--nats-cpuprofile", "--nats-memprofile", "--memprofile"} {
		t.Run(flag, func(t *testing.T) {
			r := cli(t, "", "bench", "--tiny", flag, filepath.Join(dir, "x.prof"))
			if r.code == exitOK || !strings.Contains(r.err, "missing") || strings.Contains(r.err, "bench: raw") {
				t.Fatalf("exit %d, stderr %q; want a refusal naming the path before any phase runs", r.code, r.err)
			}
		})
	}
}

// Ensure `bench --soak` runs its activations and transfers, none refused,
// and reports both processes' memory at the four marks, with the default
// soft memory limit in force (issue 21).
func TestBenchSoakSmall(t *testing.T) {
	out := mustCLI(t, "", "bench", "--soak", "40", "--soak-pool", "10", "-o", "json")
	var got struct {
		Activations int       `json:"activations"`
		Rejected    *uint64   `json:"rejected"`
		RSS         []float64 `json:"soak_rss_mb"`
		NATSRSS     []float64 `json:"nats_soak_rss_mb"`
		Heap        []float64 `json:"soak_live_heap_mb"`
		Offered     float64   `json:"offered_commands_per_s"`
		Measured    float64   `json:"measured_activations_per_s"`
		LimitMB     float64   `json:"memory_limit_mb"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("bench --soak -o json: %v in %q", err, out)
	}
	if got.Rejected == nil {
		t.Fatalf("no rejected count in %s", out)
	}
	if got.Activations != 40 || *got.Rejected != 0 {
		t.Errorf("activations %d, rejected %d; want 40 and 0", got.Activations, *got.Rejected)
	}
	for name, a := range map[string][]float64{"soak_rss_mb": got.RSS, "soak_live_heap_mb": got.Heap, "nats_soak_rss_mb": got.NATSRSS} {
		if len(a) != 4 || slices.Contains(a, 0) {
			t.Errorf("%s %v, want 4 figures above 0", name, a)
		}
	}
	if got.Measured <= 0 || math.Abs(got.Offered-got.Measured/2) > 1 { // both rounded
		t.Errorf("offered %v commands/s, measured %v activations/s; want half", got.Offered, got.Measured)
	}
	if got.LimitMB <= 0 {
		t.Errorf("memory_limit_mb %v, want the default limit", got.LimitMB)
	}
}

// Ensure a soak over a single SmartServer, where each command follows the
// previous one's outcome at once, never sends an activation into the
// transfer before it: the SmartServer refuses it (transfer_in_progress)
// until licenses_transferred, after the Manage Licenses view stopped
// showing the license active. The soak used to wait for the view, and a
// refused activation then stalled it for 30 s ("projections applied
// nothing").
func TestBenchSoakOneSmartServer(t *testing.T) {
	out := mustCLI(t, "", "bench", "--soak", "100", "--soak-pool", "1", "-o", "json")
	var got struct {
		Activations int     `json:"activations"`
		Rejected    *uint64 `json:"rejected"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("bench --soak -o json: %v in %q", err, out)
	}
	if got.Activations != 100 || got.Rejected == nil || *got.Rejected != 0 {
		t.Errorf("activations %d, rejected %v; want 100 and 0", got.Activations, got.Rejected)
	}
}
