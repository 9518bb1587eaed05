package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go/jetstream"
)

var errPending = errors.New("no outcome yet")

// reasonPermissionDenied refuses what the caller's identity does not
// cover, as the CLI reports a refusal of the NATS server.
const reasonPermissionDenied events.Reason = "permission_denied"

// Bounds of one long poll for an outcome.
const (
	defaultOutcomeWait = 20 * time.Second
	maxOutcomeWait     = time.Minute
)

// outcome answers the outcome query: it waits up to p.WaitMillis for the
// command's outcome in the outcomes bucket (which the projections write
// after every other view, so a caller who has it finds the views updated).
// Asked in a SmartServer's scope, it answers only with an outcome that
// concerns that SmartServer: a SmartServer's credentials may not read the
// outcome of another's command, whose correlation id it might have learnt.
// The caller could watch the bucket itself; a SmartServer may not read it.
func (s *Server) outcome(ctx context.Context, p client.Params) (*licensing.Outcome, error) {
	corr := p.CorrelationID
	if corr == "" || len(corr) > 255 || strings.ContainsAny(corr, "*> \t") {
		return nil, events.Reject(events.ReasonInvalidData, "correlation id %q is not a command id", corr)
	}
	wait := defaultOutcomeWait
	if p.WaitMillis > 0 {
		wait = min(time.Duration(p.WaitMillis)*time.Millisecond, maxOutcomeWait)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	w, err := s.outcomesKV.Watch(ctx, corr)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errPending
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var o licensing.Outcome
			if err := json.Unmarshal(e.Value(), &o); err != nil {
				return nil, err
			}
			if p.InstallCode != "" && !concerns(&o, p.InstallCode) {
				return nil, events.Reject(reasonPermissionDenied, "the outcome of command %s does not concern SmartServer %s", corr, p.InstallCode)
			}
			return &o, nil
		case <-ctx.Done():
			return nil, errPending
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
