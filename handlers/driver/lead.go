package driver

import (
	"context"
	"errors"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/rollout"
	"github.com/licensebus/licensebus/internal/bus"
)

// Job is the name of driving the rollouts as a singleton job.
const Job = "rollouts"

// elected returns the Ready hook of an elected executor: it campaigns for
// Job and, while elected, drives every running rollout, each one that
// starts or resumes later too, until the term ends.
func (x *Executor) elected(ctx context.Context) func() {
	return func() {
		go func() { _ = x.cfg.Election.Lead(ctx, Job, x.lead) }()
	}
}

// lead is one term: drive what runs, and look again whenever a rollout
// changes. Drivers stop with the term (its ctx); the next holder resumes
// their targets.
func (x *Executor) lead(ctx context.Context) error {
	for ctx.Err() == nil {
		var ids []string
		var changed chan struct{}
		x.sh.Read(func() {
			changed = x.changed
			for id, r := range x.st.Rollouts {
				if r.Status == rollout.Running {
					ids = append(ids, id)
				}
			}
		})
		for _, id := range ids {
			x.startDriving(ctx, id)
		}
		select {
		case <-changed:
		case <-ctx.Done():
		}
	}
	return nil
}

// append records a rollout event. An elected driver expects the rollout's
// last event to be the one its state has, so that a driver that lost the
// job (paused past its lease) cannot record after the one that has it; a
// lost race is checked against the lease before it is tried again, and
// reported as bus.ErrConcurrency once the fold has the event that won.
func (x *Executor) append(ctx context.Context, id string, ev *events.Message) error {
	if x.cfg.Election == nil {
		return x.sh.Append(ctx, ev)
	}
	x.recmu.Lock()
	var expect uint64
	x.sh.Read(func() { expect = x.seqs[id] })
	err := x.sh.AppendOn(ctx, ev, events.AggregateFilter("rollout", id), expect)
	x.recmu.Unlock()
	var ce *bus.ConflictError
	if !errors.As(err, &ce) {
		return err
	}
	if cerr := bus.CheckLeader(ctx); cerr != nil {
		return cerr
	}
	if werr := x.sh.Fold().WaitFor(ctx, ce.Actual); werr != nil {
		return werr
	}
	return err
}
