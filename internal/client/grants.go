package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishedKey is a signing key of the cloud as the event stream publishes
// it: what `license pubkey` lists.
type PublishedKey struct {
	KeyID     string    `json:"key_id"`
	Algorithm string    `json:"algorithm"`
	PublicKey string    `json:"public_key"` // standard base64 of the 32-byte public key
	Created   time.Time `json:"created"`
	// Current is the key new grants are signed with: the last one
	// published that is not revoked.
	Current   bool   `json:"current"`
	Revoked   bool   `json:"revoked"`
	RevokedAt string `json:"revoked_at,omitempty"`
}

// PublishedKeys reads the cloud's keys and revocations from the event
// stream (lb.evt.signing.>), in the order they were published. A
// revocation counts only if a key published before it, and not revoked,
// signed it.
func PublishedKeys(ctx context.Context, js jetstream.JetStream) ([]PublishedKey, error) {
	cons, err := js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"lb.evt.signing.>"}})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	var out []PublishedKey
	index := map[string]int{}
	trusted := grant.Keys{}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			m, err := events.Decode(msg.Headers(), msg.Data())
			if err != nil {
				continue
			}
			switch d := m.Data.(type) {
			case *events.KeyAdded:
				pk, err := grant.ParsePublicKey(d.PublicKey)
				if err != nil || pk.ID != d.KeyID {
					continue // not a key of its id: not one to trust
				}
				if _, ok := index[d.KeyID]; ok {
					continue
				}
				index[d.KeyID] = len(out)
				trusted[pk.ID] = pk
				out = append(out, PublishedKey{KeyID: d.KeyID, Algorithm: d.Algorithm, PublicKey: d.PublicKey, Created: d.CreatedAt})
			case *events.KeyRevoked:
				i, ok := index[d.KeyID]
				if !ok || out[i].Revoked || trusted.VerifyRevocation(&d.Revocation) != nil {
					continue
				}
				out[i].Revoked, out[i].RevokedAt = true, d.RevokedAt
				k := trusted[d.KeyID]
				k.Revoked = true
				trusted[d.KeyID] = k
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		if got == 0 {
			break
		}
	}
	for i := len(out) - 1; i >= 0; i-- {
		if !out[i].Revoked {
			out[i].Current = true
			break
		}
	}
	return out, nil
}

// Trust is the keys a verifier trusts, from published keys.
func Trust(keys []PublishedKey) grant.Keys {
	ks := grant.Keys{}
	for _, k := range keys {
		pk, err := grant.ParsePublicKey(k.PublicKey)
		if err != nil {
			continue
		}
		pk.Revoked = k.Revoked
		ks[pk.ID] = pk
	}
	return ks
}

// LicenseGrant returns the grant of license lid's current binding, from
// the event stream: refused (not_found) when the license is not bound, or
// was bound before grants existed.
func LicenseGrant(ctx context.Context, js jetstream.JetStream, lid string) (*grant.Grant, error) {
	if !events.ValidUUID(lid) {
		return nil, events.Reject(events.ReasonBadUUID, "license id %q is not a UUID", lid)
	}
	str, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	raw, err := str.GetLastMsgForSubject(ctx, events.AggregateFilter("license", lid))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, events.Reject(events.ReasonUnknownLicense, "no license %s", lid)
	}
	if err != nil {
		return nil, fmt.Errorf("license %s: %w", lid, err)
	}
	m, err := events.Decode(raw.Header, raw.Data)
	if err != nil {
		return nil, fmt.Errorf("license %s: last event: %w", lid, err)
	}
	b, ok := m.Data.(*events.LicenseBound)
	switch {
	case !ok:
		return nil, events.Reject(events.ReasonNotFound, "license %s is not bound to a SmartServer (its last event is %s)", lid, m.Info.Verb)
	case b.Grant == nil:
		return nil, events.Reject(events.ReasonNotFound,
			"license %s was bound to SmartServer %s before grants existed: transfer it to the cloud and activate it again for a signed grant", lid, b.InstallCode)
	}
	return b.Grant, nil
}
