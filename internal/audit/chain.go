package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Seal links e to the entry whose hash is prevHash: it sets PrevHash,
// computes Hash and returns the canonical bytes of the whole entry, which
// is exactly what is stored on the audit stream.
func Seal(e *Entry, prevHash string) ([]byte, error) {
	e.PrevHash, e.Hash = prevHash, ""
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode entry %d: %w", e.Seq, err)
	}
	v, err := decodeJSON(b)
	if err != nil {
		return nil, err
	}
	obj := v.(map[string]any) // an Entry encodes as an object
	delete(obj, "hash")
	// Canonicalize once: the members in their sorted order, each written
	// once, then the object assembled without the hash (to hash it) and
	// with it, spliced into its sorted place.
	keys := make([]string, 0, len(obj)+1)
	for k := range obj {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)
	var buf jsonBuffer
	ends := make([]int, len(keys))
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(&buf.Buffer, k)
		buf.WriteByte(':')
		if err := writeCanonical(&buf.Buffer, obj[k]); err != nil {
			return nil, err
		}
		ends[i] = buf.Len()
	}
	members := buf.Bytes()
	unsealed := make([]byte, 0, len(members)+2)
	unsealed = append(append(append(unsealed, '{'), members...), '}')
	e.Hash = chainHash(prevHash, unsealed)

	at := len(keys) // the hash member goes before the first key after it
	for i, k := range keys {
		if compareUTF16("hash", k) < 0 {
			at = i
			break
		}
	}
	split := 0
	if at > 0 {
		split = ends[at-1]
	}
	var hb jsonBuffer
	writeString(&hb.Buffer, "hash")
	hb.WriteByte(':')
	writeString(&hb.Buffer, e.Hash)
	rest := members[split:] // from the next member on
	if at > 0 && at < len(keys) {
		rest = rest[1:] // its leading comma
	}
	out := make([]byte, 0, len(unsealed)+hb.Len()+2)
	out = append(out, '{')
	out = append(out, members[:split]...)
	if at > 0 {
		out = append(out, ',')
	}
	out = append(out, hb.Bytes()...)
	if at < len(keys) {
		out = append(append(out, ','), rest...)
	}
	return append(out, '}'), nil
}

func chainHash(prevHash string, unsealed []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(unsealed)
	return hex.EncodeToString(h.Sum(nil))
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
