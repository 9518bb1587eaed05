package rollout

import (
	"time"

	"github.com/licensebus/licensebus/events"
)

// Plan is what a rollout would do, computed on current state without
// changing anything (--dry-run).
type Plan struct {
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
// would get, or why it would be refused.
type PlanTarget struct {
	InstallCode string        `json:"install_code"`
	LicenseIDs  []string      `json:"license_ids,omitempty"`
	Refusal     events.Reason `json:"refusal,omitempty"`
	Message     string        `json:"message,omitempty"`
}

// Plan computes the plan of spec: the same license rule as a real run,
// over the pool as it is now, target after target in wave order.
func (x *Executor) Plan(spec events.RolloutSpec) (Plan, error) {
	if err := spec.Validate(); err != nil {
		return Plan{}, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	today := x.cfg.Now().UTC().Format(time.DateOnly)
	used := map[string]bool{}
	for lid := range x.reserved {
		used[lid] = true
	}
	var p Plan
	for w, ics := range spec.Waves() {
		pw := PlanWave{Wave: w}
		for _, ic := range ics {
			t := PlanTarget{InstallCode: ic}
			srv := x.st.servers[ic]
			switch {
			case srv == nil || srv.version == "":
				t.Refusal, t.Message = events.ReasonUnknownServer, "no SmartServer with this install code is registered"
			case spec.Kind == events.RolloutActivate && !events.NeedsLicense(srv.version):
				t.Refusal, t.Message = events.ReasonNotRequired, "SmartServer runs "+srv.version+"; license management applies to 3.3 and higher"
			case spec.Kind == events.RolloutActivate && !spec.SetCustomerID && srv.customer != spec.CustomerID:
				t.Refusal, t.Message = events.ReasonCustomerMismatch, "its Customer ID is not the rollout's customer; use --set-customer-id"
			}
			if t.Refusal == "" && spec.Kind == events.RolloutActivate {
				var picked []string
				for _, want := range spec.Activate {
					need := want.Devices
					if want.Kind == events.Maintenance && need == 0 {
						for _, w := range spec.Activate {
							if w.Kind == events.Capacity {
								need = max(need, w.Devices)
							}
						}
					}
					lid := candidate(x.st, spec.CustomerID, want.Kind, need, today, true, func(l string) bool { return used[l] })
					if lid == "" {
						t.Refusal, t.Message = events.ReasonPoolExhausted, "not enough licenses in the pool: no "+describe(want, need)+" left"
						break
					}
					picked = append(picked, lid)
				}
				if t.Refusal == "" {
					for _, lid := range picked {
						used[lid] = true
					}
					t.LicenseIDs = picked
				}
			}
			if t.Refusal == "" {
				p.Ready++
			} else {
				p.Refused++
			}
			pw.Targets = append(pw.Targets, t)
		}
		p.Targets += len(ics)
		p.Waves = append(p.Waves, pw)
	}
	return p, nil
}
