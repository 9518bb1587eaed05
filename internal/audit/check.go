package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// CheckStreams compares the audit stream and its two sources with what
// serve creates them with, and cursor, how far the trail has read the
// sources, with what they hold now. Each finding is a StreamChanged
// problem: a source deleted and created again, messages removed before the
// trail recorded them, or settings someone changed (a lower MaxMsgs drops
// messages, deny flags switched off let them be removed).
func CheckStreams(ctx context.Context, js jetstream.JetStream, cursor trail.Cursor) ([]trail.Problem, error) {
	wants := []jetstream.StreamConfig{StreamConfig()}
	for _, name := range []string{events.CommandsStream, events.EventsStream} {
		w, _ := bus.WantedConfig(name)
		wants = append(wants, w)
	}
	var probs []trail.Problem
	for _, w := range wants {
		st, err := bus.CheckStream(ctx, js, w)
		if err != nil {
			return nil, err
		}
		if len(st.Drift) > 0 {
			probs = append(probs, trail.Problem{Kind: trail.StreamChanged, Where: "stream " + w.Name,
				Detail: "settings differ from what serve creates: " + strings.Join(st.Drift, "; ")})
		}
		if w.Name == trail.Stream {
			continue
		}
		if p := bus.PositionProblem(w.Name, st.State, cursor.Of(w.Name)); p != "" {
			probs = append(probs, trail.Problem{Kind: trail.StreamChanged, Where: "stream " + w.Name,
				Detail: fmt.Sprintf("the trail has recorded it up to seq %d, but %s", cursor.Of(w.Name), p)})
		}
	}
	return probs, nil
}
