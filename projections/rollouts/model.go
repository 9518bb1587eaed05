// Package rollouts is the read model of fleet-wide rollouts: each rollout's
// status, progress per wave, and each target's state with its reason,
// built from rollout events only.
package rollouts

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/projections"
	"github.com/segmentio/encoding/json"
)

// Counts are targets per state.
type Counts struct {
	Total     int `json:"total"`
	Pending   int `json:"pending"`
	Running   int `json:"running"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
}

// Wave is one wave's progress.
type Wave struct {
	Wave    int    `json:"wave"`
	Started bool   `json:"started"`
	Counts  Counts `json:"counts"`
}

// Rollout is one rollout's summary; KV key "rollout.<id>".
type Rollout struct {
	RolloutID string             `json:"rollout_id"`
	Kind      string             `json:"kind"`
	Status    string             `json:"status"`
	Spec      events.RolloutSpec `json:"spec"`
	Counts    Counts             `json:"counts"`
	Waves     []Wave             `json:"waves"`
	// Abort says which threshold stopped the rollout, if one did.
	Abort     string    `json:"abort,omitempty"`
	StartedBy string    `json:"started_by"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Seq       uint64    `json:"seq"`
}

// Target is one target's state; KV key "target.<rollout-id>.<install-code>".
type Target struct {
	RolloutID   string        `json:"rollout_id"`
	InstallCode string        `json:"install_code"`
	Wave        int           `json:"wave"`
	Index       int           `json:"index"`  // position in the targets file
	Status      string        `json:"status"` // pending | running | succeeded | failed | skipped
	Attempt     int           `json:"attempt"`
	Reason      events.Reason `json:"reason,omitempty"`
	Message     string        `json:"message,omitempty"`
	LicenseIDs  []string      `json:"license_ids,omitempty"`
	Seq         uint64        `json:"seq"`
}

// Detail is a rollout with its targets, in wave order.
type Detail struct {
	Rollout
	Targets []Target `json:"targets"`
}

// ErrUnknownRollout is returned for an id the model has not seen.
var ErrUnknownRollout = errors.New("unknown rollout")

type rollout struct {
	Rollout
	targets map[string]*Target
}

// Model is the rollouts read model, safe for concurrent readers.
type Model struct {
	mu       sync.RWMutex
	rollouts map[string]*rollout
	changed  map[string]struct{}
}

var _ projections.Model = (*Model)(nil)

// New returns an empty Model.
func New() *Model {
	m := &Model{}
	m.Reset()
	return m
}

// Name implements projections.Model.
func (m *Model) Name() string { return "rollouts" }

// Reset implements projections.Model.
func (m *Model) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rollouts, m.changed = map[string]*rollout{}, map[string]struct{}{}
}

// Apply implements projections.Model.
func (m *Model) Apply(seq uint64, msg *events.Message) {
	if msg.Info.Aggregate != "rollout" || msg.Info.Command || msg.Data == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := msg.Data.Key()
	if d, ok := msg.Data.(*events.RolloutStarted); ok {
		if m.rollouts[id] != nil {
			return
		}
		r := &rollout{Rollout: Rollout{RolloutID: id, Kind: d.Spec.Kind, Status: "running", Spec: d.Spec, StartedBy: msg.Actor(),
			StartedAt: msg.Event.Time(), UpdatedAt: msg.Event.Time(), Seq: seq}, targets: map[string]*Target{}}
		r.Spec.Targets = nil // kept per target instead
		r.Waves = make([]Wave, len(d.Waves))
		i := 0
		for w, ics := range d.Waves {
			r.Waves[w].Wave = w
			for _, ic := range ics {
				r.targets[ic] = &Target{RolloutID: id, InstallCode: ic, Wave: w, Index: i, Status: "pending", Seq: seq}
				i++
				m.changed["target."+id+"."+ic] = struct{}{}
			}
		}
		m.rollouts[id] = r
		m.recount(r)
		return
	}
	r := m.rollouts[id]
	if r == nil || r.Seq >= seq {
		return
	}
	r.Seq, r.UpdatedAt = seq, msg.Event.Time()
	// Counts follow each target change instead of a recount per event,
	// which would be O(targets) for every event of a 10,000-target rollout.
	var touched []*Target
	target := func(ic string) *Target {
		t := r.targets[ic]
		if t != nil {
			t.Seq = seq
			m.changed["target."+id+"."+ic] = struct{}{}
			r.tally(t, -1)
			touched = append(touched, t)
		}
		return t
	}
	defer func() {
		for _, t := range touched {
			r.tally(t, 1)
		}
		m.changed["rollout."+id] = struct{}{}
	}()
	switch d := msg.Data.(type) {
	case *events.WaveStarted:
		if d.Wave < len(r.Waves) {
			r.Waves[d.Wave].Started = true
		}
	case *events.TargetStarted:
		if t := target(d.InstallCode); t != nil {
			t.Status, t.Attempt = "running", d.Attempt
		}
	case *events.TargetSucceeded:
		if t := target(d.InstallCode); t != nil {
			t.Status, t.Reason, t.Message, t.LicenseIDs = "succeeded", "", d.Note, d.LicenseIDs
		}
	case *events.TargetFailed:
		if t := target(d.InstallCode); t != nil && t.Status != "succeeded" {
			t.Status, t.Reason, t.Message = "pending", d.Reason, d.Message
			if d.Final {
				t.Status = "failed"
			}
		}
	case *events.RetryRequested:
		for _, ic := range d.Targets {
			if t := target(ic); t != nil && t.Status == "failed" {
				t.Status = "pending"
			}
		}
		r.Status, r.Abort = "running", ""
	case *events.RolloutAborted:
		r.Status, r.Abort = "aborted", fmt.Sprintf("%s tripped: %d of %d finished targets failed", d.Threshold, d.Failed, d.Finished)
	}
	if msg.Type() == events.RolloutAbortedType || msg.Type() == events.RolloutCancelledType {
		for ic, t := range r.targets {
			if t.Status == "pending" && t.Attempt == 0 {
				target(ic).Status = "skipped"
			}
		}
	}
	switch msg.Type() {
	case events.RolloutPausedType:
		r.Status = "paused"
	case events.RolloutResumedType:
		r.Status = "running"
	case events.RolloutCancelledType:
		r.Status = "cancelled"
	case events.RolloutCompletedType:
		r.Status = "completed"
	}
}

// tally adds (sign 1) or removes (-1) one target to the counts.
func (r *rollout) tally(t *Target, sign int) {
	for _, c := range []*Counts{&r.Counts, &r.Waves[t.Wave].Counts} {
		c.Total += sign
		switch t.Status {
		case "pending":
			c.Pending += sign
		case "running":
			c.Running += sign
		case "succeeded":
			c.Succeeded += sign
		case "failed":
			c.Failed += sign
		case "skipped":
			c.Skipped += sign
		}
	}
}

// Restored implements projections.Restorer: a rollout's counts are derived
// from its targets, whose entries a crash in the middle of a flush may
// have stored without the rollout's (or the other way round).
func (m *Model) Restored() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, r := range m.rollouts {
		counts, waves := r.Counts, slices.Clone(r.Waves)
		m.recount(r)
		if counts == r.Counts && slices.Equal(waves, r.Waves) {
			delete(m.changed, "rollout."+id)
		}
	}
}

func (m *Model) recount(r *rollout) {
	r.Counts = Counts{}
	for w := range r.Waves {
		r.Waves[w].Counts = Counts{}
	}
	for _, t := range r.targets {
		for _, c := range []*Counts{&r.Counts, &r.Waves[t.Wave].Counts} {
			c.Total++
			switch t.Status {
			case "pending":
				c.Pending++
			case "running":
				c.Running++
			case "succeeded":
				c.Succeeded++
			case "failed":
				c.Failed++
			case "skipped":
				c.Skipped++
			}
		}
	}
	m.changed["rollout."+r.RolloutID] = struct{}{}
}

// Changes implements projections.Model.
func (m *Model) Changes() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.changed))
	for k := range m.changed {
		kind, rest, _ := strings.Cut(k, ".")
		if kind == "rollout" {
			out[k] = projections.MarshalEntry(m.rollouts[rest].Rollout)
			continue
		}
		id, ic, _ := strings.Cut(rest, ".")
		out[k] = projections.MarshalEntry(m.rollouts[id].targets[ic])
	}
	clear(m.changed)
	return out
}

// Restore implements projections.Model.
func (m *Model) Restore(key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	kind, rest, _ := strings.Cut(key, ".")
	switch kind {
	case "rollout":
		r := m.get(rest)
		targets := r.targets
		if err := json.Unmarshal(value, &r.Rollout); err != nil {
			return err
		}
		r.targets = targets
	case "target":
		var t Target
		if err := json.Unmarshal(value, &t); err != nil {
			return err
		}
		m.get(t.RolloutID).targets[t.InstallCode] = &t
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

func (m *Model) get(id string) *rollout {
	r := m.rollouts[id]
	if r == nil {
		r = &rollout{Rollout: Rollout{RolloutID: id}, targets: map[string]*Target{}}
		m.rollouts[id] = r
	}
	return r
}

// List returns every rollout, newest first.
func (m *Model) List() []Rollout {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Rollout, 0, len(m.rollouts))
	for _, r := range m.rollouts {
		x := r.Rollout
		x.Waves = slices.Clone(x.Waves) // Apply updates the waves' counts in place
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b Rollout) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), cmp.Compare(a.RolloutID, b.RolloutID))
	})
	return out
}

// Get returns one rollout with its targets in wave order.
func (m *Model) Get(id string) (Detail, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rollouts[id]
	if r == nil {
		return Detail{}, fmt.Errorf("%w: %s", ErrUnknownRollout, id)
	}
	d := Detail{Rollout: r.Rollout, Targets: make([]Target, 0, len(r.targets))}
	d.Waves = slices.Clone(r.Waves)
	for _, t := range r.targets {
		d.Targets = append(d.Targets, *t)
	}
	slices.SortFunc(d.Targets, func(a, b Target) int {
		return cmp.Compare(a.Index, b.Index)
	})
	return d, nil
}
