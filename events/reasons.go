package events

import (
	"errors"
	"fmt"
)

// Reason is the machine-readable code of a refusal: of a command (in a
// Rejected event), of a query, or of a check such as an audit verification.
// Values are persisted and documented: never rename one.
type Reason string

// Class groups reasons by what the caller can do about them. The CLI's exit
// code and the HTTP status of a refusal derive from its class alone.
type Class string

// Classes of reasons.
const (
	Invalid     Class = "invalid"     // the request itself is wrong: fix it
	NotFound    Class = "not_found"   // it names something that does not exist
	Conflict    Class = "conflict"    // the state does not allow it now
	Forbidden   Class = "forbidden"   // the caller may not do it
	Unavailable Class = "unavailable" // no answer in time: try again later
	Internal    Class = "internal"    // a fault of licensebus, not of the request
)

// Every reason, by class. A reason is added here and nowhere else: the
// specs check that each has a rule that produces it, docs list them all.
const (
	// Invalid: the message or its data.
	ReasonMalformed       Reason = "malformed_event"   // not a CloudEvent
	ReasonUnknownType     Reason = "unknown_type"      // a CloudEvent of a type licensebus does not handle here
	ReasonInvalidData     Reason = "invalid_data"      // data missing, wrong or not UTF-8
	ReasonBadUUID         Reason = "bad_uuid"          // an id that is not a UUID
	ReasonBadInstallCode  Reason = "bad_install_code"  // an install code that cannot be a subject token
	ReasonSubjectMismatch Reason = "subject_mismatch"  // the subject is not the one of the command's type and data
	ReasonTooLarge        Reason = "message_too_large" // bigger than any command needs
	ReasonBadRequest      Reason = "bad_request"       // a query that does not parse
	ReasonUnknownQuery    Reason = "unknown_query"     // a query the API does not have
	ReasonNotRequired     Reason = "license_not_required"
	// ReasonMalformedLicense: not a license file (not JSON, a missing or
	// unknown field, another format or version).
	ReasonMalformedLicense Reason = "malformed_license_file"
	// ReasonInstallCodeMismatch: a license file (a grant) for another
	// SmartServer.
	ReasonInstallCodeMismatch Reason = "install_code_mismatch"

	// NotFound: what the command names does not exist.
	ReasonUnknownCustomer Reason = "unknown_customer"
	ReasonUnknownServer   Reason = "unknown_smartserver"
	ReasonUnknownLicense  Reason = "unknown_license"
	ReasonUnknownDevice   Reason = "unknown_device"
	ReasonUnknownRollout  Reason = "unknown_rollout"
	ReasonNotFound        Reason = "not_found"   // anything else a query or lookup names
	ReasonUnknownKey      Reason = "unknown_key" // a signing key nobody trusts here (a grant's, or one to revoke)

	// Conflict: the state does not allow the command now.
	ReasonAlreadyExists      Reason = "already_exists"   // an id that exists with other values
	ReasonIDReused           Reason = "id_reused"        // a command id used before for another command
	ReasonCustomerNotSet     Reason = "customer_not_set" // the SmartServer has no Customer ID yet
	ReasonCustomerMismatch   Reason = "customer_mismatch"
	ReasonAlreadyActive      Reason = "license_already_active"
	ReasonLicensesActive     Reason = "licenses_active" // a change that licenses on the SmartServer forbid
	ReasonNoActiveLicenses   Reason = "no_active_licenses"
	ReasonTransferInFlight   Reason = "transfer_in_progress"
	ReasonNotDownloaded      Reason = "licenses_not_downloaded"
	ReasonOtherServer        Reason = "device_on_other_smartserver"
	ReasonUnlicensed         Reason = "device_unlicensed"
	ReasonAlreadyProvisioned Reason = "already_provisioned"
	ReasonNotProvisioned     Reason = "not_provisioned"
	ReasonPoolExhausted      Reason = "pool_exhausted"
	ReasonRolloutState       Reason = "rollout_state"
	ReasonTampered           Reason = "tampered"    // an audit trail or export that does not verify
	ReasonOutOfStep          Reason = "out_of_step" // a checkpoint or stream setting that is not in step with the stream
	// ReasonGrantUsed: a grant the SmartServer activated before and gave
	// back to the cloud since; a new binding gives a new grant.
	ReasonGrantUsed Reason = "grant_used"
	// ReasonSigningKeyState: the signing keys do not allow it (revoking
	// the key that signs, a key revoked already, rotating a key serve was
	// given with --signing-key).
	ReasonSigningKeyState Reason = "signing_key_state"

	// Forbidden.
	ReasonPermissionDenied Reason = "permission_denied"
	// ReasonBadSignature: a grant (or a binding) whose signature does not
	// verify: edited, or forged by someone without the cloud's key.
	ReasonBadSignature Reason = "bad_signature"
	ReasonKeyRevoked   Reason = "key_revoked" // a grant signed by a key that was revoked

	// Unavailable.
	ReasonNoOutcome Reason = "no_outcome" // a command got no outcome in time

	// Internal.
	ReasonInternal Reason = "internal"
)

// reasonClasses is the table of every reason and its class.
func reasonClasses() []struct {
	Reason Reason
	Class  Class
} {
	return []struct {
		Reason Reason
		Class  Class
	}{
		{ReasonMalformed, Invalid}, {ReasonUnknownType, Invalid}, {ReasonInvalidData, Invalid},
		{ReasonBadUUID, Invalid}, {ReasonBadInstallCode, Invalid}, {ReasonSubjectMismatch, Invalid},
		{ReasonTooLarge, Invalid}, {ReasonBadRequest, Invalid}, {ReasonUnknownQuery, Invalid},
		{ReasonNotRequired, Invalid}, {ReasonMalformedLicense, Invalid}, {ReasonInstallCodeMismatch, Invalid},
		{ReasonUnknownCustomer, NotFound}, {ReasonUnknownServer, NotFound}, {ReasonUnknownLicense, NotFound},
		{ReasonUnknownDevice, NotFound}, {ReasonUnknownRollout, NotFound}, {ReasonNotFound, NotFound},
		{ReasonUnknownKey, NotFound},
		{ReasonAlreadyExists, Conflict}, {ReasonIDReused, Conflict}, {ReasonCustomerNotSet, Conflict},
		{ReasonCustomerMismatch, Conflict}, {ReasonAlreadyActive, Conflict}, {ReasonLicensesActive, Conflict},
		{ReasonNoActiveLicenses, Conflict}, {ReasonTransferInFlight, Conflict}, {ReasonNotDownloaded, Conflict},
		{ReasonOtherServer, Conflict}, {ReasonUnlicensed, Conflict}, {ReasonAlreadyProvisioned, Conflict},
		{ReasonNotProvisioned, Conflict}, {ReasonPoolExhausted, Conflict}, {ReasonRolloutState, Conflict},
		{ReasonTampered, Conflict}, {ReasonOutOfStep, Conflict}, {ReasonGrantUsed, Conflict}, {ReasonSigningKeyState, Conflict},
		{ReasonPermissionDenied, Forbidden}, {ReasonBadSignature, Forbidden}, {ReasonKeyRevoked, Forbidden},
		{ReasonNoOutcome, Unavailable},
		{ReasonInternal, Internal},
	}
}

// Reasons lists every reason in the table's order.
func Reasons() []Reason {
	t := reasonClasses()
	out := make([]Reason, len(t))
	for i, rc := range t {
		out[i] = rc.Reason
	}
	return out
}

// Class is r's class; a reason outside the table (from a newer or foreign
// writer) is Internal.
func (r Reason) Class() Class {
	for _, rc := range reasonClasses() {
		if rc.Reason == r {
			return rc.Class
		}
	}
	return Internal
}

// ExitCode is the CLI's exit status for a refusal of class c: 1 when the
// request was refused for what it asked, 3 when licensebus could not
// answer it (as for a connection failure).
func (c Class) ExitCode() int {
	switch c {
	case Unavailable, Internal:
		return 3
	}
	return 1
}

// HTTPStatus is the HTTP status of a refusal of class c.
func (c Class) HTTPStatus() int {
	switch c {
	case Invalid:
		return 422
	case NotFound:
		return 404
	case Conflict:
		return 409
	case Forbidden:
		return 403
	case Unavailable:
		return 503
	}
	return 500
}

// Rejection is a refusal with a reason code and a human message. Handlers
// turn it into a Rejected event; the CLI prints it and exits with its
// class's code.
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

// Sentinel errors callers branch on with errors.Is; each matches any
// Rejection with the same reason.
var (
	ErrUnknownServer  = &Rejection{Reason: ReasonUnknownServer}
	ErrUnknownRollout = &Rejection{Reason: ReasonUnknownRollout}
	ErrNotDownloaded  = &Rejection{Reason: ReasonNotDownloaded}
	ErrAlreadyActive  = &Rejection{Reason: ReasonAlreadyActive}
	ErrIDReused       = &Rejection{Reason: ReasonIDReused}
)

// AsRejection returns the *Rejection inside err, or nil.
func AsRejection(err error) *Rejection {
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	return nil
}
