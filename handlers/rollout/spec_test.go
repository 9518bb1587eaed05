package rollout_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/rollout"
	"github.com/licensebus/licensebus/handlers/spec"
)

const (
	cid = "2133c667-af41-4518-94df-a2bb3b775330"
	rid = "0b7e3f5c-3c1d-4e2a-9a0b-1d2e3f405162"
)

func lic(i int) string { return fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", i) }

var n int

func ev(t events.Type, d events.Data) *events.Message {
	n++
	return spec.Event(t, d, fmt.Sprint("e-", n), "")
}

func customer() *events.Message {
	return ev(events.CustomerCreatedType, &events.CustomerCreated{CustomerID: cid, Name: "P"})
}
func license(i, devices int) *events.Message {
	return ev(events.LicenseAddedType, &events.LicenseAdded{LicenseID: lic(i), CustomerID: cid, Kind: events.Capacity, Devices: devices})
}
func server(ic, version string) *events.Message {
	return ev(events.RegisteredType, &events.Registered{InstallCode: ic, Name: ic, Version: version})
}
func activateSpec(targets ...string) events.RolloutSpec {
	return events.RolloutSpec{Kind: events.RolloutActivate, CustomerID: cid, Targets: targets, SetCustomerID: true,
		Activate: []events.LicenseWant{{Kind: events.Capacity, Devices: 200}}, Concurrency: 5}
}
func started(s events.RolloutSpec) *events.Message {
	return ev(events.RolloutStartedType, &events.RolloutStarted{RolloutID: rid, Spec: s, Waves: s.Waves()})
}
func paused() *events.Message {
	return ev(events.RolloutPausedType, &events.RolloutRef{RolloutID: rid})
}
func completed() *events.Message {
	return ev(events.RolloutCompletedType, &events.RolloutCompleted{RolloutID: rid})
}
func failed(ic string) *events.Message {
	return ev(events.TargetFailedType, &events.TargetFailed{RolloutID: rid, InstallCode: ic, Attempt: 1, Reason: events.ReasonUnknownServer, Message: "x", Final: true})
}

func fold(given []*events.Message) *rollout.State {
	s := rollout.NewState()
	for _, m := range given {
		rollout.Evolve(s, m)
	}
	return s
}

// The rollout commands, as given/when/then.
func TestSpec(t *testing.T) {
	sp := activateSpec("IC-1", "IC-2")
	withConcurrency := sp
	withConcurrency.Concurrency = 0
	tests := []struct {
		name  string
		given []*events.Message
		typ   events.Type
		when  events.Data
		then  spec.Then
	}{
		{"a rollout starts in the waves of its spec", []*events.Message{customer()}, events.StartRolloutType, &events.StartRollout{RolloutID: rid, Spec: sp},
			spec.Then{Type: events.RolloutStartedType, Data: &events.RolloutStarted{RolloutID: rid, Spec: sp, Waves: sp.Waves()}}},
		{"concurrency defaults to 50", []*events.Message{customer()}, events.StartRolloutType, &events.StartRollout{RolloutID: rid, Spec: withConcurrency},
			spec.Then{Type: events.RolloutStartedType, Data: &events.RolloutStarted{RolloutID: rid, Spec: func() events.RolloutSpec { s := withConcurrency; s.Concurrency = 50; return s }(), Waves: sp.Waves()}}},
		{"a rollout of an unknown customer is refused", nil, events.StartRolloutType, &events.StartRollout{RolloutID: rid, Spec: sp},
			spec.Then{Reason: events.ReasonUnknownCustomer}},
		{"a rollout id in use is refused", []*events.Message{customer(), started(sp)}, events.StartRolloutType, &events.StartRollout{RolloutID: rid, Spec: sp},
			spec.Then{Reason: events.ReasonAlreadyExists}},
		{"a running rollout pauses", []*events.Message{customer(), started(sp)}, events.PauseRolloutType, &events.RolloutRef{RolloutID: rid},
			spec.Then{Type: events.RolloutPausedType, Data: &events.RolloutRef{RolloutID: rid}}},
		{"a paused rollout resumes", []*events.Message{customer(), started(sp), paused()}, events.ResumeRolloutType, &events.RolloutRef{RolloutID: rid},
			spec.Then{Type: events.RolloutResumedType, Data: &events.RolloutRef{RolloutID: rid}}},
		{"a running rollout cannot resume", []*events.Message{customer(), started(sp)}, events.ResumeRolloutType, &events.RolloutRef{RolloutID: rid},
			spec.Then{Reason: events.ReasonRolloutState}},
		{"a paused rollout can be cancelled", []*events.Message{customer(), started(sp), paused()}, events.CancelRolloutType, &events.RolloutRef{RolloutID: rid},
			spec.Then{Type: events.RolloutCancelledType, Data: &events.RolloutRef{RolloutID: rid}}},
		{"an unknown rollout is refused", nil, events.PauseRolloutType, &events.RolloutRef{RolloutID: rid},
			spec.Then{Reason: events.ReasonUnknownRollout}},
		{"retry-failed runs the failed targets again", []*events.Message{customer(), started(sp), failed("IC-2"), completed()}, events.RetryFailedType, &events.RolloutRef{RolloutID: rid},
			spec.Then{Type: events.RetryRequestedType, Data: &events.RetryRequested{RolloutID: rid, Targets: []string{"IC-2"}}}},
		{"retry-failed of a rollout without failures is refused", []*events.Message{customer(), started(sp), completed()}, events.RetryFailedType, &events.RolloutRef{RolloutID: rid},
			spec.Then{Reason: events.ReasonRolloutState}},
		{"a command of another aggregate is no rollout command", nil, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: "IC-1", LicenseID: lic(1)},
			spec.Then{Reason: events.ReasonUnknownType}},
	}
	reasons := []events.Reason{events.ReasonPoolExhausted, events.ReasonNoOutcome} // TestPick, and the driver's wait
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec.Check(t, rollout.Decide(fold(tt.given), "cmd-1", tt.typ, tt.when), tt.then)
		})
		reasons = append(reasons, tt.then.Reason)
	}
	spec.Covers(t, rollout.Reasons(), reasons)
}

// What a rollout's driver does next, as given/then.
func TestNextStep(t *testing.T) {
	sp := activateSpec("IC-1", "IC-2", "IC-3", "IC-4")
	sp.WaveSize = 2
	sp.AbortPercent, sp.AbortMin = 40, 2
	wave := func(w int) *events.Message {
		return ev(events.WaveStartedType, &events.WaveStarted{RolloutID: rid, Wave: w, Targets: 2})
	}
	succeeded := func(ic string) *events.Message {
		return ev(events.TargetSucceededType, &events.TargetSucceeded{RolloutID: rid, InstallCode: ic, Attempt: 1})
	}
	tests := []struct {
		name  string
		given []*events.Message
		want  rollout.Next
	}{
		{"a new rollout starts its first wave", []*events.Message{started(sp)}, rollout.Next{Action: rollout.StartWave, Wave: 0}},
		{"a started wave runs", []*events.Message{started(sp), wave(0)}, rollout.Next{Action: rollout.RunWave, Wave: 0}},
		{"a finished wave leads to the next", []*events.Message{started(sp), wave(0), succeeded("IC-1"), succeeded("IC-2")},
			rollout.Next{Action: rollout.StartWave, Wave: 1, Succeeded: 2}},
		{"too many failures abort before the next wave", []*events.Message{started(sp), wave(0), succeeded("IC-1"), failed("IC-2")},
			rollout.Next{Action: rollout.Abort, Wave: 1, Succeeded: 1, Failed: 1}},
		{"every wave ran: complete", []*events.Message{started(sp), wave(0), succeeded("IC-1"), succeeded("IC-2"), wave(1), succeeded("IC-3"), succeeded("IC-4")},
			rollout.Next{Action: rollout.Complete, Wave: -1, Succeeded: 4}},
		{"paused: wait", []*events.Message{started(sp), paused()}, rollout.Next{Action: rollout.Wait}},
		{"completed: stop", []*events.Message{started(sp), completed()}, rollout.Next{Action: rollout.Stop}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rollout.NextStep(fold(tt.given).Rollouts[rid]); got != tt.want {
				t.Fatalf("NextStep=%+v, want %+v", got, tt.want)
			}
		})
	}
}

// Ensure a plan gives the lowest free licenses in wave order and refuses
// what it cannot serve, and a run picks what the plan gave unless another
// took it meanwhile, saying so.
func TestPlanAndPick(t *testing.T) {
	given := []*events.Message{customer(), license(3, 200), license(1, 200), license(2, 1000), license(4, 200),
		server("IC-1", "3.4"), server("IC-2", "3.4"), server("IC-3", "3.1")}
	s := fold(given)
	sp := activateSpec("IC-1", "IC-2", "IC-3", "IC-9")
	none := func(string) bool { return false }
	p := rollout.MakePlan(s, sp, "2026-12-02", none, nil)
	got := map[string]string{}
	for _, w := range p.Waves {
		for _, tg := range w.Targets {
			got[tg.InstallCode] = fmt.Sprint(tg.LicenseIDs, tg.Refusal)
		}
	}
	want := map[string]string{
		"IC-1": fmt.Sprint([]string{lic(1)}, ""),
		"IC-2": fmt.Sprint([]string{lic(3)}, ""),
		"IC-3": fmt.Sprint([]string(nil), events.ReasonNotRequired),
		"IC-9": fmt.Sprint([]string(nil), events.ReasonUnknownServer),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	if p.Ready != 2 || p.Refused != 2 || p.Waves[0].Targets[0].Licenses[0].Label() != "capacity 200" {
		t.Fatalf("plan %+v", p)
	}

	tests := []struct {
		name    string
		planned string
		taken   func(string) bool
		want    string
		noted   bool
		reason  events.Reason
	}{
		{"the planned license", lic(3), none, lic(3), false, ""},
		{"another took it: the lowest free one, noted", lic(3), func(l string) bool { return l == lic(3) || l == lic(1) }, lic(4), true, ""},
		{"nothing left", lic(3), func(l string) bool { return true }, "", false, events.ReasonPoolExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lid, note, rej := rollout.Pick(s, sp, 0, tt.planned, "2026-12-02", tt.taken)
			if lid != tt.want || (note != "") != tt.noted || (rej == nil) != (tt.reason == "") || rej != nil && rej.Reason != tt.reason {
				t.Fatalf("Pick=(%q, %q, %v), want (%q, noted %v, %s)", lid, note, rej, tt.want, tt.noted, tt.reason)
			}
		})
	}
}

// Ensure what the rollouts' state holds is bounded: the outcomes of a
// rollout's commands go when it ends, and a rollout that ended more than
// the horizon ago goes too.
func TestStateForgets(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(m *events.Message, when time.Time) *events.Message {
		m2, err := events.New(m.Type(), m.Data, events.Meta{ID: m.ID(), Source: "/spec", Time: when, CorrelationID: m.CorrelationID()})
		if err != nil {
			t.Fatal(err)
		}
		return m2
	}
	outcome := func(rid, name string) *events.Message {
		id := rollout.CommandID(rid, "IC-1", 1, name)
		m, err := events.New(events.LicensesDownloadedType, &events.LicensesDownloaded{InstallCode: "IC-1", CustomerID: cid},
			events.Meta{ID: "e-" + name, Source: "/spec", CorrelationID: id, CausationID: id})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	s := rollout.NewState()
	s.Horizon = 24 * time.Hour
	other := "1b7e3f5c-3c1d-4e2a-9a0b-1d2e3f405162"
	for _, m := range []*events.Message{customer(), at(started(activateSpec("IC-1")), t0), outcome(rid, "download")} {
		rollout.Evolve(s, m)
	}
	if len(s.Outcomes) != 1 {
		t.Fatalf("outcomes %v, want the step's", s.Outcomes)
	}
	rollout.Evolve(s, at(completed(), t0.Add(time.Hour)))
	if len(s.Outcomes) != 0 || s.Rollouts[rid] == nil {
		t.Fatalf("after the end: outcomes %v, rollout %v; want none, and the rollout kept", s.Outcomes, s.Rollouts[rid])
	}
	sp := activateSpec("IC-2")
	next := spec.Event(events.RolloutStartedType, &events.RolloutStarted{RolloutID: other, Spec: sp, Waves: sp.Waves()}, "e-other", "")
	rollout.Evolve(s, at(next, t0.Add(48*time.Hour)))
	done := spec.Event(events.RolloutCompletedType, &events.RolloutCompleted{RolloutID: other}, "e-other-done", "")
	rollout.Evolve(s, at(done, t0.Add(50*time.Hour)))
	if s.Rollouts[rid] != nil || s.Rollouts[other] == nil {
		t.Fatalf("rollouts %v: want the one that ended two days ago forgotten, the other kept", s.Rollouts)
	}
}
