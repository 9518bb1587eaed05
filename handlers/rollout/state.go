package rollout

import (
	"strings"

	"github.com/licensebus/licensebus/events"
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

type target struct {
	wave     int
	attempt  int // attempts started
	status   string
	reason   events.Reason
	message  string
	licenses []string
}

type rollout struct {
	id      string
	spec    events.RolloutSpec
	waves   [][]string
	status  string
	wave    int // last wave started in this round
	round   int // retry-failed rounds
	targets map[string]*target
	actor   string
	// startedBy is the id of the started event: the cause of everything
	// the rollout records, so its trace is one tree.
	startedBy string
}

func (r *rollout) counts() (succeeded, failed int) {
	for _, t := range r.targets {
		switch t.status {
		case Succeeded:
			succeeded++
		case Failed:
			failed++
		}
	}
	return
}

type license struct {
	customer, kind, expires string
	devices                 int
	bound                   bool
}

type server struct{ version, customer string }

// outcome is the end of a command the executor sent.
type outcome struct {
	accepted bool
	reason   events.Reason
	message  string
	license  string // the license an activation ended with
}

// outcomePrefix marks the ids of commands rollouts send, so the fold keeps
// only their outcomes.
const outcomePrefix = "ro-"

type state struct {
	rollouts map[string]*rollout
	licenses map[string]*license
	// free indexes the licenses in the cloud by customer and kind, so a
	// pick looks at the pool of one customer, not at every license.
	free      map[string]map[string]map[string]struct{}
	servers   map[string]*server
	customers map[string]bool
	outcomes  map[string]outcome
}

func newState() *state {
	return &state{rollouts: map[string]*rollout{}, licenses: map[string]*license{}, free: map[string]map[string]map[string]struct{}{}, servers: map[string]*server{},
		customers: map[string]bool{}, outcomes: map[string]outcome{}}
}

func (s *state) apply(m *events.Message) {
	if corr := m.CorrelationID(); m.Info.Terminal && strings.HasPrefix(corr, outcomePrefix) {
		if _, seen := s.outcomes[corr]; !seen {
			o := outcome{accepted: true}
			switch d := m.Data.(type) {
			case *events.Rejected:
				o = outcome{reason: d.Reason, message: d.Message, license: d.LicenseID}
			case *events.LicenseActivated:
				o.license = d.LicenseID
			}
			s.outcomes[corr] = o
		}
	}
	switch d := m.Data.(type) {
	case *events.CustomerCreated:
		s.customers[d.CustomerID] = true
	case *events.LicenseAdded:
		l := &license{customer: d.CustomerID, kind: d.Kind, devices: d.Devices, expires: d.Expires}
		s.licenses[d.LicenseID] = l
		s.setFree(d.LicenseID, l, true)
	case *events.LicenseBound:
		if l := s.licenses[d.LicenseID]; l != nil {
			l.bound = true
			s.setFree(d.LicenseID, l, false)
		}
	case *events.LicenseReleased:
		if l := s.licenses[d.LicenseID]; l != nil {
			l.bound = false
			s.setFree(d.LicenseID, l, true)
		}
	case *events.Registered:
		srv := s.server(d.InstallCode)
		srv.version = d.Version
	case *events.CustomerIDSet:
		s.server(d.InstallCode).customer = d.CustomerID
	case *events.RolloutStarted:
		r := &rollout{id: d.RolloutID, spec: d.Spec, waves: d.Waves, status: Running, wave: -1, targets: map[string]*target{}, actor: m.Actor(), startedBy: m.ID()}
		for w, ics := range d.Waves {
			for _, ic := range ics {
				r.targets[ic] = &target{wave: w, status: Pending}
			}
		}
		s.rollouts[d.RolloutID] = r
	default:
		s.applyRollout(m)
	}
}

func (s *state) server(ic string) *server {
	srv := s.servers[ic]
	if srv == nil {
		srv = &server{}
		s.servers[ic] = srv
	}
	return srv
}

func (s *state) applyRollout(m *events.Message) {
	if m.Info.Aggregate != "rollout" || m.Data == nil {
		return
	}
	r := s.rollouts[m.Data.Key()]
	if r == nil {
		return
	}
	switch d := m.Data.(type) {
	case *events.WaveStarted:
		r.wave = max(r.wave, d.Wave)
	case *events.TargetStarted:
		if t := r.targets[d.InstallCode]; t != nil && d.Attempt >= t.attempt {
			t.attempt, t.status = d.Attempt, Running
		}
	case *events.TargetSucceeded:
		if t := r.targets[d.InstallCode]; t != nil {
			t.status, t.licenses, t.reason, t.message = Succeeded, d.LicenseIDs, "", d.Note
		}
	case *events.TargetFailed:
		if t := r.targets[d.InstallCode]; t != nil && t.status != Succeeded {
			t.reason, t.message = d.Reason, d.Message
			t.status = Pending
			if d.Final {
				t.status = Failed
			}
		}
	case *events.RetryRequested:
		for _, ic := range d.Targets {
			if t := r.targets[ic]; t != nil && t.status == Failed {
				t.status = Pending
			}
		}
		r.status, r.wave = Running, -1
		r.round++
	}
	switch m.Type() {
	case events.RolloutPausedType:
		r.status = Paused
	case events.RolloutResumedType:
		r.status = Running
	case events.RolloutCancelledType, events.RolloutAbortedType:
		r.status = Aborted
		if m.Type() == events.RolloutCancelledType {
			r.status = Cancelled
		}
		for _, t := range r.targets {
			if t.status == Pending && t.attempt == 0 {
				t.status = Skipped
			}
		}
	case events.RolloutCompletedType:
		r.status = Completed
	}
}

func (s *state) setFree(lid string, l *license, free bool) {
	byKind := s.free[l.customer]
	if byKind == nil {
		byKind = map[string]map[string]struct{}{}
		s.free[l.customer] = byKind
	}
	set := byKind[l.kind]
	if set == nil {
		set = map[string]struct{}{}
		byKind[l.kind] = set
	}
	if free {
		set[lid] = struct{}{}
	} else {
		delete(set, lid)
	}
}
