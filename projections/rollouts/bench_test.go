package rollouts

import (
	"fmt"
	"testing"

	"github.com/licensebus/licensebus/events"
)

// BenchmarkApplyTarget: one target of a 10,000-target rollout started and
// succeeded, per op — the cost must not grow with the rollout. Run with:
// go test -run '^$' -bench . ./projections/rollouts/
func BenchmarkApplyTarget(b *testing.B) {
	const rid = "60000000-0000-4000-8000-000000000001"
	targets := make([]string, 10000)
	for i := range targets {
		targets[i] = fmt.Sprintf("SS-%05d", i)
	}
	ev := func(t events.Type, d events.Data, i int) *events.Message {
		m, err := events.New(t, d, events.Meta{ID: fmt.Sprintf("70000000-0000-4000-8000-%012d", i), Source: "/bench"})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	m := New()
	spec := events.RolloutSpec{Kind: events.RolloutTransfer, Targets: targets, Concurrency: 50}
	m.Apply(1, ev(events.RolloutStartedType, &events.RolloutStarted{RolloutID: rid, Spec: spec, Waves: spec.Waves()}, 0))
	seq, i := uint64(2), 0
	b.ReportAllocs()
	for b.Loop() {
		ic := targets[i%len(targets)]
		m.Apply(seq, ev(events.TargetStartedType, &events.TargetStarted{RolloutID: rid, InstallCode: ic, Attempt: i + 1}, i))
		m.Apply(seq+1, ev(events.TargetSucceededType, &events.TargetSucceeded{RolloutID: rid, InstallCode: ic, Attempt: i + 1}, i))
		seq, i = seq+2, i+1
	}
}
