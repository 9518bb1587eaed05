package driver

import (
	"maps"
	"testing"
)

// Ensure a finished target lets go of exactly its own licenses, planned or
// picked, and that the index of holds follows the holds.
func TestReleaseLetsGoOfItsOwnHolds(t *testing.T) {
	x := &Executor{held: map[string]string{}, holds: map[string][]string{}, plans: map[string]map[string][]string{}}
	x.plans["r1"] = map[string][]string{"IC1": {"L1", "L2"}, "IC2": {"L3"}}
	x.hold("L1", "r1/IC1")
	x.hold("L2", "r1/IC1")
	x.hold("L3", "r1/IC2")
	x.hold("L4", "r2/IC1") // another rollout's target, same install code
	x.hold("L1", "r1/IC1") // held again by its holder: no second entry
	x.hold("L5", "r1/IC1") // picked at run time
	x.unplan("r1", "IC1", "L2")
	x.release("r1", "IC1")
	want := map[string]string{"L3": "r1/IC2", "L4": "r2/IC1"}
	if !maps.Equal(x.held, want) {
		t.Fatalf("held %v, want %v", x.held, want)
	}
	for owner, lids := range x.holds {
		for _, lid := range lids {
			if x.held[lid] != owner {
				t.Errorf("holds says %s holds %s, held says %q", owner, lid, x.held[lid])
			}
		}
	}
	if len(x.holds) != 2 {
		t.Errorf("holds %v, want the two targets left", x.holds)
	}
	if _, ok := x.plans["r1"]["IC1"]; ok {
		t.Errorf("plan of r1/IC1 kept after release")
	}
}
