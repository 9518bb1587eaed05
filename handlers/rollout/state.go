// Package rollout holds the rules of a fleet-wide license rollout: the
// rollout commands (start, pause, resume, cancel, retry failed), the plan
// of which license goes to which SmartServer in which wave, and what its
// driver — a process manager — does next: start a wave, run a target's
// steps, retry, abort, complete. Pure functions, see package handlers.
//
// A rollout is event-sourced on "lb.evt.rollout.<id>.>"; its steps on a
// target are ordinary SmartServer commands whose ids derive from the
// rollout, the target, the attempt and the step, so a rollout driven again
// after a crash repeats ids, never effects.
package rollout

import (
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/small"
)

// Target and rollout statuses.
const (
	Pending   = "pending"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Skipped   = "skipped" // not reached before an abort or cancel
	Paused    = "paused"
	Cancelled = "cancelled"
	Aborted   = "aborted"
	Completed = "completed"
)

// Target is one SmartServer of a rollout.
type Target struct {
	Wave     int
	Attempt  int // attempts started
	Status   string
	Reason   events.Reason
	Message  string
	Licenses []string
}

// Rollout is one rollout's state.
type Rollout struct {
	ID      string
	Spec    events.RolloutSpec
	Waves   [][]string
	Status  string
	Wave    int // last wave started in this round
	Round   int // retry-failed rounds
	Targets map[string]*Target
	Actor   string
	// StartedBy is the id of the started event: the cause of everything
	// the rollout records, so its trace is one tree.
	StartedBy string
	// Ended is when it completed, aborted or was cancelled (zero while it
	// runs or is paused).
	Ended time.Time
}

// Counts are the rollout's finished targets.
func (r *Rollout) Counts() (succeeded, failed int) {
	for _, t := range r.Targets {
		switch t.Status {
		case Succeeded:
			succeeded++
		case Failed:
			failed++
		}
	}
	return
}

// License is a license of the cloud as the rollouts pick from it.
type License struct {
	Customer, Kind, Expires string
	Devices                 int
	Bound                   bool
}

// Server is a SmartServer as rollouts see it.
type Server struct {
	Version, Customer string
	// Active are the licenses active on it, what a transfer gives back.
	Active small.Map[bool]
}

// Outcome is the end of a command a driver sent.
type Outcome struct {
	Accepted bool
	Reason   events.Reason
	Message  string
	License  string // the license an activation ended with
}

// Rejection is the outcome's refusal, nil when it was accepted.
func (o Outcome) Rejection() *events.Rejection {
	if o.Accepted {
		return nil
	}
	return &events.Rejection{Reason: o.Reason, Message: o.Message}
}

// OutcomePrefix marks the ids of the commands drivers send (CommandID), so
// the fold keeps only their outcomes.
const OutcomePrefix = "ro-"

// State is what the rollout rules decide on: the rollouts, the cloud's
// license pool, the SmartServers and customers, and the outcomes of the
// commands drivers sent.
type State struct {
	// Horizon is how long a rollout that ended is kept (its retry-failed
	// still possible); 0 keeps it for ever. The outcomes of a rollout's
	// commands are dropped as soon as it ends.
	Horizon  time.Duration
	Rollouts map[string]*Rollout
	Licenses map[string]*License
	// free indexes the licenses in the cloud by customer and kind, so a
	// pick looks at the pool of one customer, not at every license.
	free      map[string]map[string]map[string]struct{}
	Servers   map[string]*Server
	Customers map[string]bool
	Outcomes  map[string]Outcome
}

// NewState returns an empty State.
func NewState() *State {
	return &State{Rollouts: map[string]*Rollout{}, Licenses: map[string]*License{}, free: map[string]map[string]map[string]struct{}{},
		Servers: map[string]*Server{}, Customers: map[string]bool{}, Outcomes: map[string]Outcome{}}
}

// Evolve folds one event into s.
func Evolve(s *State, m *events.Message) {
	if corr := m.CorrelationID(); m.Info.Terminal && strings.HasPrefix(corr, OutcomePrefix) {
		if _, seen := s.Outcomes[corr]; !seen {
			o := Outcome{Accepted: true}
			switch d := m.Data.(type) {
			case *events.Rejected:
				o = Outcome{Reason: d.Reason, Message: d.Message, License: d.LicenseID}
			case *events.LicenseActivated:
				o.License = d.LicenseID
			}
			s.Outcomes[corr] = o
		}
	}
	switch d := m.Data.(type) {
	case *events.CustomerCreated:
		s.Customers[d.CustomerID] = true
	case *events.LicenseAdded:
		l := &License{Customer: d.CustomerID, Kind: d.Kind, Devices: d.Devices, Expires: d.Expires}
		if old := s.Licenses[d.LicenseID]; old != nil {
			l.Bound = old.Bound
		}
		s.Licenses[d.LicenseID] = l
		s.setFree(d.LicenseID, l, !l.Bound)
	case *events.LicenseBound:
		if l := s.Licenses[d.LicenseID]; l != nil {
			l.Bound = true
			s.setFree(d.LicenseID, l, false)
		}
	case *events.LicenseReleased:
		if l := s.Licenses[d.LicenseID]; l != nil {
			l.Bound = false
			s.setFree(d.LicenseID, l, true)
		}
	case *events.Registered:
		s.server(d.InstallCode).Version = d.Version
	case *events.VersionSet:
		s.server(d.InstallCode).Version = d.Version
	case *events.CustomerIDSet:
		s.server(d.InstallCode).Customer = d.CustomerID
	case *events.LicenseActivated:
		srv := s.server(d.InstallCode)
		srv.Active.Set(d.LicenseID, true)
	case *events.LicensesTransferred:
		srv := s.server(d.InstallCode)
		for _, lid := range d.LicenseIDs {
			srv.Active.Delete(lid)
		}
	case *events.RolloutStarted:
		r := &Rollout{ID: d.RolloutID, Spec: d.Spec, Waves: d.Waves, Status: Running, Wave: -1, Targets: map[string]*Target{}, Actor: m.Actor(), StartedBy: m.ID()}
		for w, ics := range d.Waves {
			for _, ic := range ics {
				r.Targets[ic] = &Target{Wave: w, Status: Pending}
			}
		}
		s.Rollouts[d.RolloutID] = r
	default:
		s.evolveRollout(m)
	}
}

func (s *State) server(ic string) *Server {
	srv := s.Servers[ic]
	if srv == nil {
		srv = &Server{}
		s.Servers[ic] = srv
	}
	return srv
}

func (s *State) evolveRollout(m *events.Message) {
	if m.Info.Aggregate != "rollout" || m.Data == nil {
		return
	}
	r := s.Rollouts[m.Data.Key()]
	if r == nil {
		return
	}
	switch d := m.Data.(type) {
	case *events.WaveStarted:
		r.Wave = max(r.Wave, d.Wave)
	case *events.TargetStarted:
		if t := r.Targets[d.InstallCode]; t != nil && d.Attempt >= t.Attempt {
			t.Attempt, t.Status = d.Attempt, Running
		}
	case *events.TargetSucceeded:
		if t := r.Targets[d.InstallCode]; t != nil {
			t.Status, t.Licenses, t.Reason, t.Message = Succeeded, d.LicenseIDs, "", d.Note
		}
	case *events.TargetFailed:
		if t := r.Targets[d.InstallCode]; t != nil && t.Status != Succeeded {
			t.Reason, t.Message = d.Reason, d.Message
			t.Status = Pending
			if d.Final {
				t.Status = Failed
			}
		}
	case *events.RetryRequested:
		for _, ic := range d.Targets {
			if t := r.Targets[ic]; t != nil && t.Status == Failed {
				t.Status = Pending
			}
		}
		r.Status, r.Wave = Running, -1
		r.Round++
	}
	switch m.Type() {
	case events.RolloutPausedType:
		r.Status = Paused
	case events.RolloutResumedType:
		r.Status = Running
	case events.RolloutCancelledType, events.RolloutAbortedType:
		r.Status = Aborted
		if m.Type() == events.RolloutCancelledType {
			r.Status = Cancelled
		}
		for _, t := range r.Targets {
			if t.Status == Pending && t.Attempt == 0 {
				t.Status = Skipped
			}
		}
	case events.RolloutCompletedType:
		r.Status = Completed
	}
	switch m.Type() {
	case events.RolloutCancelledType, events.RolloutAbortedType, events.RolloutCompletedType:
		r.Ended = m.Event.Time()
		s.forget(r.ID, r.Ended)
	case events.RetryRequestedType:
		r.Ended = time.Time{}
	}
}

// forget drops the outcomes of rollout id, which ended at ended, and the
// rollouts that ended more than the horizon before it.
func (s *State) forget(id string, ended time.Time) {
	prefix := OutcomePrefix + id + "-"
	for k := range s.Outcomes {
		if strings.HasPrefix(k, prefix) {
			delete(s.Outcomes, k)
		}
	}
	if s.Horizon <= 0 {
		return
	}
	for rid, r := range s.Rollouts {
		if !r.Ended.IsZero() && r.Ended.Before(ended.Add(-s.Horizon)) {
			delete(s.Rollouts, rid)
		}
	}
}

func (s *State) setFree(lid string, l *License, free bool) {
	byKind := s.free[l.Customer]
	if byKind == nil {
		byKind = map[string]map[string]struct{}{}
		s.free[l.Customer] = byKind
	}
	set := byKind[l.Kind]
	if set == nil {
		set = map[string]struct{}{}
		byKind[l.Kind] = set
	}
	if free {
		set[lid] = struct{}{}
	} else {
		delete(set, lid)
	}
}
