package rollout

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"golang.org/x/time/rate"
)

// drive runs one rollout wave by wave until it is completed, aborted or
// cancelled, or ctx ends. Pausing stops new targets; those in flight finish.
func (x *Executor) drive(ctx context.Context, id string) {
	log := x.log.With().Str("rollout_id", id).Logger()
	var limiter *rate.Limiter
	for ctx.Err() == nil {
		x.mu.Lock()
		r := x.st.rollouts[id]
		status, changed := r.status, x.changed
		spec, waves, round, current := r.spec, r.waves, r.round, r.wave
		if limiter == nil && spec.RatePerMin > 0 {
			limiter = rate.NewLimiter(rate.Limit(float64(spec.RatePerMin)/60), 1)
		}
		// The next wave is the first with targets still to run.
		next := -1
		for w, ics := range waves {
			if slices.ContainsFunc(ics, func(ic string) bool { s := r.targets[ic].status; return s == Pending || s == Running }) {
				next = w
				break
			}
		}
		succeeded, failed := r.counts()
		x.mu.Unlock()

		switch status {
		case Paused:
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		case Running:
		default:
			return
		}
		if next < 0 {
			x.record(ctx, id, events.RolloutCompletedType, &events.RolloutCompleted{RolloutID: id, Succeeded: succeeded, Failed: failed}, fmt.Sprint("completed/", round))
			log.Info().Int("succeeded", succeeded).Int("failed", failed).Msg("rollout completed")
			return
		}
		if next > current {
			// The threshold is checked before a wave starts: the wave that
			// tripped it has finished, and nothing new starts.
			finished := succeeded + failed
			if spec.AbortPercent > 0 && finished >= max(1, spec.AbortMin) && float64(failed)*100 > spec.AbortPercent*float64(finished) {
				x.record(ctx, id, events.RolloutAbortedType, &events.RolloutAborted{RolloutID: id, Threshold: spec.Threshold(), Failed: failed, Finished: finished}, fmt.Sprint("aborted/", round))
				log.Warn().Int("failed", failed).Int("finished", finished).Str("threshold", spec.Threshold()).Msg("rollout aborted")
				return
			}
			x.record(ctx, id, events.WaveStartedType, &events.WaveStarted{RolloutID: id, Wave: next, Targets: len(waves[next])}, fmt.Sprintf("wave/%d/%d", round, next))
		}
		x.runWave(ctx, id, next, spec, limiter)
	}
}

// runWave starts the wave's remaining targets within the concurrency and
// rate limits and waits for those it started.
func (x *Executor) runWave(ctx context.Context, id string, wave int, spec events.RolloutSpec, limiter *rate.Limiter) {
	sem := make(chan struct{}, max(1, spec.Concurrency))
	var wg sync.WaitGroup
	defer wg.Wait()
	x.mu.Lock()
	ics := x.st.rollouts[id].waves[wave]
	x.mu.Unlock()
	for _, ic := range ics {
		x.mu.Lock()
		r := x.st.rollouts[id]
		status := r.status
		t := *r.targets[ic]
		x.mu.Unlock()
		if status != Running || ctx.Err() != nil {
			return
		}
		if t.status != Pending && t.status != Running {
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
		// A target found running was in flight when the last driver
		// stopped: it goes on with the same attempt, hence the same ids.
		attempt := t.attempt + 1
		if t.status == Running {
			attempt = t.attempt
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			x.runTarget(ctx, id, ic, wave, attempt, spec)
		}()
	}
}

// runTarget runs attempts on one target until one succeeds, a failure is
// final, or ctx ends.
func (x *Executor) runTarget(ctx context.Context, id, ic string, wave, attempt int, spec events.RolloutSpec) {
	for ctx.Err() == nil {
		x.record(ctx, id, events.TargetStartedType, &events.TargetStarted{RolloutID: id, InstallCode: ic, Wave: wave, Attempt: attempt}, fmt.Sprintf("%s/%d/started", ic, attempt))
		licenses, note, rej := x.target(ctx, id, ic, attempt, spec)
		x.release(id, ic)
		if ctx.Err() != nil {
			return // stopped mid-target: the next driver resumes it
		}
		if rej == nil {
			x.record(ctx, id, events.TargetSucceededType, &events.TargetSucceeded{RolloutID: id, InstallCode: ic, Attempt: attempt, LicenseIDs: licenses, Note: note}, fmt.Sprintf("%s/%d/succeeded", ic, attempt))
			return
		}
		final := !retryable(rej.Reason) || attempt > spec.Retries
		x.record(ctx, id, events.TargetFailedType, &events.TargetFailed{RolloutID: id, InstallCode: ic, Attempt: attempt, Reason: rej.Reason, Message: rej.Message, Final: final}, fmt.Sprintf("%s/%d/failed", ic, attempt))
		if final {
			return
		}
		attempt++
	}
}

// retryable reasons are the ones another attempt can change.
func retryable(r events.Reason) bool {
	switch r {
	case events.ReasonNoOutcome, events.ReasonAlreadyActive, events.ReasonTransferInFlight:
		return true
	}
	return false
}

// target does one attempt on one SmartServer, step by step, each step a
// command whose id is derived from (rollout, target, attempt, step).
func (x *Executor) target(ctx context.Context, id, ic string, attempt int, spec events.RolloutSpec) ([]string, string, *events.Rejection) {
	// Every step is caused by the attempt's target_started event.
	cause := events.DeriveID(id, fmt.Sprintf("%s/%d/started", ic, attempt))
	step := func(name string, t events.Type, d events.Data) (outcome, *events.Rejection) {
		return x.do(ctx, fmt.Sprintf("%s%s-%s-%d-%s", outcomePrefix, id, ic, attempt, name), cause, t, d)
	}
	if spec.Kind == events.RolloutTransfer {
		if _, rej := step("transfer", events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic}); rej != nil {
			if rej.Reason == events.ReasonNoActiveLicenses {
				return nil, "nothing to transfer", nil
			}
			return nil, "", rej
		}
		return nil, "", nil
	}
	if spec.SetCustomerID {
		if _, rej := step("customer", events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: spec.CustomerID}); rej != nil {
			return nil, "", rej
		}
	}
	if len(spec.Activate) > 0 {
		if _, rej := step("download", events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}); rej != nil {
			return nil, "", rej
		}
	}
	var got []string
	for i, want := range spec.Activate {
		// A lost race for a license (another rollout bound it first) moves
		// on to the next license of the pool.
		for pick := 0; ; pick++ {
			lid, rej := x.pick(id, ic, spec, want)
			if rej != nil {
				return got, "", rej
			}
			o, rej := step(fmt.Sprintf("activate%d-%d", i, pick), events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid})
			if rej == nil {
				got = append(got, o.license)
				break
			}
			if rej.Reason != events.ReasonAlreadyActive || pick >= 16 {
				return got, "", rej
			}
		}
	}
	if spec.AutoProvision {
		if _, rej := step("autoprovision", events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: ic, Enabled: true}); rej != nil {
			return got, "", rej
		}
	}
	return got, "", nil
}

// pick reserves a license of the customer's pool for a target: the first
// (by id) that is in the cloud, not reserved by another target, and of the
// wanted kind — capacity with the wanted device count, maintenance covering
// the capacity the rollout activates and not expired.
func (x *Executor) pick(id, ic string, spec events.RolloutSpec, want events.LicenseWant) (string, *events.Rejection) {
	x.mu.Lock()
	defer x.mu.Unlock()
	owner := id + "/" + ic
	need := want.Devices
	if want.Kind == events.Maintenance && need == 0 {
		for _, w := range spec.Activate {
			if w.Kind == events.Capacity {
				need = max(need, w.Devices)
			}
		}
	}
	today := x.cfg.Now().UTC().Format(time.DateOnly)
	lid := candidate(x.st, spec.CustomerID, want.Kind, need, today, false, func(lid string) bool {
		o, taken := x.reserved[lid]
		return taken && o != owner
	})
	if lid == "" {
		return "", events.Reject(events.ReasonPoolExhausted, "no %s license left in the pool of customer %s", describe(want, need), spec.CustomerID)
	}
	x.reserved[lid] = owner
	return lid, nil
}

// candidate is the pool rule shared by picking and planning: a license of
// the customer in the cloud, of the kind, with the wanted device count
// (capacity) or covering it and not expired (maintenance), not taken.
// Planning wants the same answer every time (lowest id); a running pick
// takes the first it meets, which keeps a pick O(licenses taken) rather
// than O(pool).
func candidate(st *state, customer, kind string, need int, today string, lowest bool, taken func(string) bool) string {
	best := ""
	for lid := range st.free[customer][kind] {
		l := st.licenses[lid]
		if taken(lid) {
			continue
		}
		if kind == events.Capacity && need > 0 && l.devices != need {
			continue
		}
		if kind == events.Maintenance && (l.devices < need || l.expires < today) {
			continue
		}
		if !lowest {
			return lid
		}
		if best == "" || lid < best {
			best = lid
		}
	}
	return best
}

func describe(w events.LicenseWant, need int) string {
	if w.Kind == events.Capacity && need > 0 {
		return fmt.Sprintf("capacity:%d", need)
	}
	if w.Kind == events.Maintenance && need > 0 {
		return fmt.Sprintf("maintenance covering %d devices", need)
	}
	return w.Kind
}

// release drops the target's reservations; bound licenses are no longer in
// the pool anyway.
func (x *Executor) release(id, ic string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	owner := id + "/" + ic
	for lid, o := range x.reserved {
		if o == owner {
			delete(x.reserved, lid)
		}
	}
}

// do sends a command with a fixed id and waits for its outcome. A command
// sent before (by an earlier driver) is not sent twice in effect: JetStream
// or the handler recognises the id, and the fold may already know the
// outcome.
func (x *Executor) do(ctx context.Context, cmdID, cause string, t events.Type, d events.Data) (outcome, *events.Rejection) {
	ch := make(chan outcome, 1)
	x.mu.Lock()
	if o, ok := x.st.outcomes[cmdID]; ok {
		x.mu.Unlock()
		return o, o.rejection()
	}
	x.waiters[cmdID] = append(x.waiters[cmdID], ch)
	x.mu.Unlock()

	m, err := events.New(t, d, events.Meta{ID: cmdID, Source: Source, CorrelationID: cmdID, CausationID: cause, Actor: Source})
	if err != nil {
		return outcome{}, events.AsRejection(err)
	}
	wctx, cancel := context.WithTimeout(ctx, x.cfg.OutcomeTimeout)
	defer cancel()
	if _, err := x.js.PublishMsg(wctx, bus.Msg(m)); err != nil {
		x.forget(cmdID, ch)
		return outcome{}, events.Reject(events.ReasonNoOutcome, "send %s: %v", t, err)
	}
	select {
	case o := <-ch:
		return o, o.rejection()
	case <-wctx.Done():
		x.forget(cmdID, ch)
		return outcome{}, events.Reject(events.ReasonNoOutcome, "no outcome for %s on %s within %s", t, d.Key(), x.cfg.OutcomeTimeout)
	}
}

func (x *Executor) forget(id string, ch chan outcome) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ws := slices.DeleteFunc(x.waiters[id], func(c chan outcome) bool { return c == ch })
	if len(ws) == 0 {
		delete(x.waiters, id)
	} else {
		x.waiters[id] = ws
	}
}

func (o outcome) rejection() *events.Rejection {
	if o.accepted {
		return nil
	}
	return &events.Rejection{Reason: o.reason, Message: o.message}
}

// record appends a rollout event with an id derived from the rollout and
// name, so a resumed driver recording the same fact again is deduplicated.
// Its correlation id is the rollout id, which is also the correlation id
// of the command that started it.
func (x *Executor) record(ctx context.Context, id string, t events.Type, d events.Data, name string) {
	x.mu.Lock()
	cause := x.st.rollouts[id].startedBy
	x.mu.Unlock()
	ev, err := events.New(t, d, events.Meta{ID: events.DeriveID(id, name), Source: Source, CorrelationID: id, CausationID: cause, Actor: Source})
	if err != nil {
		x.log.Error().Err(err).Str("rollout_id", id).Msg("build rollout event")
		return
	}
	for ctx.Err() == nil {
		seq, err := x.app.Append(ctx, ev, "", 0)
		if err == nil {
			_ = x.fold.WaitFor(ctx, seq)
			return
		}
		x.log.Warn().Err(err).Str("rollout_id", id).Msg("record rollout event; retrying")
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
