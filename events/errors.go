package events

import (
	"errors"
	"fmt"
)

// Reason is the machine-readable code of a rejection. Values are persisted.
type Reason string

// Rejection reasons.
const (
	ReasonMalformed          Reason = "malformed_event"         // not a CloudEvent
	ReasonUnknownType        Reason = "unknown_type"            // a CloudEvent of a type we do not handle
	ReasonInvalidData        Reason = "invalid_data"            // data missing or wrong
	ReasonBadUUID            Reason = "bad_uuid"                // an id that is not a UUID
	ReasonBadInstallCode     Reason = "bad_install_code"        // an install code that cannot be a subject token
	ReasonSubjectMismatch    Reason = "subject_mismatch"        // the subject names another aggregate than the data
	ReasonAlreadyExists      Reason = "already_exists"          // create of an id that exists with other values
	ReasonUnknownCustomer    Reason = "unknown_customer"        // no such customer account
	ReasonUnknownServer      Reason = "unknown_smartserver"     // no such SmartServer
	ReasonUnknownLicense     Reason = "unknown_license"         // no such license
	ReasonCustomerNotSet     Reason = "customer_not_set"        // the SmartServer has no Customer ID yet
	ReasonCustomerMismatch   Reason = "customer_mismatch"       // the license belongs to another customer
	ReasonAlreadyActive      Reason = "license_already_active"  // the license is bound to a SmartServer
	ReasonNotRequired        Reason = "license_not_required"    // SmartServer below 3.3
	ReasonNoActiveLicenses   Reason = "no_active_licenses"      // nothing to transfer
	ReasonTransferInFlight   Reason = "transfer_in_progress"    // a transfer is still running
	ReasonNotDownloaded      Reason = "licenses_not_downloaded" // activate before download
	ReasonUnknownDevice      Reason = "unknown_device"          // no such device on any SmartServer
	ReasonOtherServer        Reason = "device_on_other_smartserver"
	ReasonUnlicensed         Reason = "device_unlicensed"   // provisioning a purple device
	ReasonAlreadyProvisioned Reason = "already_provisioned" // provisioning a green device
	ReasonPoolExhausted      Reason = "pool_exhausted"      // no license left in the customer's pool
	ReasonNoOutcome          Reason = "no_outcome"          // a command got no outcome in time
	ReasonRolloutState       Reason = "rollout_state"       // pause/resume/cancel/retry in the wrong state
	ReasonUnknownRollout     Reason = "unknown_rollout"
	ReasonNotProvisioned     Reason = "not_provisioned" // deprovisioning a device that is not green
)

// Rejection is a refusal with a reason code and a human message. Handlers
// turn it into a Rejected event; the CLI prints Message and exits non-zero.
type Rejection struct {
	Reason  Reason
	Message string
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Message }

// Is makes errors.Is(err, ErrXxx) match on the reason alone.
func (r *Rejection) Is(target error) bool {
	var t *Rejection
	if errors.As(target, &t) {
		return t.Reason == r.Reason
	}
	return false
}

// Reject builds a *Rejection with a formatted message.
func Reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Sentinel errors callers branch on with errors.Is; they match any Rejection
// with the same reason.
var (
	ErrMalformed       = &Rejection{Reason: ReasonMalformed}
	ErrUnknownType     = &Rejection{Reason: ReasonUnknownType}
	ErrInvalidData     = &Rejection{Reason: ReasonInvalidData}
	ErrBadUUID         = &Rejection{Reason: ReasonBadUUID}
	ErrUnknownLicense  = &Rejection{Reason: ReasonUnknownLicense}
	ErrAlreadyActive   = &Rejection{Reason: ReasonAlreadyActive}
	ErrCustomerNotSet  = &Rejection{Reason: ReasonCustomerNotSet}
	ErrUnknownCustomer = &Rejection{Reason: ReasonUnknownCustomer}
)

// AsRejection returns the *Rejection inside err, or nil.
func AsRejection(err error) *Rejection {
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	return nil
}
