package client

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrPending is the outcome query's answer (code CodePending) when no
// outcome came within the wait: ask again.
var ErrPending = errors.New("no outcome yet")

// Bounds of one long poll for an outcome.
const (
	defaultOutcomeWait = 20 * time.Second
	maxOutcomeWait     = time.Minute
)

// AwaitOutcome is the server's side of the outcome query: it waits up to
// p.WaitMillis for the first outcome under any of p.CorrelationIDs in the
// outcomes bucket (which the projections write after every other view, so a
// caller who has it finds the views updated). Asked in a SmartServer's
// scope (p.InstallCode), it answers only with an outcome that concerns that
// SmartServer: a SmartServer's credentials may not read the outcome of
// another's command, whose correlation id it might have learnt, and may not
// watch the bucket itself.
func AwaitOutcome(ctx context.Context, outcomes jetstream.KeyValue, p Params) (*licensing.Outcome, error) {
	if len(p.CorrelationIDs) == 0 {
		return nil, events.Reject(events.ReasonInvalidData, "the outcome query needs correlation_ids")
	}
	for _, corr := range p.CorrelationIDs {
		if corr == "" || len(corr) > 255 || strings.ContainsAny(corr, "*> \t") {
			return nil, events.Reject(events.ReasonInvalidData, "correlation id %q is not a command id", corr)
		}
	}
	wait := defaultOutcomeWait
	if p.WaitMillis > 0 {
		wait = min(time.Duration(p.WaitMillis)*time.Millisecond, maxOutcomeWait)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := outcomes.WatchFiltered(ctx, p.CorrelationIDs)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, ErrPending
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var o licensing.Outcome
			if err := json.Unmarshal(e.Value(), &o); err != nil {
				return nil, err
			}
			if p.InstallCode != "" && !concerns(&o, p.InstallCode) {
				return nil, events.Reject(events.ReasonPermissionDenied, "the outcome of command %s does not concern SmartServer %s", o.CorrelationID, p.InstallCode)
			}
			return &o, nil
		case <-ctx.Done():
			return nil, ErrPending
		}
	}
}

// concerns says whether an outcome is about the SmartServer: its event or
// rejection names the install code.
func concerns(o *licensing.Outcome, installCode string) bool {
	var d struct {
		InstallCode string `json:"install_code"`
		Aggregate   string `json:"aggregate"`
		ID          string `json:"id"`
	}
	if json.Unmarshal(o.Data, &d) != nil {
		return false
	}
	return d.InstallCode == installCode || d.Aggregate == "smartserver" && d.ID == installCode
}
