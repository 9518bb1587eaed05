package grant

import (
	"crypto"
	"io"
	"sync"
)

// Verifier checks grants: Keys does, and a Memo in front of them.
type Verifier interface {
	Verify(g *Grant) error
}

// Memo verifies grants with Keys and remembers each outcome, by the
// grant's whole value. The rules decide under their adapter's lock, and a
// signature check is the slowest thing they do: an adapter verifies with a
// Memo before it takes the lock, and the rule's own check is then a
// lookup. It is safe for concurrent use.
type Memo struct {
	Keys Keys
	mu   sync.Mutex
	seen map[Grant]error
}

// NewMemo returns a Memo of keys.
func NewMemo(keys Keys) *Memo { return &Memo{Keys: keys} }

// Verify implements Verifier.
func (m *Memo) Verify(g *Grant) error {
	m.mu.Lock()
	err, ok := m.seen[*g]
	m.mu.Unlock()
	if ok {
		return err
	}
	err = m.Keys.Verify(g)
	m.mu.Lock()
	if m.seen == nil {
		m.seen = map[Grant]error{}
	}
	m.seen[*g] = err
	m.mu.Unlock()
	return err
}

// Remembering returns k with a signer that remembers what it signed: the
// same message signed again (a rule deciding under its adapter's lock what
// the adapter decided before taking it) returns the first signature at no
// cost. Ed25519 signatures are deterministic, so the result is the same.
// Use one per decision: it keeps what it signed.
func (k Key) Remembering() Key {
	return Key{ID: k.ID, Signer: &rememberingSigner{Signer: k.Signer, sigs: map[string][]byte{}}}
}

type rememberingSigner struct {
	crypto.Signer
	mu   sync.Mutex
	sigs map[string][]byte
}

func (s *rememberingSigner) Sign(rand io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.mu.Lock()
	sig, ok := s.sigs[string(msg)]
	s.mu.Unlock()
	if ok {
		return sig, nil
	}
	sig, err := s.Signer.Sign(rand, msg, opts)
	if err == nil {
		s.mu.Lock()
		s.sigs[string(msg)] = sig
		s.mu.Unlock()
	}
	return sig, err
}
