package projections

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// Problem is a way the read models are out of step with the event stream.
type Problem struct {
	// Model is the model concerned; empty for the stream itself.
	Model  string `json:"model,omitempty"`
	Detail string `json:"detail"`
}

// Check compares checkpoints (model name → checkpoint, as
// Runner.Checkpoints gives them) with the event stream as it is now, and
// the stream's settings with what serve creates: a checkpoint past the
// stream's end (the stream was deleted and created again), events removed
// before a model applied them, a changed setting. Such a model is not
// caught up whatever its checkpoint says; a rebuild mends it.
func Check(ctx context.Context, js jetstream.JetStream, checkpoints map[string]uint64) ([]Problem, error) {
	want, _ := bus.WantedConfig(events.EventsStream)
	st, err := bus.CheckStream(ctx, js, want)
	if err != nil {
		return nil, err
	}
	var probs []Problem
	if len(st.Drift) > 0 {
		probs = append(probs, Problem{Detail: fmt.Sprintf("stream %s: settings differ from what serve creates: %s", st.Name, strings.Join(st.Drift, "; "))})
	}
	names := make([]string, 0, len(checkpoints))
	for n := range checkpoints {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if p := bus.PositionProblem(st.Name, st.State, checkpoints[n]); p != "" {
			probs = append(probs, Problem{Model: n, Detail: fmt.Sprintf("checkpoint %d: %s", checkpoints[n], p)})
		}
	}
	return probs, nil
}
