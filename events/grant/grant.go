// Package grant is the signed record of a license bound to one SmartServer
// — the grant every license.bound event carries — and the license file
// that carries grants to a SmartServer offline. It imports nothing from
// NATS and nothing else of licensebus but the canonical JSON of
// events/audit, so any Go program can verify a license file with it.
//
// # Signature
//
// A grant is signed with Ed25519 over the RFC 8785 canonical JSON (JCS) of
// the grant object without its "signature" member:
//
//	signature = base64(Ed25519-Sign(key, JCS(grant without "signature")))
//
// The key is named by key_id: the first 16 hex digits of the SHA-256 of the
// raw 32-byte public key. docs/consumers.md describes the file and how to
// verify one without licensebus.
package grant

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events/audit"
)

// Algorithm is the one signature algorithm of grants.
const Algorithm = "ed25519"

// Grant is a license bound to one SmartServer, as the license cloud signed
// it: who may use which license on which SmartServer, with which terms.
type Grant struct {
	// GrantID identifies this binding: the id of the license.bound event
	// that carries it. A SmartServer uses a grant at most once.
	GrantID     string `json:"grant_id"`
	LicenseID   string `json:"license_id"`   // the license (UUID)
	CustomerID  string `json:"customer_id"`  // the customer who owns it (UUID)
	InstallCode string `json:"install_code"` // the one SmartServer it is bound to
	Kind        string `json:"kind"`         // capacity or maintenance
	Devices     int    `json:"devices"`      // devices covered
	// Expires is the last day (YYYY-MM-DD) of a maintenance license;
	// absent for capacity licenses.
	Expires string `json:"expires,omitempty"`
	// BoundAt is when the cloud bound the license (RFC 3339, UTC).
	BoundAt string `json:"bound_at"`
	KeyID   string `json:"key_id"` // the key that signed it
	// Signature is the standard base64 of the 64-byte Ed25519 signature
	// over the canonical JSON of the other members.
	Signature string `json:"signature"`
}

// terms is a Grant without its signature: what the signature covers.
type terms struct {
	GrantID     string `json:"grant_id"`
	LicenseID   string `json:"license_id"`
	CustomerID  string `json:"customer_id"`
	InstallCode string `json:"install_code"`
	Kind        string `json:"kind"`
	Devices     int    `json:"devices"`
	Expires     string `json:"expires,omitempty"`
	BoundAt     string `json:"bound_at"`
	KeyID       string `json:"key_id"`
}

// Outcomes of verification callers branch on with errors.Is.
var (
	ErrMalformed    = errors.New("malformed license file")
	ErrBadSignature = errors.New("bad signature")
	ErrUnknownKey   = errors.New("unknown key")
	ErrKeyRevoked   = errors.New("key revoked")
)

// Time formats a bound time as grants carry it: RFC 3339 in UTC.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Signed returns the bytes the signature covers: the canonical JSON of g
// without its signature.
func (g *Grant) Signed() ([]byte, error) {
	raw, err := json.Marshal(terms{g.GrantID, g.LicenseID, g.CustomerID, g.InstallCode, g.Kind, g.Devices, g.Expires, g.BoundAt, g.KeyID})
	if err != nil {
		return nil, err
	}
	return audit.Canonical(raw)
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Key is a signing key: its id and a signer of its private key (an
// ed25519.PrivateKey, or anything that signs like one).
type Key struct {
	ID     string
	Signer crypto.Signer
}

// NewKey returns the Key of an Ed25519 private key.
func NewKey(priv ed25519.PrivateKey) Key {
	return Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Signer: priv}
}

// Public returns the key's public half, as a verifier holds it.
func (k Key) Public() PublicKey {
	pub, _ := k.Signer.Public().(ed25519.PublicKey)
	return PublicKey{ID: k.ID, Key: pub}
}

// SignBytes signs msg with the key (Ed25519 signs the message itself, not
// a digest of it).
func (k Key) SignBytes(msg []byte) ([]byte, error) {
	if k.Signer == nil {
		return nil, errors.New("grant: no signing key")
	}
	return k.Signer.Sign(nil, msg, crypto.Hash(0))
}

// Sign sets g's key id and signature.
func (k Key) Sign(g *Grant) error {
	g.KeyID = k.ID
	msg, err := g.Signed()
	if err != nil {
		return err
	}
	sig, err := k.SignBytes(msg)
	if err != nil {
		return fmt.Errorf("sign grant: %w", err)
	}
	g.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// PublicKey is a key a verifier trusts, by id; Revoked marks one whose
// grants no longer verify.
type PublicKey struct {
	ID      string
	Key     ed25519.PublicKey
	Revoked bool
}

// Keys are the keys a verifier trusts, by key id.
type Keys map[string]PublicKey

// VerifyBytes checks sig over msg under key id: ErrUnknownKey,
// ErrKeyRevoked or ErrBadSignature (each wrapped with detail), nil when it
// holds. sig is the standard base64 of the signature, decoded strictly so
// that no two spellings of one signature exist.
func (ks Keys) VerifyBytes(id string, msg []byte, sig string) error {
	k, ok := ks[id]
	if !ok || len(k.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: no trusted key %q", ErrUnknownKey, id)
	}
	if k.Revoked {
		return fmt.Errorf("%w: key %s was revoked", ErrKeyRevoked, id)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the signature is not 64 bytes of base64", ErrBadSignature)
	}
	if !ed25519.Verify(k.Key, msg, raw) {
		return fmt.Errorf("%w: under key %s", ErrBadSignature, id)
	}
	return nil
}

// Verify checks g's signature.
func (ks Keys) Verify(g *Grant) error {
	msg, err := g.Signed()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := ks.VerifyBytes(g.KeyID, msg, g.Signature); err != nil {
		return fmt.Errorf("grant %s of license %s: %w", g.GrantID, g.LicenseID, err)
	}
	return nil
}

// ParsePublicKey reads a public key as `license pubkey` prints it: the
// standard base64 of the 32 raw bytes.
func ParsePublicKey(s string) (PublicKey, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("not an Ed25519 public key: want the base64 of 32 bytes")
	}
	pub := ed25519.PublicKey(raw)
	return PublicKey{ID: KeyID(pub), Key: pub}, nil
}

// EncodePublicKey is how public keys are written: standard base64.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }
