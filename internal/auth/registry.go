package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// Record is what licensebus keeps of issued credentials: no secret, only
// who they are for and the public key the NATS server knows them by.
type Record struct {
	Name        string     `json:"name"`
	Role        Role       `json:"role"`
	InstallCode string     `json:"install_code"`
	PublicKey   string     `json:"public_key"`
	Issued      time.Time  `json:"issued"`
	Expires     *time.Time `json:"expires"` // null: never
	Revoked     bool       `json:"revoked"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Outcomes of the registry callers branch on.
var (
	ErrNameInUse = errors.New("name in use")
	ErrUnknown   = errors.New("no such credentials")
)

// RecordOf is the record of a user JWT licensebus signed.
func RecordOf(uc *jwt.UserClaims) Record {
	id, _ := IdentityOf(uc)
	r := Record{Name: id.Name, Role: id.Role, PublicKey: uc.Subject, Issued: time.Unix(uc.IssuedAt, 0).UTC()}
	if id.Role == SmartServer {
		r.InstallCode = id.Name
	}
	if uc.Expires != 0 {
		t := time.Unix(uc.Expires, 0).UTC()
		r.Expires = &t
	}
	return r
}

// Registry keeps the records in the KV bucket licensebus_creds, one entry
// per name: the current credentials of that name. Only the service writes
// the bucket. It is safe for concurrent use.
type Registry struct {
	kv jetstream.KeyValue

	mu    sync.RWMutex
	byKey map[string]Record // public key → record
	names map[string]string // name → public key
}

// OpenRegistry creates the bucket if need be, with replicas (0 or 1 for
// one), and loads the records. An existing bucket keeps its replicas.
func OpenRegistry(ctx context.Context, js jetstream.JetStream, replicas int) (*Registry, error) {
	kv, err := js.KeyValue(ctx, CredsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: CredsBucket, Description: "licensebus credentials issued (no secrets)", History: 5, Storage: jetstream.FileStorage, Replicas: replicas})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, CredsBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("credentials bucket: %w", err)
	}
	r := &Registry{kv: kv, byKey: map[string]Record{}, names: map[string]string{}}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials bucket: %w", err)
	}
	for k := range keys.Keys() {
		if e, err := kv.Get(ctx, k); err == nil {
			r.remember(e.Value())
		}
	}
	return r, nil
}

// Run follows the bucket, so records another process writes are known here
// too (for naming refusals), until ctx ends.
func (r *Registry) Run(ctx context.Context) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return ctx.Err()
			}
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				r.remember(e.Value())
			}
		}
	}
}

func (r *Registry) remember(b []byte) {
	var rec Record
	if json.Unmarshal(b, &rec) != nil || rec.PublicKey == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byKey[rec.PublicKey] = rec
	r.names[rec.Name] = rec.PublicKey
}

// List returns the current record of every name, by name.
func (r *Registry) List() []Record {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Record, 0, len(r.names))
	for _, pub := range r.names {
		out = append(out, r.byKey[pub])
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup finds the record of a public key, also one replaced since.
func (r *Registry) Lookup(pub string) (Record, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, ok := r.byKey[pub]
	return rec, ok
}

// Get reads the current record of a name; ErrUnknown if there is none.
func (r *Registry) Get(ctx context.Context, name string) (Record, error) {
	e, err := r.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, fmt.Errorf("%w named %q", ErrUnknown, name)
	}
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, fmt.Errorf("record of %s: %w", name, err)
	}
	return rec, nil
}

// Add records credentials. A name is taken while its credentials are not
// revoked: Add then fails with ErrNameInUse. Compare-and-set on the entry
// keeps two processes from giving one name twice.
func (r *Registry) Add(ctx context.Context, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	e, err := r.kv.Get(ctx, rec.Name)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = r.kv.Create(ctx, rec.Name, b)
	case err != nil:
		return err
	default:
		var cur Record
		if json.Unmarshal(e.Value(), &cur) == nil && !cur.Revoked && cur.PublicKey != rec.PublicKey {
			return fmt.Errorf("%w: %s has %s credentials (key %s); revoke them first", ErrNameInUse, rec.Name, cur.Role, cur.PublicKey)
		}
		_, err = r.kv.Update(ctx, rec.Name, b, e.Revision())
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSeq(err) {
		return fmt.Errorf("%w: %s was issued at the same moment elsewhere", ErrNameInUse, rec.Name)
	}
	if err != nil {
		return err
	}
	r.remember(b)
	return nil
}

func isWrongSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == 10164)
}

// Issue signs a user JWT for id and the user's public key and records it.
// The JWT is returned only once recorded.
func (r *Registry) Issue(ctx context.Context, s *Signer, id Identity, userPub string, expires time.Time) (string, Record, error) {
	token, err := s.Sign(id, userPub, expires)
	if err != nil {
		return "", Record{}, err
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return "", Record{}, err
	}
	rec := RecordOf(uc)
	if err := r.Add(ctx, rec); err != nil {
		return "", Record{}, err
	}
	return token, rec, nil
}

// Revoker makes the NATS server refuse a user key's JWTs issued up to at.
type Revoker func(ctx context.Context, userPub string, at time.Time) error

// Revoke revokes the current credentials of name: first on the server
// (revoke, when not nil), then in the record. Revoking revoked
// credentials again changes nothing.
func (r *Registry) Revoke(ctx context.Context, name string, revoke Revoker) (Record, error) {
	e, err := r.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, fmt.Errorf("%w named %q", ErrUnknown, name)
	}
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, fmt.Errorf("record of %s: %w", name, err)
	}
	if rec.Revoked {
		return rec, nil
	}
	// Wall time, as the JWTs' issue times are: a revocation covers the
	// JWTs issued up to it.
	at := time.Now().UTC()
	if revoke != nil {
		if err := revoke(ctx, rec.PublicKey, at); err != nil {
			return Record{}, err
		}
	}
	rec.Revoked, rec.RevokedAt = true, &at
	b, err := json.Marshal(rec)
	if err != nil {
		return Record{}, err
	}
	if _, err := r.kv.Update(ctx, name, b, e.Revision()); err != nil {
		return Record{}, fmt.Errorf("record of %s: %w", name, err)
	}
	r.remember(b)
	return rec, nil
}
