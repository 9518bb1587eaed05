package audit

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/segmentio/encoding/json"
)

// The checkpoint stream and its one subject: the signed audit head, kept
// apart from the trail (deny delete and purge), so that a trail cut short,
// rewritten or regrown from changed sources is told from an intact one.
const (
	CheckpointStream  = "LICENSEBUS_AUDIT_CHECKPOINTS"
	CheckpointSubject = "lb.audit.checkpoints"
)

// Checkpoint is a signed statement of the trail's head: entry Seq has hash
// Hash and cursor Cursor, and the last source message of each stream the
// trail recorded up to it is Sources. The auditor writes one every
// 10,000 entries or 60 seconds (whichever comes first, if the trail
// moved), and when it stops. The signature is Ed25519 by the cloud's key
// KeyID over the RFC 8785 canonical JSON of the checkpoint without
// "signature", as for license grants.
type Checkpoint struct {
	Seq     uint64      `json:"seq"`     // the entry checkpointed
	Hash    string      `json:"hash"`    // its hash
	Cursor  Cursor      `json:"cursor"`  // its cursor
	Sources []SourceRef `json:"sources"` // the last source message of each stream recorded up to it
	Time    string      `json:"time"`    // when the checkpoint was taken (RFC 3339, UTC)
	KeyID   string      `json:"key_id"`  // the cloud's key that signed it
	// Signature is the standard base64 of the Ed25519 signature over the
	// canonical JSON of the other members.
	Signature string `json:"signature"`
}

// SourceRef names one source message: its stream, sequence and the
// message_sha256 its entry records.
type SourceRef struct {
	Stream        string `json:"stream"`
	Seq           uint64 `json:"seq"`
	MessageSHA256 string `json:"message_sha256"`
}

// unsignedCheckpoint is a Checkpoint without its signature.
type unsignedCheckpoint struct {
	Seq     uint64      `json:"seq"`
	Hash    string      `json:"hash"`
	Cursor  Cursor      `json:"cursor"`
	Sources []SourceRef `json:"sources"`
	Time    string      `json:"time"`
	KeyID   string      `json:"key_id"`
}

// Signed returns the bytes the signature covers.
func (c *Checkpoint) Signed() ([]byte, error) {
	raw, err := json.Marshal(unsignedCheckpoint{c.Seq, c.Hash, c.Cursor, c.Sources, c.Time, c.KeyID})
	if err != nil {
		return nil, err
	}
	return Canonical(raw)
}

// Sign signs c with key keyID, held by s (an ed25519.PrivateKey, say).
func (c *Checkpoint) Sign(keyID string, s crypto.Signer) error {
	c.KeyID = keyID
	msg, err := c.Signed()
	if err != nil {
		return err
	}
	sig, err := s.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("sign checkpoint %d: %w", c.Seq, err)
	}
	c.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// ErrCheckpointSignature means a checkpoint is not signed by the key it
// names.
var ErrCheckpointSignature = errors.New("checkpoint signature does not verify")

// Verify checks c's signature with pub, the public key of c.KeyID.
func (c *Checkpoint) Verify(pub ed25519.PublicKey) error {
	msg, err := c.Signed()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCheckpointSignature, err)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(c.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w: checkpoint of seq %d under key %s", ErrCheckpointSignature, c.Seq, c.KeyID)
	}
	return nil
}

// anchor is what a Verifier holds of the checkpoints: the hashes they
// name for each seq, and the highest seq.
type anchor struct {
	hashes map[uint64][]Checkpoint
	max    *Checkpoint
}

// SetCheckpoints gives the Verifier checkpoints (their signatures checked
// already) to hold the trail against: an entry at a checkpointed seq with
// another hash is Rewritten, a trail (or export) that ends before a
// checkpoint is Truncated. Call it before the first Add.
func (v *Verifier) SetCheckpoints(cps []Checkpoint) {
	v.anchor = anchor{hashes: map[uint64][]Checkpoint{}}
	for i := range cps {
		c := cps[i]
		v.anchor.hashes[c.Seq] = append(v.anchor.hashes[c.Seq], c)
		if v.anchor.max == nil || c.Seq > v.anchor.max.Seq {
			v.anchor.max = &c
		}
	}
	v.report.Checkpoints = len(cps)
}

// checkAnchor compares an entry accepted into the chain with the
// checkpoints of its seq.
func (v *Verifier) checkAnchor(e *Entry, where string) {
	for _, c := range v.anchor.hashes[e.Seq] {
		if c.Hash != e.Hash {
			v.problem(Rewritten, e.Seq, where, fmt.Sprintf("the checkpoint of %s signed hash %s for entry seq %d; the trail has %s", c.Time, short(c.Hash), e.Seq, short(e.Hash)))
		} else if v.report.Anchor == nil || c.Seq >= v.report.Anchor.Seq {
			cc := c
			v.report.Anchor = &cc
		}
	}
}

// finishAnchor reports the checkpoints past the end of the chain.
func (v *Verifier) finishAnchor() {
	if v.anchor.max == nil {
		return
	}
	if m := v.anchor.max; v.report.Chained == 0 || m.Seq > v.report.LastSeq {
		v.problem(Truncated, m.Seq, "end of the trail", fmt.Sprintf("the checkpoint of %s signed entry seq %d, but the trail ends at seq %d: entries were cut off",
			m.Time, m.Seq, v.report.LastSeq))
	}
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
