package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/segmentio/encoding/json"
)

// Seal links e to the entry whose hash is prevHash: it sets PrevHash,
// computes Hash and returns the canonical bytes of the whole entry, which
// is exactly what is stored on the audit stream.
func Seal(e *Entry, prevHash string) ([]byte, error) {
	var s Sealer
	return s.Seal(e, prevHash)
}

// Sealer seals entries as Seal does, reusing one buffer: a writer that
// seals every message of the streams allocates only what it returns.
// Not for concurrent use.
type Sealer struct{ b bytes.Buffer }

// Seal is the package's Seal.
func (s *Sealer) Seal(e *Entry, prevHash string) ([]byte, error) {
	e.PrevHash, e.Hash = prevHash, ""
	s.b.Reset()
	if err := appendEntry(&s.b, e, false); err != nil {
		return nil, fmt.Errorf("encode entry %d: %w", e.Seq, err)
	}
	e.Hash = chainHash(prevHash, s.b.Bytes())
	s.b.Reset()
	if err := appendEntry(&s.b, e, true); err != nil {
		return nil, fmt.Errorf("encode entry %d: %w", e.Seq, err)
	}
	return bytes.Clone(s.b.Bytes()), nil
}

// chainHash is an entry's hash: SHA-256, in hex, of the previous entry's
// hash followed by the entry's canonical bytes without its own hash.
func chainHash(prevHash string, unsealed []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(unsealed)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// ErrNotEntry means a message is not an audit entry at all.
var ErrNotEntry = errors.New("not an audit entry")

// Open decodes a stored entry and checks its hash against its content: ok
// is false when the content no longer matches the hash (an edit). The hash
// is recomputed from the document as it is, unknown members included, so
// nothing can be added to an entry unnoticed. err (wrapping ErrNotEntry)
// means raw is not an entry.
func Open(raw []byte) (e *Entry, ok bool, err error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrNotEntry, err)
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return nil, false, fmt.Errorf("%w: not a JSON object", ErrNotEntry)
	}
	hash, _ := obj["hash"].(string)
	prev, _ := obj["prev_hash"].(string)
	e = new(Entry)
	if err := json.Unmarshal(raw, e); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrNotEntry, err)
	}
	if hash == "" || e.Seq == 0 {
		return nil, false, fmt.Errorf("%w: no seq or hash", ErrNotEntry)
	}
	delete(obj, "hash")
	var b jsonBuffer
	if err := writeCanonical(&b.Buffer, obj); err != nil {
		return e, false, nil
	}
	return e, chainHash(prev, b.Bytes()) == hash, nil
}
