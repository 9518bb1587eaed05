package rollout

import (
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers"
)

// DefaultConcurrency is how many targets a rollout runs at once unless its
// spec says.
const DefaultConcurrency = 50

// ID is the rollout a StartRollout command starts: its RolloutID, or one
// derived from the command's id, so a repeated command names the same
// rollout (the CLI derives it the same way to follow it).
func ID(commandID string, c *events.StartRollout) string {
	if c.RolloutID != "" {
		return c.RolloutID
	}
	return events.DeriveID(commandID, "rollout")
}

// Decide decides on rollout command commandID of type t (data d) on
// state s.
func Decide(s *State, commandID string, t events.Type, d events.Data) handlers.Decision {
	emit := func(et events.Type, data events.Data, name string) handlers.Decision {
		return handlers.Emit(et, data, events.DeriveID(commandID, name))
	}
	if c, ok := d.(*events.StartRollout); ok {
		id := ID(commandID, c)
		if r := s.Rollouts[id]; r != nil {
			return handlers.Refuse(events.ReasonAlreadyExists, "rollout %s exists already (%s)", id, r.Status)
		}
		if c.Spec.Kind == events.RolloutActivate && !s.Customers[c.Spec.CustomerID] {
			return handlers.Refuse(events.ReasonUnknownCustomer, "no customer account %s", c.Spec.CustomerID)
		}
		spec := c.Spec
		if spec.Concurrency == 0 {
			spec.Concurrency = DefaultConcurrency
		}
		return emit(events.RolloutStartedType, &events.RolloutStarted{RolloutID: id, Spec: spec, Waves: spec.Waves()}, "started")
	}
	ref, ok := d.(*events.RolloutRef)
	if !ok {
		return handlers.Refuse(events.ReasonUnknownType, "%s is not a rollout command", t)
	}
	r := s.Rollouts[ref.RolloutID]
	if r == nil {
		return handlers.Refuse(events.ReasonUnknownRollout, "no rollout %s", ref.RolloutID)
	}
	wrong := func(verb string) handlers.Decision {
		return handlers.Refuse(events.ReasonRolloutState, "cannot %s rollout %s: it is %s", verb, r.ID, r.Status)
	}
	switch t {
	case events.PauseRolloutType:
		if r.Status != Running {
			return wrong("pause")
		}
		return emit(events.RolloutPausedType, &events.RolloutRef{RolloutID: r.ID}, "paused")
	case events.ResumeRolloutType:
		if r.Status != Paused {
			return wrong("resume")
		}
		return emit(events.RolloutResumedType, &events.RolloutRef{RolloutID: r.ID}, "resumed")
	case events.CancelRolloutType:
		if r.Status != Running && r.Status != Paused {
			return wrong("cancel")
		}
		return emit(events.RolloutCancelledType, &events.RolloutRef{RolloutID: r.ID}, "cancelled")
	case events.RetryFailedType:
		if r.Status == Running || r.Status == Paused {
			return wrong("retry the failed targets of")
		}
		var failed []string
		for _, w := range r.Waves {
			for _, ic := range w {
				if r.Targets[ic].Status == Failed {
					failed = append(failed, ic)
				}
			}
		}
		if len(failed) == 0 {
			return handlers.Refuse(events.ReasonRolloutState, "rollout %s has no failed targets", r.ID)
		}
		return emit(events.RetryRequestedType, &events.RetryRequested{RolloutID: r.ID, Targets: failed}, "retry")
	}
	return handlers.Refuse(events.ReasonUnknownType, "%s is not a rollout command", t)
}

// Reasons are the refusals the rollout rules give (a target's failure
// reasons are its commands' refusals, pool_exhausted and no_outcome).
func Reasons() []events.Reason {
	return []events.Reason{events.ReasonAlreadyExists, events.ReasonUnknownCustomer, events.ReasonUnknownRollout,
		events.ReasonRolloutState, events.ReasonUnknownType, events.ReasonPoolExhausted, events.ReasonNoOutcome}
}
