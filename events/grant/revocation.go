package grant

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/licensebus/licensebus/events/audit"
)

// Revocation says a key no longer signs: grants under it stop verifying.
// It is signed by another key (the one that signs grants when it is
// issued), so that nobody without a key can revoke one.
type Revocation struct {
	KeyID     string `json:"key_id"`     // the key revoked
	RevokedAt string `json:"revoked_at"` // when (RFC 3339, UTC)
	SignedBy  string `json:"signed_by"`  // the key that signed the revocation
	// Signature is the standard base64 of the Ed25519 signature over the
	// canonical JSON of the other members.
	Signature string `json:"signature"`
}

// revoked is a Revocation without its signature.
type revoked struct {
	KeyID     string `json:"key_id"`
	RevokedAt string `json:"revoked_at"`
	SignedBy  string `json:"signed_by"`
}

// Signed returns the bytes the signature covers.
func (r *Revocation) Signed() ([]byte, error) {
	raw, err := json.Marshal(revoked{r.KeyID, r.RevokedAt, r.SignedBy})
	if err != nil {
		return nil, err
	}
	return audit.Canonical(raw)
}

// SignRevocation sets r's signer and signature.
func (k Key) SignRevocation(r *Revocation) error {
	r.SignedBy = k.ID
	msg, err := r.Signed()
	if err != nil {
		return err
	}
	sig, err := k.SignBytes(msg)
	if err != nil {
		return fmt.Errorf("sign revocation: %w", err)
	}
	r.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// VerifyRevocation checks r was signed by a trusted key other than the one
// it revokes.
func (ks Keys) VerifyRevocation(r *Revocation) error {
	if r.SignedBy == r.KeyID {
		return fmt.Errorf("%w: key %s cannot revoke itself", ErrBadSignature, r.KeyID)
	}
	msg, err := r.Signed()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := ks.VerifyBytes(r.SignedBy, msg, r.Signature); err != nil {
		return fmt.Errorf("revocation of key %s: %w", r.KeyID, err)
	}
	return nil
}
