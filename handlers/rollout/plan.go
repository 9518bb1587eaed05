package rollout

import (
	"fmt"
	"slices"

	"github.com/licensebus/licensebus/events"
)

// Plan is what a rollout would do, computed on the state as it is without
// changing anything (--dry-run), and what its driver follows.
type Plan struct {
	Kind    string     `json:"kind"` // activate | transfer
	Waves   []PlanWave `json:"waves"`
	Targets int        `json:"targets"`
	Ready   int        `json:"ready"`
	Refused int        `json:"refused"`
}

// PlanWave is one wave of a plan.
type PlanWave struct {
	Wave    int          `json:"wave"`
	Targets []PlanTarget `json:"targets"`
}

// PlanTarget is what would happen on one SmartServer: the licenses it
// would get (an activation) or give back (a transfer), or why it would be
// refused.
type PlanTarget struct {
	InstallCode string        `json:"install_code"`
	LicenseIDs  []string      `json:"license_ids,omitempty"`
	Licenses    []PlanLicense `json:"licenses,omitempty"`
	Refusal     events.Reason `json:"refusal,omitempty"`
	Message     string        `json:"message,omitempty"`
}

// PlanLicense is a license of a plan, with what it is.
type PlanLicense struct {
	LicenseID string `json:"license_id"`
	Kind      string `json:"kind"`
	Devices   int    `json:"devices"`
	Expires   string `json:"expires,omitempty"`
}

// Label says what a license is: "capacity 200", "maintenance 200 until
// 2027-12-31".
func (l PlanLicense) Label() string {
	if l.Kind == events.Maintenance {
		return fmt.Sprintf("maintenance %d until %s", l.Devices, l.Expires)
	}
	return fmt.Sprintf("%s %d", l.Kind, l.Devices)
}

// need is the device count a want asks for: capacity as given (0: any), a
// maintenance license covering the largest capacity the spec activates.
func need(spec events.RolloutSpec, want events.LicenseWant) int {
	n := want.Devices
	if want.Kind == events.Maintenance && n == 0 {
		for _, w := range spec.Activate {
			if w.Kind == events.Capacity {
				n = max(n, w.Devices)
			}
		}
	}
	return n
}

// fits says license l serves want (with need): a capacity license of the
// wanted device count, or a maintenance license covering it, not expired
// on today.
func fits(l *License, kind string, need int, today string) bool {
	switch kind {
	case events.Capacity:
		return need == 0 || l.Devices == need
	case events.Maintenance:
		return l.Devices >= need && l.Expires >= today
	}
	return false
}

// candidates are the free licenses of the customer's pool that serve a
// want, lowest id first: the order plans give them out in.
func (s *State) candidates(customer, kind string, need int, today string) []string {
	var out []string
	for lid := range s.free[customer][kind] {
		if fits(s.Licenses[lid], kind, need, today) {
			out = append(out, lid)
		}
	}
	slices.Sort(out)
	return out
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

// MakePlan computes the plan of spec on s, target after target in wave
// order, the lowest free licenses first; taken are licenses held for
// others (running rollouts), and today decides which maintenance licenses
// have expired. Only the targets still to run are planned (all of them for
// a rollout not started).
func MakePlan(s *State, spec events.RolloutSpec, today string, taken func(string) bool, runnable func(ic string) bool) Plan {
	used := map[string]bool{}
	// One cursor per want into its candidates: O(pool) for the plan, not
	// per target.
	type cursor struct {
		cands []string
		next  int
	}
	cursors := make([]cursor, len(spec.Activate))
	for i, w := range spec.Activate {
		cursors[i].cands = s.candidates(spec.CustomerID, w.Kind, need(spec, w), today)
	}
	take := func(i int) string {
		c := &cursors[i]
		for c.next < len(c.cands) {
			lid := c.cands[c.next]
			if !used[lid] && !taken(lid) {
				return lid
			}
			c.next++
		}
		return ""
	}
	p := Plan{Kind: spec.Kind}
	for w, ics := range spec.Waves() {
		pw := PlanWave{Wave: w}
		for _, ic := range ics {
			if runnable != nil && !runnable(ic) {
				continue
			}
			t := PlanTarget{InstallCode: ic}
			srv := s.Servers[ic]
			switch {
			case srv == nil || srv.Version == "":
				t.Refusal, t.Message = events.ReasonUnknownServer, "no SmartServer with this install code is registered"
			case spec.Kind == events.RolloutActivate && !events.NeedsLicense(srv.Version):
				t.Refusal, t.Message = events.ReasonNotRequired, "SmartServer runs "+srv.Version+"; license management applies to 3.3 and higher"
			case spec.Kind == events.RolloutActivate && !spec.SetCustomerID && srv.Customer != spec.CustomerID:
				t.Refusal, t.Message = events.ReasonCustomerMismatch, "its Customer ID is not the rollout's customer; use --set-customer-id"
			case spec.Kind == events.RolloutTransfer:
				for _, lid := range srv.Active.Keys() {
					t.add(lid, s.Licenses[lid])
				}
			default:
				var picked []string
				for i, want := range spec.Activate {
					lid := take(i)
					if lid == "" {
						t.Refusal, t.Message = events.ReasonPoolExhausted, "not enough licenses in the pool: no "+describe(want, need(spec, want))+" left"
						break
					}
					used[lid] = true
					picked = append(picked, lid)
				}
				if t.Refusal != "" {
					for _, lid := range picked {
						delete(used, lid)
					}
					break
				}
				for _, lid := range picked {
					t.add(lid, s.Licenses[lid])
				}
			}
			if t.Refusal == "" {
				p.Ready++
			} else {
				p.Refused++
			}
			pw.Targets = append(pw.Targets, t)
		}
		p.Targets += len(pw.Targets)
		p.Waves = append(p.Waves, pw)
	}
	return p
}

func (t *PlanTarget) add(lid string, l *License) {
	t.LicenseIDs = append(t.LicenseIDs, lid)
	pl := PlanLicense{LicenseID: lid}
	if l != nil {
		pl.Kind, pl.Devices, pl.Expires = l.Kind, l.Devices, l.Expires
	}
	t.Licenses = append(t.Licenses, pl)
}

// Planned maps each target of a plan to the licenses planned for it, in
// the order of the spec's wants.
func (p Plan) Planned() map[string][]string {
	out := map[string][]string{}
	for _, w := range p.Waves {
		for _, t := range w.Targets {
			if t.Refusal == "" && len(t.LicenseIDs) > 0 {
				out[t.InstallCode] = t.LicenseIDs
			}
		}
	}
	return out
}

// Pick chooses the license a target activates for its want-th want: the
// one planned for it while it is still free and not taken by another
// target; else the lowest free one not taken, saying in the note that the
// plan changed. taken says a license is held for another target.
func Pick(s *State, spec events.RolloutSpec, want int, planned string, today string, taken func(string) bool) (string, string, *events.Rejection) {
	w := spec.Activate[want]
	n := need(spec, w)
	free := func(lid string) bool {
		_, ok := s.free[spec.CustomerID][w.Kind][lid]
		return ok && !taken(lid)
	}
	if planned != "" && free(planned) {
		return planned, "", nil
	}
	for _, lid := range s.candidates(spec.CustomerID, w.Kind, n, today) {
		if !taken(lid) {
			note := ""
			if planned != "" {
				note = fmt.Sprintf("planned license %s was taken meanwhile; took %s", planned, lid)
			}
			return lid, note, nil
		}
	}
	return "", "", events.Reject(events.ReasonPoolExhausted, "no %s license left in the pool of customer %s", describe(w, n), spec.CustomerID)
}
