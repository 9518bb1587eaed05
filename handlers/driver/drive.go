package driver

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/rollout"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/tracing"
	"golang.org/x/time/rate"
)

// drive runs one rollout until it is completed, aborted or cancelled, or
// ctx ends, doing what rollout.NextStep decides. Pausing stops new
// targets; those in flight finish.
func (x *Executor) drive(ctx context.Context, id string) {
	log := x.log.With().Str("rollout_id", id).Logger()
	x.plan(id)
	var limiter *rate.Limiter
	for ctx.Err() == nil {
		var next rollout.Next
		var spec events.RolloutSpec
		var round int
		var changed chan struct{}
		x.sh.Read(func() {
			r := x.st.Rollouts[id]
			next, spec, round, changed = rollout.NextStep(r), r.Spec, r.Round, x.changed
		})
		if limiter == nil && spec.RatePerMin > 0 {
			limiter = rate.NewLimiter(rate.Limit(float64(spec.RatePerMin)/60), 1)
		}
		switch next.Action {
		case rollout.Stop:
			return
		case rollout.Wait:
			select {
			case <-changed:
			case <-ctx.Done():
			}
		case rollout.Complete:
			x.record(ctx, id, events.RolloutCompletedType, &events.RolloutCompleted{RolloutID: id, Succeeded: next.Succeeded, Failed: next.Failed}, rollout.CompletedName(round))
			log.Info().Int("succeeded", next.Succeeded).Int("failed", next.Failed).Msg("rollout completed")
			return
		case rollout.Abort:
			finished := next.Succeeded + next.Failed
			x.record(ctx, id, events.RolloutAbortedType, &events.RolloutAborted{RolloutID: id, Threshold: spec.Threshold(), Failed: next.Failed, Finished: finished}, rollout.AbortedName(round))
			log.Warn().Int("failed", next.Failed).Int("finished", finished).Str("threshold", spec.Threshold()).Msg("rollout aborted")
			return
		case rollout.StartWave:
			var n int
			x.sh.Read(func() { n = len(x.st.Rollouts[id].Waves[next.Wave]) })
			x.record(ctx, id, events.WaveStartedType, &events.WaveStarted{RolloutID: id, Wave: next.Wave, Targets: n}, rollout.WaveName(round, next.Wave))
		case rollout.RunWave:
			x.runWave(ctx, id, next.Wave, spec, limiter)
		}
	}
}

// plan computes the plan of a rollout's targets still to run and holds its
// licenses for them: the run follows the plan a dry run showed.
func (x *Executor) plan(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var p rollout.Plan
	x.sh.Read(func() {
		r := x.st.Rollouts[id]
		if r.Spec.Kind != events.RolloutActivate {
			return
		}
		// Targets found running resume their attempt: their steps' outcomes
		// may be known already, so they get no plan (see target).
		p = rollout.MakePlan(x.st, r.Spec, x.today(), x.heldBy(""), func(ic string) bool { return r.Targets[ic].Status == rollout.Pending })
	})
	planned := p.Planned()
	x.plans[id] = planned
	for ic, lids := range planned {
		owner := id + "/" + ic
		for _, lid := range lids {
			x.hold(lid, owner)
		}
	}
}

// runWave starts the wave's remaining targets within the concurrency and
// rate limits and waits for those it started.
func (x *Executor) runWave(ctx context.Context, id string, wave int, spec events.RolloutSpec, limiter *rate.Limiter) {
	sem := make(chan struct{}, max(1, spec.Concurrency))
	var wg sync.WaitGroup
	defer wg.Wait()
	var ics []string
	x.sh.Read(func() { ics = x.st.Rollouts[id].Waves[wave] })
	for _, ic := range ics {
		var status string
		var t rollout.Target
		x.sh.Read(func() {
			r := x.st.Rollouts[id]
			status, t = r.Status, *r.Targets[ic]
		})
		if status != rollout.Running || ctx.Err() != nil {
			return
		}
		if !rollout.Runnable(&t) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				<-sem
				return
			}
		}
		attempt, resumed := rollout.Attempt(&t), t.Status == rollout.Running
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			x.runTarget(ctx, id, ic, wave, attempt, resumed, spec)
		}()
	}
}

// runTarget runs attempts on one target until one succeeds, a failure is
// final, or ctx ends.
// A resumed target was in flight when the last driver stopped: its
// first attempt here may find its steps sent already.
func (x *Executor) runTarget(ctx context.Context, id, ic string, wave, attempt int, resumed bool, spec events.RolloutSpec) {
	for ctx.Err() == nil {
		x.record(ctx, id, events.TargetStartedType, &events.TargetStarted{RolloutID: id, InstallCode: ic, Wave: wave, Attempt: attempt}, rollout.TargetName(ic, attempt, "started"))
		licenses, note, rej := x.target(ctx, id, ic, attempt, resumed, spec)
		resumed = false
		if ctx.Err() != nil {
			return // stopped mid-target: the next driver resumes it
		}
		if rej == nil {
			x.release(id, ic)
			x.record(ctx, id, events.TargetSucceededType, &events.TargetSucceeded{RolloutID: id, InstallCode: ic, Attempt: attempt, LicenseIDs: licenses, Note: note}, rollout.TargetName(ic, attempt, "succeeded"))
			return
		}
		final := rollout.Final(rej.Reason, attempt, spec)
		if final {
			x.release(id, ic)
		}
		x.record(ctx, id, events.TargetFailedType, &events.TargetFailed{RolloutID: id, InstallCode: ic, Attempt: attempt, Reason: rej.Reason, Message: rej.Message, Final: final}, rollout.TargetName(ic, attempt, "failed"))
		if final {
			return
		}
		attempt++
	}
}

// target does one attempt on one SmartServer, step by step as the rules
// list them, each step a command whose id derives from (rollout, target,
// attempt, step).
func (x *Executor) target(ctx context.Context, id, ic string, attempt int, resumed bool, spec events.RolloutSpec) ([]string, string, *events.Rejection) {
	cause := rollout.Cause(id, ic, attempt)
	do := func(s rollout.Step) (rollout.Outcome, *events.Rejection) {
		return x.do(ctx, rollout.CommandID(id, ic, attempt, s.Name), cause, s.Type, s.Data)
	}
	before, after := rollout.Steps(spec, ic)
	var notes []string
	for _, s := range before {
		_, rej := do(s)
		ok, note := rollout.StepDone(s, rej)
		if !ok {
			return nil, "", rej
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	var got []string
	for i := range spec.Activate {
		for pick := 0; ; pick++ {
			// A step a driver before this one sent has its outcome: whatever
			// license it named, that outcome stands, so nothing is picked.
			cmdID := rollout.CommandID(id, ic, attempt, rollout.ActivateStep(ic, i, pick, "").Name)
			o, known := x.outcome(cmdID)
			var rej *events.Rejection
			lid := o.License
			if !known && resumed {
				// Sent before the stop, its outcome not in yet: send the same
				// command again and take its outcome, whatever is free now.
				if a := x.sent(ctx, cmdID, ic); a != nil {
					lid = a.LicenseID
					o, rej = do(rollout.ActivateStep(ic, i, pick, lid))
					known = true
				}
			}
			if known {
				if rej == nil {
					rej = o.Rejection()
				}
			} else {
				var note string
				var prej *events.Rejection
				lid, note, prej = x.pick(id, ic, spec, i)
				if prej != nil {
					return got, "", prej
				}
				if note != "" {
					notes = append(notes, note)
				}
				o, rej = do(rollout.ActivateStep(ic, i, pick, lid))
			}
			if rej == nil {
				got = append(got, o.License)
				break
			}
			if !rollout.PickAgain(rej, pick) {
				return got, "", rej
			}
			if lid != "" {
				x.unplan(id, ic, lid) // lost it: the next pick takes another
			}
		}
	}
	for _, s := range after {
		if _, rej := do(s); rej != nil {
			return got, "", rej
		}
	}
	note := ""
	for i, n := range notes {
		if i > 0 {
			note += "; "
		}
		note += n
	}
	return got, note, nil
}

// pick chooses the license the target activates for its i-th want and
// holds it for the target.
func (x *Executor) pick(id, ic string, spec events.RolloutSpec, i int) (string, string, *events.Rejection) {
	x.mu.Lock()
	defer x.mu.Unlock()
	owner := id + "/" + ic
	planned := ""
	if lids := x.plans[id][ic]; i < len(lids) {
		planned = lids[i]
	}
	var lid, note string
	var rej *events.Rejection
	x.sh.Read(func() { lid, note, rej = rollout.Pick(x.st, spec, i, planned, x.today(), x.heldBy(owner)) })
	if rej == nil {
		x.hold(lid, owner)
	}
	return lid, note, rej
}

// unplan forgets a license the target planned or picked and lost.
func (x *Executor) unplan(id, ic, lid string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	owner := id + "/" + ic
	if x.held[lid] == owner {
		delete(x.held, lid)
		x.holds[owner] = slices.DeleteFunc(x.holds[owner], func(l string) bool { return l == lid })
	}
	if lids := x.plans[id][ic]; lids != nil {
		for i, l := range lids {
			if l == lid {
				lids[i] = ""
			}
		}
	}
}

// release lets go of what a finished target held; its bound licenses left
// the pool anyway.
func (x *Executor) release(id, ic string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	owner := id + "/" + ic
	x.letGo(owner, x.holds[owner])
	delete(x.plans[id], ic)
}

// hold holds lid for owner ("rollout/install-code"). Caller holds mu.
func (x *Executor) hold(lid, owner string) {
	if x.held[lid] == owner {
		return
	}
	if prev, ok := x.held[lid]; ok {
		x.holds[prev] = slices.DeleteFunc(x.holds[prev], func(l string) bool { return l == lid })
	}
	x.held[lid] = owner
	x.holds[owner] = append(x.holds[owner], lid)
}

// letGo drops owner's holds, lids. Caller holds mu.
func (x *Executor) letGo(owner string, lids []string) {
	for _, lid := range lids {
		if x.held[lid] == owner {
			delete(x.held, lid)
		}
	}
	delete(x.holds, owner)
}

// do sends a command with a fixed id and waits for its outcome. A command
// sent before (by an earlier driver) is not sent twice in effect: JetStream
// or the handler recognises the id, and the fold may know the outcome.
func (x *Executor) do(ctx context.Context, cmdID, cause string, t events.Type, d events.Data) (rollout.Outcome, *events.Rejection) {
	// Waiting first, then looking: an outcome folded in between is told
	// or found, never missed.
	ch := make(chan rollout.Outcome, 1)
	x.wait(cmdID, ch)
	var known *rollout.Outcome
	x.sh.Read(func() {
		if o, ok := x.st.Outcomes[cmdID]; ok {
			known = &o
		}
	})
	if known != nil {
		x.forget(cmdID, ch)
		return *known, known.Rejection()
	}
	// Each step on a target starts a trace of its own: a rollout's would
	// hold every target's.
	meta := events.Meta{ID: cmdID, Source: Source, CorrelationID: cmdID, CausationID: cause, Actor: Source}
	tracing.Inject(ctx, &meta)
	m, err := events.New(t, d, meta)
	if err != nil {
		return rollout.Outcome{}, events.AsRejection(err)
	}
	wctx, cancel := context.WithTimeout(ctx, x.cfg.OutcomeTimeout)
	defer cancel()
	if _, err := x.js.PublishMsg(wctx, bus.Msg(m)); err != nil {
		x.forget(cmdID, ch)
		return rollout.Outcome{}, events.Reject(events.ReasonNoOutcome, "send %s: %v", t, err)
	}
	select {
	case o := <-ch:
		return o, o.Rejection()
	case <-wctx.Done():
		x.forget(cmdID, ch)
		return rollout.Outcome{}, events.Reject(events.ReasonNoOutcome, "no outcome for %s on %s within %s", t, d.Key(), x.cfg.OutcomeTimeout)
	}
}

func (x *Executor) wait(id string, ch chan rollout.Outcome) {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	x.waiters[id] = append(x.waiters[id], ch)
}

func (x *Executor) forget(id string, ch chan rollout.Outcome) {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	ws := slices.DeleteFunc(x.waiters[id], func(c chan rollout.Outcome) bool { return c == ch })
	if len(ws) == 0 {
		delete(x.waiters, id)
	} else {
		x.waiters[id] = ws
	}
}

// record appends a rollout event with an id derived from the rollout and
// name, so a driver recording the same fact again is deduplicated. Its
// correlation id is the rollout id, also the correlation id of the
// command that started it.
func (x *Executor) record(ctx context.Context, id string, t events.Type, d events.Data, name string) {
	var cause string
	x.sh.Read(func() { cause = x.st.Rollouts[id].StartedBy })
	ev, err := events.New(t, d, events.Meta{ID: rollout.EventID(id, name), Source: Source, CorrelationID: id, CausationID: cause, Actor: Source})
	if err != nil {
		x.log.Error().Err(err).Str("rollout_id", id).Msg("build rollout event")
		return
	}
	for ctx.Err() == nil {
		err := x.append(ctx, id, ev)
		if err == nil {
			return
		}
		if errors.Is(err, bus.ErrFenced) {
			x.log.Warn().Err(err).Str("rollout_id", id).Msg("rollout event not recorded: another process drives the rollouts now")
			return
		}
		if errors.Is(err, bus.ErrConcurrency) {
			continue // decided again on the state that won
		}
		x.log.Warn().Err(err).Str("rollout_id", id).Msg("record rollout event; retrying")
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// outcome is the outcome of command id, if the fold has it.
func (x *Executor) outcome(id string) (rollout.Outcome, bool) {
	var o rollout.Outcome
	var ok bool
	x.sh.Read(func() { o, ok = x.st.Outcomes[id] })
	return o, ok
}

// sent is the activation a driver before this one stored as command id for
// SmartServer ic, nil if it stored none: the last activation on the
// SmartServer's subject is it, or the command was never stored.
func (x *Executor) sent(ctx context.Context, id, ic string) *events.ActivateLicense {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, _ := events.Lookup(events.ActivateLicenseType)
	// From the stream's leader: a replica may not have it yet.
	last, err := bus.LastMsg(cctx, x.js, events.CommandsStream, events.CommandSubject(info, &events.ActivateLicense{InstallCode: ic}))
	if err != nil || last.Header.Get(events.MsgIDHeader) != id {
		return nil
	}
	m, err := events.Decode(last.Header, last.Data)
	if err != nil {
		return nil
	}
	a, _ := m.Data.(*events.ActivateLicense)
	return a
}
