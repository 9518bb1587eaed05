// Package signing holds the rules of the license cloud's signing keys:
// each key is published (its public half, on the event stream, where any
// reader finds it), a new one replaces the one that signs (rotation), and
// one that no longer signs can be revoked, after which grants under it no
// longer verify. The keys themselves come in as arguments: the rules never
// make or hold one. Pure functions, see package handlers.
package signing

import (
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/handlers"
)

// Key is what the cloud has published of one key.
type Key struct {
	Created   time.Time
	Revoked   bool
	RevokedAt string
}

// State is every published key, by key id.
type State struct {
	Keys map[string]Key
}

// Evolve folds a key event into s.
func Evolve(s *State, d events.Data) {
	switch e := d.(type) {
	case *events.KeyAdded:
		if s.Keys == nil {
			s.Keys = map[string]Key{}
		}
		if k, ok := s.Keys[e.KeyID]; !ok || k.Created.IsZero() {
			s.Keys[e.KeyID] = Key{Created: e.CreatedAt, Revoked: k.Revoked, RevokedAt: k.RevokedAt}
		}
	case *events.KeyRevoked:
		if s.Keys == nil {
			s.Keys = map[string]Key{}
		}
		k := s.Keys[e.KeyID]
		if !k.Revoked {
			k.Revoked, k.RevokedAt = true, e.RevokedAt
		}
		s.Keys[e.KeyID] = k
	}
}

// added is the publication of key k created at created, with id id.
func added(k grant.PublicKey, created time.Time, id string) handlers.Decision {
	return handlers.Emit(events.KeyAddedType, &events.KeyAdded{KeyID: k.ID, Algorithm: grant.Algorithm,
		PublicKey: grant.EncodePublicKey(k.Key), CreatedAt: created}, id)
}

// Publish publishes key k (created at created) unless it is published: the
// key the cloud signs with is always findable. Its event id derives from
// the key, so two processes publishing one key store it once.
func Publish(s *State, k grant.PublicKey, created time.Time) handlers.Decision {
	if _, ok := s.Keys[k.ID]; ok {
		return handlers.Nothing()
	}
	return added(k, created, events.DeriveID(k.ID, "key_added"))
}

// Rotate decides on rotate-key command commandID: next, the key made for
// it, signs from now on and is published. fixed says the key that signs
// was given to serve (--signing-key): it is rotated by giving serve
// another, on every node, not by a command.
func Rotate(s *State, commandID string, next grant.PublicKey, fixed bool, created time.Time) handlers.Decision {
	if fixed {
		return handlers.Refuse(events.ReasonSigningKeyState,
			"the signing key was given to serve with --signing-key: rotate it by giving every node the new key file first and the old one after it")
	}
	return added(next, created, events.DeriveID(commandID, "key_added"))
}

// Revoke decides on revoke-key command commandID for key kid; current is
// the key that signs now, which signs the revocation.
func Revoke(s *State, commandID, kid string, current grant.Key, now time.Time) handlers.Decision {
	k, ok := s.Keys[kid]
	switch {
	case !ok:
		return handlers.Refuse(events.ReasonUnknownKey, "no key %s was published (licensebus license pubkey lists them)", kid)
	case kid == current.ID:
		return handlers.Refuse(events.ReasonSigningKeyState, "key %s signs new grants: rotate the key (licensebus license rotate-key) before revoking it", kid)
	case k.Revoked:
		return handlers.Refuse(events.ReasonSigningKeyState, "key %s was revoked at %s", kid, k.RevokedAt)
	}
	r := grant.Revocation{KeyID: kid, RevokedAt: grant.Time(now)}
	if err := current.SignRevocation(&r); err != nil {
		return handlers.Refuse(events.ReasonInternal, "cannot sign the revocation of key %s: %v", kid, err)
	}
	return handlers.Emit(events.KeyRevokedType, &events.KeyRevoked{Revocation: r}, events.DeriveID(commandID, "key_revoked"))
}

// Reasons are the refusals the signing rules give.
func Reasons() []events.Reason {
	return []events.Reason{events.ReasonSigningKeyState, events.ReasonUnknownKey}
}
