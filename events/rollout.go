package events

import "fmt"

// RolloutSide handles fleet-wide rollouts.
const RolloutSide Side = "rollout"

// RolloutCommands is the subject root of rollout commands.
const RolloutCommands = "lb.cmd.rollout.>"

// Rollout kinds.
const (
	RolloutActivate = "activate"
	RolloutTransfer = "transfer"
)

// Rollout commands and events: a rollout is an aggregate of its own,
// "lb.evt.rollout.<rollout-id>.<verb>".
const (
	StartRolloutType     Type = "io.licensebus.rollout.start"
	PauseRolloutType     Type = "io.licensebus.rollout.pause"
	ResumeRolloutType    Type = "io.licensebus.rollout.resume"
	CancelRolloutType    Type = "io.licensebus.rollout.cancel"
	RetryFailedType      Type = "io.licensebus.rollout.retry_failed"
	RolloutStartedType   Type = "io.licensebus.rollout.started"
	WaveStartedType      Type = "io.licensebus.rollout.wave_started"
	TargetStartedType    Type = "io.licensebus.rollout.target_started"
	TargetSucceededType  Type = "io.licensebus.rollout.target_succeeded"
	TargetFailedType     Type = "io.licensebus.rollout.target_failed"
	RolloutPausedType    Type = "io.licensebus.rollout.paused"
	RolloutResumedType   Type = "io.licensebus.rollout.resumed"
	RolloutCancelledType Type = "io.licensebus.rollout.cancelled"
	RolloutAbortedType   Type = "io.licensebus.rollout.aborted"
	RolloutCompletedType Type = "io.licensebus.rollout.completed"
	RetryRequestedType   Type = "io.licensebus.rollout.retry_requested"
)

func rolloutInfo(t Type) (Info, bool) {
	cmd := func(verb string, n func() Data) (Info, bool) {
		return Info{t, true, RolloutSide, "rollout", verb, false, n}, true
	}
	evt := func(verb string, terminal bool, n func() Data) (Info, bool) {
		return Info{t, false, "", "rollout", verb, terminal, n}, true
	}
	ref := func() Data { return new(RolloutRef) }
	switch t {
	case StartRolloutType:
		return cmd("start", func() Data { return new(StartRollout) })
	case PauseRolloutType:
		return cmd("pause", ref)
	case ResumeRolloutType:
		return cmd("resume", ref)
	case CancelRolloutType:
		return cmd("cancel", ref)
	case RetryFailedType:
		return cmd("retry_failed", ref)
	case RolloutStartedType:
		return evt("started", true, func() Data { return new(RolloutStarted) })
	case WaveStartedType:
		return evt("wave_started", false, func() Data { return new(WaveStarted) })
	case TargetStartedType:
		return evt("target_started", false, func() Data { return new(TargetStarted) })
	case TargetSucceededType:
		return evt("target_succeeded", false, func() Data { return new(TargetSucceeded) })
	case TargetFailedType:
		return evt("target_failed", false, func() Data { return new(TargetFailed) })
	case RolloutPausedType:
		return evt("paused", true, ref)
	case RolloutResumedType:
		return evt("resumed", true, ref)
	case RolloutCancelledType:
		return evt("cancelled", true, ref)
	case RolloutAbortedType:
		return evt("aborted", false, func() Data { return new(RolloutAborted) })
	case RolloutCompletedType:
		return evt("completed", false, func() Data { return new(RolloutCompleted) })
	case RetryRequestedType:
		return evt("retry_requested", true, func() Data { return new(RetryRequested) })
	}
	return Info{}, false
}

// LicenseWant is one license a rollout activates on each target: a kind
// and, for capacity, the device count it must have (0: any). A maintenance
// license is picked to cover the target's capacity.
type LicenseWant struct {
	Kind    string `json:"kind"`
	Devices int    `json:"devices,omitempty"`
}

// RolloutSpec is what an operator asks of a rollout.
type RolloutSpec struct {
	Kind          string        `json:"kind"` // activate | transfer
	CustomerID    string        `json:"customer_id,omitempty"`
	Targets       []string      `json:"targets"`
	SetCustomerID bool          `json:"set_customer_id,omitempty"`
	Activate      []LicenseWant `json:"activate,omitempty"`
	AutoProvision bool          `json:"auto_provision,omitempty"`
	// WaveSize cuts the targets into waves of that many; WavePercents into
	// waves ending at those cumulative percentages (e.g. 1,10,50,100).
	// Neither: one wave.
	WaveSize     int   `json:"wave_size,omitempty"`
	WavePercents []int `json:"wave_percents,omitempty"`
	Concurrency  int   `json:"concurrency"`            // targets in flight at once
	RatePerMin   int   `json:"rate_per_min,omitempty"` // targets started per minute; 0: no limit
	// Abort before the next wave when more than AbortPercent of at least
	// AbortMin finished targets failed; AbortPercent 0: never.
	AbortPercent float64 `json:"abort_percent,omitempty"`
	AbortMin     int     `json:"abort_min,omitempty"`
	Retries      int     `json:"retries"` // extra attempts for transient failures
}

// StartRollout starts a rollout. RolloutID may be empty (derived from the
// command id).
type StartRollout struct {
	RolloutID string      `json:"rollout_id,omitempty"`
	Spec      RolloutSpec `json:"spec"`
}

// RolloutRef names a rollout: pause, resume, cancel, retry_failed, and the
// paused, resumed and cancelled events.
type RolloutRef struct {
	RolloutID string `json:"rollout_id"`
}

// RolloutStarted: the rollout runs, in these waves of install codes.
type RolloutStarted struct {
	RolloutID string      `json:"rollout_id"`
	Spec      RolloutSpec `json:"spec"`
	Waves     [][]string  `json:"waves"`
}

// WaveStarted: targets of wave Wave (0-based) are being started.
type WaveStarted struct {
	RolloutID string `json:"rollout_id"`
	Wave      int    `json:"wave"`
	Targets   int    `json:"targets"`
}

// TargetStarted: one attempt on one target began.
type TargetStarted struct {
	RolloutID   string `json:"rollout_id"`
	InstallCode string `json:"install_code"`
	Wave        int    `json:"wave"`
	Attempt     int    `json:"attempt"`
}

// TargetSucceeded: the target got what the rollout asked for.
type TargetSucceeded struct {
	RolloutID   string   `json:"rollout_id"`
	InstallCode string   `json:"install_code"`
	Attempt     int      `json:"attempt"`
	LicenseIDs  []string `json:"license_ids,omitempty"`
	Note        string   `json:"note,omitempty"`
}

// TargetFailed: the attempt failed; Final says no more attempts follow.
type TargetFailed struct {
	RolloutID   string `json:"rollout_id"`
	InstallCode string `json:"install_code"`
	Attempt     int    `json:"attempt"`
	Reason      Reason `json:"reason"`
	Message     string `json:"message"`
	Final       bool   `json:"final"`
}

// RolloutAborted: the abort threshold tripped; no further wave starts.
type RolloutAborted struct {
	RolloutID string `json:"rollout_id"`
	Threshold string `json:"threshold"`
	Failed    int    `json:"failed"`
	Finished  int    `json:"finished"`
}

// RolloutCompleted: every wave ran.
type RolloutCompleted struct {
	RolloutID string `json:"rollout_id"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
}

// RetryRequested: the failed targets run again.
type RetryRequested struct {
	RolloutID string   `json:"rollout_id"`
	Targets   []string `json:"targets"`
}

// Validate implements Data.
func (d *StartRollout) Validate() error {
	if err := checkOptionalUUID("rollout_id", d.RolloutID); err != nil {
		return err
	}
	return d.Spec.Validate()
}

// Validate checks a spec.
func (s *RolloutSpec) Validate() error {
	switch s.Kind {
	case RolloutActivate:
		if err := checkUUID("customer_id", s.CustomerID); err != nil {
			return err
		}
		for _, w := range s.Activate {
			if w.Kind != Capacity && w.Kind != Maintenance {
				return Reject(ReasonInvalidData, "activate kind must be capacity or maintenance, got %q", w.Kind)
			}
			if w.Devices < 0 {
				return Reject(ReasonInvalidData, "activate devices must not be negative")
			}
		}
	case RolloutTransfer:
	default:
		return Reject(ReasonInvalidData, "rollout kind must be activate or transfer, got %q", s.Kind)
	}
	if len(s.Targets) == 0 {
		return Reject(ReasonInvalidData, "a rollout needs targets")
	}
	seen := make(map[string]bool, len(s.Targets))
	for _, ic := range s.Targets {
		if err := checkInstallCode(ic); err != nil {
			return err
		}
		if seen[ic] {
			return Reject(ReasonInvalidData, "target %s is listed twice", ic)
		}
		seen[ic] = true
	}
	if s.WaveSize < 0 || s.Concurrency < 0 || s.RatePerMin < 0 || s.Retries < 0 || s.AbortMin < 0 || s.AbortPercent < 0 || s.AbortPercent > 100 {
		return Reject(ReasonInvalidData, "wave size, concurrency, rate, retries and abort limits must not be negative")
	}
	prev := 0
	for _, p := range s.WavePercents {
		if p <= prev || p > 100 {
			return Reject(ReasonInvalidData, "wave percentages must rise and end at most at 100, got %v", s.WavePercents)
		}
		prev = p
	}
	return nil
}

// Waves cuts the targets into waves.
func (s *RolloutSpec) Waves() [][]string {
	n := len(s.Targets)
	var ends []int
	switch {
	case len(s.WavePercents) > 0:
		for _, p := range s.WavePercents {
			end := (n*p + 99) / 100
			if len(ends) > 0 && end <= ends[len(ends)-1] {
				continue
			}
			ends = append(ends, min(end, n))
		}
		if ends[len(ends)-1] < n {
			ends = append(ends, n)
		}
	case s.WaveSize > 0:
		for end := s.WaveSize; ; end += s.WaveSize {
			ends = append(ends, min(end, n))
			if end >= n {
				break
			}
		}
	default:
		ends = []int{n}
	}
	waves := make([][]string, 0, len(ends))
	start := 0
	for _, end := range ends {
		if end > start {
			waves = append(waves, s.Targets[start:end])
			start = end
		}
	}
	return waves
}

// Threshold renders the abort rule as the operator wrote it.
func (s *RolloutSpec) Threshold() string {
	if s.AbortPercent == 0 {
		return ""
	}
	return fmt.Sprintf("failed>%g%%,min=%d", s.AbortPercent, s.AbortMin)
}

func checkRollout(id string) error { return checkUUID("rollout_id", id) }

// Validate implements Data.
func (d *RolloutRef) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *RolloutStarted) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *WaveStarted) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *TargetStarted) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *TargetSucceeded) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *TargetFailed) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *RolloutAborted) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *RolloutCompleted) Validate() error { return checkRollout(d.RolloutID) }

// Validate implements Data.
func (d *RetryRequested) Validate() error { return checkRollout(d.RolloutID) }

// Key implements Data.
func (d *StartRollout) Key() string     { return d.RolloutID }
func (d *RolloutRef) Key() string       { return d.RolloutID }
func (d *RolloutStarted) Key() string   { return d.RolloutID }
func (d *WaveStarted) Key() string      { return d.RolloutID }
func (d *TargetStarted) Key() string    { return d.RolloutID }
func (d *TargetSucceeded) Key() string  { return d.RolloutID }
func (d *TargetFailed) Key() string     { return d.RolloutID }
func (d *RolloutAborted) Key() string   { return d.RolloutID }
func (d *RolloutCompleted) Key() string { return d.RolloutID }
func (d *RetryRequested) Key() string   { return d.RolloutID }
