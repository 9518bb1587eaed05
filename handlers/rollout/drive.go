package rollout

import (
	"fmt"
	"slices"

	"github.com/licensebus/licensebus/events"
)

// Action is what a rollout's driver does next.
type Action int

// Actions of Next.
const (
	Stop      Action = iota // the rollout is over (completed, aborted, cancelled)
	Wait                    // paused: wait for a change
	Complete                // record completion (every wave ran)
	Abort                   // record the abort (the threshold tripped)
	StartWave               // record the start of Wave
	RunWave                 // run the remaining targets of Wave
)

// Next is a driver's next step.
type Next struct {
	Action            Action
	Wave              int
	Succeeded, Failed int
}

// NextStep decides what the driver of r does next. The abort threshold is
// checked before a wave starts: the wave that tripped it has finished, and
// nothing new starts.
func NextStep(r *Rollout) Next {
	switch r.Status {
	case Paused:
		return Next{Action: Wait}
	case Running:
	default:
		return Next{Action: Stop}
	}
	succeeded, failed := r.Counts()
	n := Next{Succeeded: succeeded, Failed: failed, Wave: -1}
	for w, ics := range r.Waves {
		if slices.ContainsFunc(ics, func(ic string) bool { return Runnable(r.Targets[ic]) }) {
			n.Wave = w
			break
		}
	}
	switch {
	case n.Wave < 0:
		n.Action = Complete
	case n.Wave > r.Wave && aborts(r.Spec, succeeded, failed):
		n.Action = Abort
	case n.Wave > r.Wave:
		n.Action = StartWave
	default:
		n.Action = RunWave
	}
	return n
}

func aborts(spec events.RolloutSpec, succeeded, failed int) bool {
	finished := succeeded + failed
	return spec.AbortPercent > 0 && finished >= max(1, spec.AbortMin) && float64(failed)*100 > spec.AbortPercent*float64(finished)
}

// Runnable says a target still has to run: pending, or running when the
// last driver stopped.
func Runnable(t *Target) bool { return t.Status == Pending || t.Status == Running }

// Attempt is the attempt a driver runs on a runnable target: a target found
// running was in flight when the last driver stopped and goes on with the
// same attempt, hence the same command ids.
func Attempt(t *Target) int {
	if t.Status == Running {
		return t.Attempt
	}
	return t.Attempt + 1
}

// Retryable says another attempt can change a failure's outcome.
func Retryable(r events.Reason) bool {
	switch r {
	case events.ReasonNoOutcome, events.ReasonAlreadyActive, events.ReasonTransferInFlight:
		return true
	}
	return false
}

// Final says a failure of attempt ends the target: not retryable, or the
// last attempt the spec allows.
func Final(r events.Reason, attempt int, spec events.RolloutSpec) bool {
	return !Retryable(r) || attempt > spec.Retries
}

// MaxPicks bounds how many licenses one activation step tries when others
// keep taking them first.
const MaxPicks = 16

// EventID is the id of a rollout event the driver records under name:
// derived from the rollout, so a driver recording the same fact again is
// deduplicated.
func EventID(rolloutID, name string) string { return events.DeriveID(rolloutID, name) }

// Names of the driver's records.
func CompletedName(round int) string  { return fmt.Sprint("completed/", round) }
func AbortedName(round int) string    { return fmt.Sprint("aborted/", round) }
func WaveName(round, wave int) string { return fmt.Sprintf("wave/%d/%d", round, wave) }
func TargetName(ic string, attempt int, what string) string {
	return fmt.Sprintf("%s/%d/%s", ic, attempt, what)
}

// CommandID is the id of step of an attempt on a target: the same on every
// driver, so a step sent again is a repeat. It is also its correlation id,
// under which the fold keeps its outcome (OutcomePrefix).
func CommandID(rolloutID, ic string, attempt int, step string) string {
	return fmt.Sprintf("%s%s-%s-%d-%s", OutcomePrefix, rolloutID, ic, attempt, step)
}

// Cause is the id of what causes the steps of an attempt: its
// target_started event.
func Cause(rolloutID, ic string, attempt int) string {
	return EventID(rolloutID, TargetName(ic, attempt, "started"))
}

// Step is one command of an attempt on a target.
type Step struct {
	Name string
	Type events.Type
	Data events.Data
}

// Steps are the commands of an attempt on target ic, around the
// activations (which pick licenses as they go, see Pick): before them,
// setting the Customer ID and downloading; after them, turning reactive
// provisioning on. A transfer rollout has one step.
func Steps(spec events.RolloutSpec, ic string) (before, after []Step) {
	if spec.Kind == events.RolloutTransfer {
		return []Step{{"transfer", events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic}}}, nil
	}
	if spec.SetCustomerID {
		before = append(before, Step{"customer", events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: spec.CustomerID}})
	}
	if len(spec.Activate) > 0 {
		before = append(before, Step{"download", events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}})
	}
	if spec.AutoProvision {
		after = append(after, Step{"autoprovision", events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: ic, Enabled: true}})
	}
	return before, after
}

// ActivateStep is the step that activates the want-th license, at its
// pick-th try.
func ActivateStep(ic string, want, pick int, licenseID string) Step {
	return Step{fmt.Sprintf("activate%d-%d", want, pick), events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: licenseID}}
}

// StepDone reads a step's refusal: a transfer of a SmartServer with
// nothing to transfer has succeeded; anything else fails the attempt.
func StepDone(s Step, rej *events.Rejection) (ok bool, note string) {
	if rej == nil {
		return true, ""
	}
	if s.Type == events.TransferToCloudType && rej.Reason == events.ReasonNoActiveLicenses {
		return true, "nothing to transfer"
	}
	return false, ""
}

// PickAgain says a refused activation moves on to the next license: it
// lost a race for this one (another rollout bound it first).
func PickAgain(rej *events.Rejection, pick int) bool {
	return rej.Reason == events.ReasonAlreadyActive && pick < MaxPicks
}
