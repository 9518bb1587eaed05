// Package keyring keeps the license cloud's Ed25519 signing keys: secrets
// of the service identity, on disk only — never on the bus, never in a
// log. The ring is what serve signs grants and audit checkpoints with (its
// current key) and what its device side trusts (every key it has held).
//
// Keys live in a directory of the data directory, <data>/signing (mode
// 0700): one PKCS#8 PEM file per private key, <key-id>.key (0600), which
// openssl and Python's cryptography read, and ring.json (0600), the keys'
// public halves, creation times and which one signs. A cluster gives every
// node the same key with serve --signing-key FILE; the ring then records
// the public half of each key it was given, so that grants of a key
// replaced since keep verifying.
package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events/grant"
)

// stateFile is the ring's record of its keys.
const stateFile = "ring.json"

// record is one key in ring.json.
type record struct {
	KeyID     string    `json:"key_id"`
	PublicKey string    `json:"public_key"`
	Created   time.Time `json:"created"`
	// MadeBy is the rotate-key command that made the key, so a command
	// handled again finds the key it made instead of making another.
	MadeBy string `json:"made_by,omitempty"`
}

type state struct {
	Current string   `json:"current"`
	Keys    []record `json:"keys"`
}

// Ring is the cloud's signing keys. It is safe for concurrent use.
type Ring struct {
	dir   string   // "" when the keys are given and nothing is recorded
	fixed bool     // the current key was given (--signing-key)
	given []string // the files given

	mu      sync.RWMutex
	current grant.Key
	st      state
	trusted grant.Keys // every key's public half, by id
}

// Open opens the ring in dir (created if missing). files, if any, are the
// keys serve was given (--signing-key): the first signs, the others only
// keep verifying; dir then only records their public halves (dir may be
// "" to record nothing). Without files the ring signs with its current
// key, and creates one on first use: created says it did.
func Open(dir string, files []string, now time.Time) (r *Ring, created bool, err error) {
	r = &Ring{dir: dir, fixed: len(files) > 0, given: files}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("signing keys: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("signing keys: %w", err)
		}
		if r.st, err = readState(dir); err != nil {
			return nil, false, err
		}
	}
	if r.fixed {
		if err := r.openGiven(files, now); err != nil {
			return nil, false, err
		}
	} else {
		if created, err = r.openOwn(now); err != nil {
			return nil, false, err
		}
	}
	r.index()
	return r, created, nil
}

// openGiven takes the keys of files, the first one current.
func (r *Ring) openGiven(files []string, now time.Time) error {
	for i, path := range files {
		priv, err := ReadKeyFile(path)
		if err != nil {
			return err
		}
		k := grant.NewKey(priv)
		if i == 0 {
			r.current = k
		}
		if !r.has(k.ID) {
			r.st.Keys = append(r.st.Keys, record{KeyID: k.ID, PublicKey: grant.EncodePublicKey(k.Public().Key), Created: now.UTC()})
		}
	}
	if r.dir == "" {
		return nil
	}
	return writeState(r.dir, r.st)
}

// openOwn loads the ring's own current key, or creates the first one.
func (r *Ring) openOwn(now time.Time) (bool, error) {
	if r.dir == "" {
		return false, errors.New("signing keys: no directory to keep them in and no key given (--signing-key)")
	}
	if r.st.Current == "" {
		_, err := r.make("", now)
		return err == nil, err
	}
	priv, err := ReadKeyFile(filepath.Join(r.dir, r.st.Current+".key"))
	if err != nil {
		return false, err
	}
	if k := grant.NewKey(priv); k.ID != r.st.Current {
		return false, fmt.Errorf("signing keys: %s holds key %s, not %s", filepath.Join(r.dir, r.st.Current+".key"), k.ID, r.st.Current)
	}
	r.current = grant.NewKey(priv)
	return false, nil
}

// make creates a key, writes it, records it as current and returns it.
func (r *Ring) make(madeBy string, now time.Time) (grant.Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return grant.Key{}, fmt.Errorf("signing keys: %w", err)
	}
	k := grant.NewKey(priv)
	if err := WriteKeyFile(filepath.Join(r.dir, k.ID+".key"), priv); err != nil {
		return grant.Key{}, err
	}
	st := r.st
	st.Keys = append(slices.Clone(st.Keys), record{KeyID: k.ID, PublicKey: grant.EncodePublicKey(k.Public().Key), Created: now.UTC(), MadeBy: madeBy})
	st.Current = k.ID
	if err := writeState(r.dir, st); err != nil {
		return grant.Key{}, err
	}
	r.st, r.current = st, k
	return k, nil
}

func (r *Ring) has(id string) bool {
	return slices.ContainsFunc(r.st.Keys, func(rec record) bool { return rec.KeyID == id })
}

// index rebuilds the trusted keys from the records.
func (r *Ring) index() {
	ks := grant.Keys{}
	for _, rec := range r.st.Keys {
		pk, err := grant.ParsePublicKey(rec.PublicKey)
		if err != nil || pk.ID != rec.KeyID {
			continue
		}
		ks[pk.ID] = pk
	}
	if r.current.Signer != nil {
		ks[r.current.ID] = r.current.Public()
	}
	r.trusted = ks
}

// Current is the key that signs.
func (r *Ring) Current() grant.Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current
}

// CurrentFile is the file of the key that signs: what another node of a
// cluster is given with --signing-key.
func (r *Ring) CurrentFile() string {
	if r.fixed {
		return r.given[0]
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return filepath.Join(r.dir, r.current.ID+".key")
}

// Fixed says the key that signs was given to serve: a rotate-key command
// cannot replace it.
func (r *Ring) Fixed() bool { return r.fixed }

// Created is when key id joined the ring (zero if it is not in it).
func (r *Ring) Created(id string) time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, rec := range r.st.Keys {
		if rec.KeyID == id {
			return rec.Created
		}
	}
	return time.Time{}
}

// Trusted returns the public half of every key of the ring, by id: what
// the device side verifies grants with (before revocations). The map is
// the caller's.
func (r *Ring) Trusted() grant.Keys {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(grant.Keys, len(r.trusted))
	for id, k := range r.trusted {
		out[id] = k
	}
	return out
}

// Rotate makes a new key, which signs from now on, for rotate-key command
// commandID; the same command again returns the key it made.
func (r *Ring) Rotate(commandID string, now time.Time) (grant.Key, error) {
	if r.fixed {
		return grant.Key{}, errors.New("signing keys: the key was given with --signing-key and is not rotated here")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.st.Keys {
		if rec.MadeBy == commandID && commandID != "" {
			priv, err := ReadKeyFile(filepath.Join(r.dir, rec.KeyID+".key"))
			if err != nil {
				return grant.Key{}, err
			}
			return grant.NewKey(priv), nil
		}
	}
	k, err := r.make(commandID, now)
	if err != nil {
		return grant.Key{}, err
	}
	r.index()
	return k, nil
}

// ReadKeyFile reads an Ed25519 private key from a PKCS#8 PEM file
// ("-----BEGIN PRIVATE KEY-----", as openssl genpkey -algorithm ed25519
// writes it). A file others may read is refused, as ssh refuses one.
func ReadKeyFile(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: mode %v lets others read it; chmod 600 it", path, info.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: not a PEM \"PRIVATE KEY\" (PKCS#8) file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: a %T, not an Ed25519 key", path, k)
	}
	return priv, nil
}

// WriteKeyFile writes priv as a PKCS#8 PEM file of mode 0600; it never
// overwrites a file.
func WriteKeyFile(path string, priv ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("signing key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("signing key %s: %w", path, err)
	}
	return f.Close()
}

func readState(dir string) (state, error) {
	var st state
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("signing keys: %w", err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("signing keys: %s: %w", filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

// writeState replaces ring.json by a rename, so a crash leaves the old or
// the new one.
func writeState(dir string, st state) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".ring-*.json")
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(append(raw, '\n'))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, stateFile))
	}
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	return nil
}
