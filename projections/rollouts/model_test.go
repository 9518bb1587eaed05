package rollouts

import (
	"encoding/json"
	"testing"
)

// Ensure a rollout restored from entries stored at different moments (a
// crash in the middle of a flush) gets the counts its targets say, and
// that the corrected entry is written; a consistent one is left alone.
func TestRestoredRecountsTargets(t *testing.T) {
	tests := []struct {
		name     string
		stored   Counts // in the rollout's own entry
		want     Counts
		rewrites bool
	}{
		{"rollout entry older than a target's", Counts{Total: 2, Running: 1, Succeeded: 1}, Counts{Total: 2, Succeeded: 2}, true},
		{"consistent", Counts{Total: 2, Succeeded: 2}, Counts{Total: 2, Succeeded: 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			entry := func(key string, v any) {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Restore(key, b); err != nil {
					t.Fatal(err)
				}
			}
			entry("rollout.R1", Rollout{RolloutID: "R1", Status: "completed", Counts: tt.stored, Waves: []Wave{{Wave: 0, Started: true, Counts: tt.stored}}})
			for _, ic := range []string{"IC-1", "IC-2"} {
				entry("target.R1."+ic, Target{RolloutID: "R1", InstallCode: ic, Status: "succeeded", Attempt: 1})
			}
			m.Changes() // as the runner does: restored entries are not changes
			m.Restored()
			d, err := m.Get("R1")
			if err != nil {
				t.Fatal(err)
			}
			if d.Counts != tt.want || d.Waves[0].Counts != tt.want {
				t.Fatalf("counts %+v, wave %+v; want %+v", d.Counts, d.Waves[0].Counts, tt.want)
			}
			if _, ok := m.Changes()["rollout.R1"]; ok != tt.rewrites {
				t.Fatalf("rollout entry written again: %v, want %v", ok, tt.rewrites)
			}
		})
	}
}
