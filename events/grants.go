package events

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/licensebus/licensebus/events/grant"
)

// Offline activation (the License Customer Portal path) and the cloud's
// signing keys.
const (
	// FulfilType: the portal binds licenses to a SmartServer that is not
	// online and gets their signed grants, as a license file.
	FulfilType Type = "io.licensebus.license.fulfil"
	// FulfilledType: the licenses of a fulfil are bound; the outcome of a
	// fulfil, carrying the grants.
	FulfilledType Type = "io.licensebus.fulfilment.fulfilled"
	// ImportLicensesType: a SmartServer imports a license file.
	ImportLicensesType Type = "io.licensebus.smartserver.import_licenses"
	// LicensesImportedType: the licenses of a file are active on the
	// SmartServer.
	LicensesImportedType Type = "io.licensebus.smartserver.licenses_imported"
	// RotateKeyType asks the cloud to sign new grants with a new key.
	RotateKeyType Type = "io.licensebus.signing.rotate_key"
	// RevokeKeyType asks the cloud to revoke a key: grants under it no
	// longer verify.
	RevokeKeyType Type = "io.licensebus.signing.revoke_key"
	// KeyAddedType publishes a public key of the cloud.
	KeyAddedType Type = "io.licensebus.signing.key_added"
	// KeyRevokedType publishes a revocation.
	KeyRevokedType Type = "io.licensebus.signing.key_revoked"
)

func grantsInfo(t Type) (Info, bool) {
	switch t {
	case FulfilType:
		return Info{t, true, CloudSide, "license", "license_fulfil", false, func() Data { return new(Fulfil) }}, true
	case RotateKeyType:
		return Info{t, true, CloudSide, "signing", "signing_rotate_key", false, func() Data { return new(RotateKey) }}, true
	case RevokeKeyType:
		return Info{t, true, CloudSide, "signing", "signing_revoke_key", false, func() Data { return new(RevokeKey) }}, true
	case ImportLicensesType:
		return Info{t, true, DeviceSide, "smartserver", "import_licenses", false, func() Data { return new(ImportLicenses) }}, true
	case FulfilledType:
		return Info{t, false, "", "fulfilment", "fulfilled", true, func() Data { return new(Fulfilled) }}, true
	case LicensesImportedType:
		return Info{t, false, "", "smartserver", "licenses_imported", true, func() Data { return new(LicensesImported) }}, true
	case KeyAddedType:
		return Info{t, false, "", "signing", "key_added", true, func() Data { return new(KeyAdded) }}, true
	case KeyRevokedType:
		return Info{t, false, "", "signing", "key_revoked", true, func() Data { return new(KeyRevoked) }}, true
	}
	return Info{}, false
}

// grantsTypes lists the types above, commands first.
func grantsTypes() []Type {
	return []Type{FulfilType, ImportLicensesType, RotateKeyType, RevokeKeyType,
		FulfilledType, LicensesImportedType, KeyAddedType, KeyRevokedType}
}

// Fulfil asks the cloud, for the License Customer Portal, to bind licenses
// to a SmartServer that is not online: each is bound as an online
// activation binds it (so a license is never on two SmartServers), and the
// outcome carries their signed grants for a license file. CustomerID, if
// given, is the customer whose licenses they must be; otherwise they must
// all be of one customer.
type Fulfil struct {
	InstallCode string   `json:"install_code"`
	LicenseIDs  []string `json:"license_ids"`
	CustomerID  string   `json:"customer_id,omitempty"`
}

// Fulfilled: the licenses of a fulfil are bound to the SmartServer; Grants
// are their signed grants, in the order asked for.
type Fulfilled struct {
	InstallCode string        `json:"install_code"`
	CustomerID  string        `json:"customer_id"`
	LicenseIDs  []string      `json:"license_ids"`
	Grants      []grant.Grant `json:"grants"`
	FulfilledAt time.Time     `json:"fulfilled_at"`
}

// ImportLicenses imports a license file (the document itself, see
// docs/consumers.md) on a SmartServer: every grant is verified, then all
// are activated at once, or none.
type ImportLicenses struct {
	InstallCode string          `json:"install_code"`
	LicenseFile json.RawMessage `json:"license_file"` // the license file itself, a JSON object (docs/license-file.schema.json)
}

// Imported is one license a SmartServer imported.
type Imported struct {
	LicenseID string `json:"license_id"`
	Kind      string `json:"kind"`
	Devices   int    `json:"devices"`
	Expires   string `json:"expires,omitempty"`
	// ActivatedAt is when the cloud bound it (the grant's bound_at), as
	// for an online activation.
	ActivatedAt time.Time `json:"activated_at"`
	GrantID     string    `json:"grant_id"` // the grant it was activated with
	KeyID       string    `json:"key_id"`   // the key that signed it
}

// LicensesImported: the licenses of a license file are active on the
// SmartServer, as if activated online.
type LicensesImported struct {
	InstallCode string     `json:"install_code"`
	LicenseIDs  []string   `json:"license_ids"`
	Licenses    []Imported `json:"licenses"`
}

// RotateKey asks the cloud to create a new signing key: new grants are
// signed with it; grants signed before keep verifying.
type RotateKey struct{}

// RevokeKey asks the cloud to revoke a signing key that no longer signs.
type RevokeKey struct {
	KeyID string `json:"key_id"`
}

// KeyAdded publishes a public key of the cloud: grants name it by key id.
type KeyAdded struct {
	KeyID     string    `json:"key_id"`
	Algorithm string    `json:"algorithm"`  // ed25519
	PublicKey string    `json:"public_key"` // standard base64 of the 32-byte public key
	CreatedAt time.Time `json:"created_at"`
}

// KeyRevoked publishes a revocation, signed by another key of the cloud.
type KeyRevoked struct {
	grant.Revocation
}

// Validate implements Data.
func (d *Fulfil) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	if len(d.LicenseIDs) == 0 {
		return Reject(ReasonInvalidData, "license_ids is required")
	}
	seen := make(map[string]bool, len(d.LicenseIDs))
	for _, lid := range d.LicenseIDs {
		if err := checkUUID("license_id", lid); err != nil {
			return err
		}
		if seen[lid] {
			return Reject(ReasonInvalidData, "license %s is named twice", lid)
		}
		seen[lid] = true
	}
	return checkOptionalUUID("customer_id", d.CustomerID)
}

// Validate implements Data.
func (d *Fulfilled) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data: the install code, and the license file read
// strictly (ReasonMalformedLicense says what is wrong with it); the
// signatures are the SmartServer's to check.
func (d *ImportLicenses) Validate() error {
	if err := checkInstallCode(d.InstallCode); err != nil {
		return err
	}
	_, err := d.File()
	return err
}

// File decodes the license file; an error is a *Rejection with
// ReasonMalformedLicense.
func (d *ImportLicenses) File() (*grant.File, error) {
	if len(d.LicenseFile) == 0 || string(d.LicenseFile) == "null" {
		return nil, Reject(ReasonMalformedLicense, "license_file is required: the license file's JSON document")
	}
	f, err := grant.Decode(d.LicenseFile)
	if err != nil {
		return nil, Reject(ReasonMalformedLicense, "%v", err)
	}
	return f, nil
}

// Validate implements Data.
func (d *LicensesImported) Validate() error { return checkInstallCode(d.InstallCode) }

// Validate implements Data.
func (d *RotateKey) Validate() error { return nil }

// Validate implements Data.
func (d *RevokeKey) Validate() error {
	if !validKeyID(d.KeyID) {
		return Reject(ReasonInvalidData, "key_id %q is not a key id (16 hex digits, see license pubkey)", d.KeyID)
	}
	return nil
}

// Validate implements Data.
func (d *KeyAdded) Validate() error {
	if !validKeyID(d.KeyID) {
		return Reject(ReasonInvalidData, "key_id %q is not a key id", d.KeyID)
	}
	return nil
}

// Validate implements Data.
func (d *KeyRevoked) Validate() error {
	if !validKeyID(d.KeyID) {
		return Reject(ReasonInvalidData, "key_id %q is not a key id", d.KeyID)
	}
	return nil
}

// validKeyID says s is a key id: 16 lowercase hex digits.
func validKeyID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Key implements Data.
func (d *Fulfil) Key() string           { return d.InstallCode }
func (d *Fulfilled) Key() string        { return d.InstallCode }
func (d *ImportLicenses) Key() string   { return d.InstallCode }
func (d *LicensesImported) Key() string { return d.InstallCode }
func (d *RotateKey) Key() string        { return "" }
func (d *RevokeKey) Key() string        { return d.KeyID }
func (d *KeyAdded) Key() string         { return d.KeyID }
func (d *KeyRevoked) Key() string       { return d.KeyID }

// RejectionFields implements the rejection field hook.
func (d *Fulfil) RejectionFields() (string, string, string) {
	lid := ""
	if len(d.LicenseIDs) == 1 {
		lid = d.LicenseIDs[0]
	}
	return d.InstallCode, lid, d.CustomerID
}

// RejectionFields implements the rejection field hook: a binding the
// device side refuses names its license.
func (d *LicenseBound) RejectionFields() (string, string, string) {
	return d.InstallCode, d.LicenseID, d.CustomerID
}

// RejectionFields implements the rejection field hook.
func (d *ImportLicenses) RejectionFields() (string, string, string) { return d.InstallCode, "", "" }

// GrantError is the Rejection of a grant that does not verify, by what
// is wrong with it: an unknown key, a revoked key, or a bad signature.
func GrantError(err error) *Rejection {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, grant.ErrUnknownKey):
		return Reject(ReasonUnknownKey, "%v", err)
	case errors.Is(err, grant.ErrKeyRevoked):
		return Reject(ReasonKeyRevoked, "%v", err)
	case errors.Is(err, grant.ErrMalformed):
		return Reject(ReasonMalformedLicense, "%v", err)
	}
	return Reject(ReasonBadSignature, "%v", err)
}
