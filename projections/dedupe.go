package projections

import (
	"bytes"
	"hash/maphash"
)

// replayFromStart readies model i, just reset, for a replay from the first
// event, sized for what its bucket holds.
func (r *Runner) replayFromStart(i int, m Model) {
	if g, ok := m.(Grower); ok {
		g.Grow(len(r.stored[i]))
	}
	r.mark[i] ^= markBit
	r.replaying[i] = true
	r.held[i] = nil
}

// markBit is the bit of a stored hash that says "written in this replay".
const markBit = 1 << 63

// hash is the hash of an entry's value, without the mark bit. 63 bits:
// the odds of two values of one key colliding (and a write being
// skipped) are one in 2^63.
func (r *Runner) hash(v []byte) uint64 { return maphash.Bytes(r.seed, v) &^ markBit }

// keyHash is the fence's key for a subject.
func (r *Runner) keyHash(subject string) uint64 { return maphash.String(r.seed, subject) }

// hold takes one change of model i (k = v, nil deleting) while it replays
// and may not write yet: a value equal to what the bucket holds is only
// marked as written in this replay (and any older differing value held for
// it dropped); others are held for the head, copied unless owned.
func (r *Runner) hold(i int, k string, v []byte, owned bool) {
	stored, mark := r.stored[i], r.mark[i]
	if v != nil {
		if old, ok := stored[k]; ok && old&^markBit == r.hash(v) {
			if old&markBit != mark {
				stored[k] = old&^markBit | mark
			}
			delete(r.held[i], k)
			return
		}
		if !owned {
			v = bytes.Clone(v)
		}
	}
	if r.held[i] == nil {
		r.held[i] = make(map[string][]byte)
	}
	r.held[i][k] = v
}
