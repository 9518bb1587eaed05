package signing_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/handlers"
	"github.com/licensebus/licensebus/handlers/signing"
	"github.com/licensebus/licensebus/handlers/spec"
)

var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func key(b byte) grant.Key {
	return grant.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
}

var first, second = key(1), key(2)

func published(k grant.Key) events.Data {
	return &events.KeyAdded{KeyID: k.ID, Algorithm: grant.Algorithm, PublicKey: grant.EncodePublicKey(k.Public().Key), CreatedAt: now}
}

func revoked(k grant.Key) events.Data {
	return &events.KeyRevoked{Revocation: grant.Revocation{KeyID: k.ID, RevokedAt: grant.Time(now), SignedBy: "x"}}
}

// The rules of the cloud's signing keys, as given/when/then.
func TestSpec(t *testing.T) {
	revocation := grant.Revocation{KeyID: first.ID, RevokedAt: grant.Time(now)}
	if err := second.SignRevocation(&revocation); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		given []events.Data
		// when: publish the key that signs (publish), rotate to second
		// (rotate, fixed when serve was given the key), or revoke a key
		// while current signs.
		publish, rotate, fixed bool
		revoke                 string
		current                grant.Key
		then                   spec.Then
	}{
		{name: "the key that signs is published", publish: true,
			then: spec.Then{Type: events.KeyAddedType, Data: published(first)}},
		{name: "a published key is not published again", given: []events.Data{published(first)}, publish: true},
		{name: "rotation publishes the new key", given: []events.Data{published(first)}, rotate: true,
			then: spec.Then{Type: events.KeyAddedType, Data: published(second)}},
		{name: "a key given to serve is not rotated by a command", given: []events.Data{published(first)}, rotate: true, fixed: true,
			then: spec.Then{Reason: events.ReasonSigningKeyState}},
		{name: "a key that no longer signs is revoked, signed by the one that does", given: []events.Data{published(first), published(second)},
			revoke: first.ID, current: second,
			then: spec.Then{Type: events.KeyRevokedType, Data: &events.KeyRevoked{Revocation: revocation}}},
		{name: "the key that signs is not revoked", given: []events.Data{published(first)}, revoke: first.ID, current: first,
			then: spec.Then{Reason: events.ReasonSigningKeyState}},
		{name: "a key is revoked once", given: []events.Data{published(first), published(second), revoked(first)}, revoke: first.ID, current: second,
			then: spec.Then{Reason: events.ReasonSigningKeyState}},
		{name: "a key never published is unknown", given: []events.Data{published(second)}, revoke: first.ID, current: second,
			then: spec.Then{Reason: events.ReasonUnknownKey}},
	}
	var reasons []events.Reason
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s signing.State
			for _, d := range tt.given {
				signing.Evolve(&s, d)
			}
			var got handlers.Decision
			switch {
			case tt.publish:
				got = signing.Publish(&s, first.Public(), now)
			case tt.rotate:
				got = signing.Rotate(&s, "cmd-1", second.Public(), tt.fixed, now)
			default:
				got = signing.Revoke(&s, "cmd-1", tt.revoke, tt.current, now)
			}
			spec.Check(t, got, tt.then)
		})
		reasons = append(reasons, tt.then.Reason)
	}
	spec.Covers(t, signing.Reasons(), reasons)
}
