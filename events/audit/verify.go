package audit

import (
	"fmt"
	"slices"
)

// Tamper is a kind of problem verification finds.
type Tamper string

// What can be wrong with a trail. The first four concern the trail itself;
// the last two the streams it is stored on and records.
const (
	Edited        Tamper = "edited"         // an entry's content differs from what was written
	Dropped       Tamper = "dropped"        // an entry (or a source message) is missing
	Reordered     Tamper = "reordered"      // an entry is out of its place
	Inserted      Tamper = "inserted"       // a message that is not part of the chain
	SourceMissing Tamper = "source_missing" // a recorded source message is gone from its stream
	// StreamChanged: a stream of the trail or a source was changed under
	// it (deleted and created again, messages removed, settings changed).
	StreamChanged Tamper = "stream_changed"
	// Truncated: the trail ends before a signed checkpoint: entries were
	// cut off (or the trail deleted and started again).
	Truncated Tamper = "truncated"
	// Rewritten: an entry at a signed checkpoint has another hash: the
	// trail up to it was changed and chained again.
	Rewritten Tamper = "rewritten"
)

// Problem is one finding. Seq is the audit seq concerned (0 if unknown);
// Where is the position in the input ("line 7", "audit stream seq 7").
type Problem struct {
	Kind   Tamper `json:"kind"`
	Seq    uint64 `json:"seq,omitempty"`
	Where  string `json:"where"`
	Detail string `json:"detail"`
}

// Report sums a verification up.
type Report struct {
	Intact   bool   `json:"intact"`
	Messages uint64 `json:"messages"` // lines or stream messages read
	Chained  uint64 `json:"chained"`  // entries that form the chain
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// HeadHash is the hash of the last chained entry: compare it with the
	// live trail's to tell that nothing was cut off the end of an export.
	HeadHash string `json:"head_hash"`
	Cursor   Cursor `json:"cursor"`
	// Anchored is true when the chain starts at entry 1 from the genesis
	// hash; otherwise what came before FirstSeq is not in the input.
	Anchored bool      `json:"anchored"`
	Problems []Problem `json:"problems"`
	// ProblemCount counts every problem, also beyond the ones kept.
	ProblemCount int `json:"problem_count"`
	// Checkpoints is how many signed checkpoints the trail was held
	// against; Anchor the highest one it matches.
	Checkpoints int         `json:"checkpoints"`
	Anchor      *Checkpoint `json:"anchor,omitempty"`
}

// Add records findings beside the chain's (about the streams, say), ahead
// of them: they explain what the chain shows.
func (r *Report) Add(probs ...Problem) {
	if len(probs) == 0 {
		return
	}
	r.Problems = append(probs[:len(probs):len(probs)], r.Problems...)
	r.ProblemCount += len(probs)
	r.Intact = false
}

// Verifier checks a trail read in order, one message at a time, in constant
// memory: it keeps the chain's tip, a window of recent entries and the seqs
// found missing, and decides on each entry once it has seen the next one —
// that one look ahead is what tells an inserted entry (the next one skips
// it) from an edited one (the next one names a different hash for it).
type Verifier struct {
	// Check, if set, is called for each entry accepted into the chain, in
	// chain order; the problems it returns are reported too. Live
	// verification compares entries with their source messages here.
	Check func(e *Entry, raw []byte, where string) []Problem
	// MaxProblems bounds the problems kept in the report; default 1000.
	MaxProblems int

	tip      *link
	cur      *item
	suppress bool // the next entry's broken link was already reported
	side     *link
	sideIdx  int // index in report.Problems of the current reordered block, -1 if not kept
	byHash   map[string]link
	bySeq    map[uint64]link
	ring     []string // hashes in the window, oldest first
	missing  map[uint64]string
	report   Report
	anchor   anchor
}

// link is an entry as the chain knows it.
type link struct {
	seq    uint64
	hash   string
	cursor Cursor
	where  string
}

type item struct {
	raw   []byte
	where string
	e     *Entry
	ok    bool
	err   error
}

// window is how many recent entries the Verifier remembers to classify
// problems; missing seqs are remembered up to the same number.
const window = 4096

// Add feeds the next message of the trail. where names its position.
func (v *Verifier) Add(raw []byte, where string) {
	if v.byHash == nil {
		v.byHash, v.bySeq, v.missing, v.sideIdx = map[string]link{}, map[uint64]link{}, map[uint64]string{}, -1
	}
	v.report.Messages++
	it := &item{raw: raw, where: where}
	it.e, it.ok, it.err = Open(raw)
	if v.cur != nil {
		v.decide(v.cur, it)
	}
	v.cur = it
}

// Finish decides on the last message and returns the report.
func (v *Verifier) Finish() Report {
	if v.cur != nil {
		v.decide(v.cur, nil)
		v.cur = nil
	}
	seqs := make([]uint64, 0, len(v.missing))
	for s := range v.missing {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		v.problem(Dropped, seqs[i], v.missing[seqs[i]], "missing: "+seqRange(seqs[i], seqs[j])+" should come just before this position")
		i = j + 1
	}
	v.missing = nil
	v.finishAnchor()
	v.report.Intact = v.report.ProblemCount == 0
	if v.report.Problems == nil {
		v.report.Problems = []Problem{}
	}
	return v.report
}

func seqRange(a, b uint64) string {
	if a == b {
		return fmt.Sprintf("entry seq %d", a)
	}
	return fmt.Sprintf("entries seq %d-%d", a, b)
}

func (v *Verifier) problem(kind Tamper, seq uint64, where, detail string) int {
	v.report.ProblemCount++
	limit := v.MaxProblems
	if limit <= 0 {
		limit = 1000
	}
	if len(v.report.Problems) >= limit {
		return -1
	}
	v.report.Problems = append(v.report.Problems, Problem{Kind: kind, Seq: seq, Where: where, Detail: detail})
	return len(v.report.Problems) - 1
}

// linked reports whether e continues the chain's tip (or may start it).
func (v *Verifier) linked(e *Entry) bool {
	if v.tip == nil {
		return e.Seq != 1 || e.PrevHash == GenesisHash
	}
	return e.PrevHash == v.tip.hash && e.Seq == v.tip.seq+1
}

// seen reports whether hash is of a recent entry.
func (v *Verifier) seen(hash string) bool {
	_, ok := v.byHash[hash]
	return ok
}

func (v *Verifier) remember(l link) {
	v.byHash[l.hash] = l
	v.bySeq[l.seq] = l
	v.ring = append(v.ring, l.hash)
	if len(v.ring) > window {
		old := v.byHash[v.ring[0]]
		delete(v.byHash, v.ring[0])
		if v.bySeq[old.seq].hash == old.hash {
			delete(v.bySeq, old.seq)
		}
		v.ring = v.ring[1:]
	}
}

func (v *Verifier) accept(it *item) {
	e := it.e
	l := link{seq: e.Seq, hash: e.Hash, cursor: e.Cursor, where: it.where}
	if v.tip == nil {
		v.report.FirstSeq = e.Seq
		v.report.Anchored = e.Seq == 1 && e.PrevHash == GenesisHash
	}
	v.tip, v.side = &l, nil
	v.remember(l)
	v.report.Chained++
	v.report.LastSeq, v.report.HeadHash, v.report.Cursor = e.Seq, e.Hash, e.Cursor
	v.checkAnchor(e, it.where)
	if v.Check != nil {
		for _, p := range v.Check(e, it.raw, it.where) {
			v.problem(p.Kind, p.Seq, p.Where, p.Detail)
		}
	}
}

// decide classifies c, knowing n, the message after it (nil at the end).
func (v *Verifier) decide(c, n *item) {
	next := func() *Entry {
		if n == nil || n.e == nil || !n.ok {
			return nil
		}
		return n.e
	}()
	if c.e == nil {
		// A genuine entry mangled beyond parsing leaves a one-seq hole that
		// the next entry still names by hash; anything else was put in.
		if v.tip != nil && next != nil && next.Seq == v.tip.seq+2 && !v.seen(next.PrevHash) {
			v.problem(Edited, v.tip.seq+1, c.where, fmt.Sprintf("entry seq %d is no longer an audit entry (%v)", v.tip.seq+1, c.err))
			ph := link{seq: v.tip.seq + 1, hash: next.PrevHash, where: c.where}
			v.tip = &ph
			v.remember(ph)
			return
		}
		v.problem(Inserted, 0, c.where, fmt.Sprintf("not an audit entry (%v)", c.err))
		return
	}
	e := c.e
	if !c.ok {
		if v.tip != nil && next != nil && next.PrevHash == v.tip.hash && next.Seq == v.tip.seq+1 {
			v.problem(Inserted, e.Seq, c.where, fmt.Sprintf("not part of the chain: the entry after it (%s) continues from seq %d, and its hash does not match its content", n.where, v.tip.seq))
			return
		}
		v.problem(Edited, e.Seq, c.where, "its content was changed: the hash does not match it")
		v.accept(c)
		return
	}
	if v.linked(e) {
		if next != nil && next.PrevHash != e.Hash {
			if v.tip != nil && next.PrevHash == v.tip.hash && next.Seq == v.tip.seq+1 {
				v.problem(Inserted, e.Seq, c.where, fmt.Sprintf("not part of the chain: the entry after it (%s) continues from seq %d (%s)", n.where, v.tip.seq, v.tip.where))
				return
			}
			if next.Seq == e.Seq+1 && !v.seen(next.PrevHash) {
				v.problem(Edited, e.Seq, c.where, fmt.Sprintf("changed and re-hashed: entry seq %d (%s) records another hash for it", next.Seq, n.where))
				v.accept(c)
				v.suppress = true
				return
			}
		}
		v.accept(c)
		return
	}
	if v.tip == nil { // entry 1 that does not start from the genesis hash
		v.problem(Edited, e.Seq, c.where, "entry 1 does not start from the genesis hash")
		v.accept(c)
		return
	}
	if v.suppress && e.Seq == v.tip.seq+1 {
		v.suppress = false
		v.accept(c)
		return
	}
	v.suppress = false
	t := v.tip
	switch {
	case e.Seq > t.seq+1:
		if e.PrevHash == t.hash && next != nil && next.PrevHash == t.hash && next.Seq == t.seq+1 {
			v.problem(Inserted, e.Seq, c.where, fmt.Sprintf("not part of the chain: the entry after it (%s) continues from seq %d", n.where, t.seq))
			return
		}
		if e.PrevHash == t.hash {
			// Renumbered (and so re-hashed): it is still the entry after
			// the tip, and the next entry names its old hash.
			v.problem(Edited, e.Seq, c.where, fmt.Sprintf("renumbered: it follows seq %d but claims seq %d", t.seq, e.Seq))
			v.accept(c)
			v.tip.seq, v.suppress = t.seq+1, true
			return
		} else if e.Seq-t.seq-1 > window-uint64(len(v.missing)) {
			v.problem(Dropped, t.seq+1, c.where, "missing: "+seqRange(t.seq+1, e.Seq-1)+" before this entry")
		} else {
			for s := t.seq + 1; s < e.Seq; s++ {
				v.missing[s] = c.where
			}
		}
		v.accept(c)
	case e.Seq <= t.seq:
		if _, ok := v.missing[e.Seq]; ok {
			delete(v.missing, e.Seq)
			if s := v.side; s != nil && e.PrevHash == s.hash && e.Seq == s.seq+1 {
				// Same displaced block as the entry before it.
				if v.sideIdx >= 0 {
					v.report.Problems[v.sideIdx].Detail = fmt.Sprintf("out of place: %s appear after seq %d", seqRange(v.report.Problems[v.sideIdx].Seq, e.Seq), t.seq)
				}
			} else {
				v.sideIdx = v.problem(Reordered, e.Seq, c.where, fmt.Sprintf("out of place: entry seq %d appears after seq %d (%s)", e.Seq, t.seq, t.where))
			}
			v.side = &link{seq: e.Seq, hash: e.Hash}
			return
		}
		if l, ok := v.bySeq[e.Seq]; ok {
			if l.hash == e.Hash {
				v.problem(Inserted, e.Seq, c.where, fmt.Sprintf("a copy of entry seq %d (%s)", e.Seq, l.where))
			} else {
				v.problem(Inserted, e.Seq, c.where, fmt.Sprintf("a second entry with seq %d (the chained one is at %s)", e.Seq, l.where))
			}
			return
		}
		v.problem(Reordered, e.Seq, c.where, fmt.Sprintf("out of place: entry seq %d appears after seq %d (%s)", e.Seq, t.seq, t.where))
	default: // e.Seq == t.seq+1, but its prev_hash is not the tip's hash
		switch {
		case next != nil && next.PrevHash == t.hash && next.Seq == e.Seq:
			v.problem(Inserted, e.Seq, c.where, fmt.Sprintf("not part of the chain: the entry after it (%s) continues from seq %d", n.where, t.seq))
		case next != nil && next.PrevHash == e.Hash:
			v.problem(Edited, e.Seq, c.where, "its prev_hash was changed and the entry re-hashed")
			v.accept(c)
		case n == nil:
			v.problem(Inserted, e.Seq, c.where, fmt.Sprintf("does not continue the chain: its prev_hash is not the hash of seq %d (%s)", t.seq, t.where))
		default:
			v.problem(Edited, e.Seq, c.where, fmt.Sprintf("the chain breaks between seq %d (%s) and this entry: one of them was changed and re-hashed", t.seq, t.where))
			v.accept(c)
		}
	}
}
