package audit

import (
	"time"
)

// The two source streams, in tie-break order: at equal stream times a
// command goes first, as commands cause events.
const (
	srcCommands = iota
	srcEvents
)

// snapshot is what the merge knows of both source streams at one moment:
// their last sequences and a cutoff time before which each of them can hold
// nothing it has not stored yet.
type snapshot struct {
	last   [2]uint64
	cutoff time.Time
}

// step is what the merge does next.
type step struct {
	do     action
	stream int           // for emit and await
	wait   time.Duration // for resnap: settle first
}

type action int

const (
	emit   action = iota // write stream's head
	await                // stream's next message is in the snapshot but not here yet
	resnap               // take a new snapshot (after wait)
	idle                 // everything is written: wait for a new message
)

// decide orders the two streams by stream time. heads are the next unwritten
// message of each stream (nil: none received yet); done[i] is the last
// sequence of stream i known to be written or not to exist. It emits a head
// only when the other stream cannot still deliver an earlier message: the
// other's head is later, or the other has delivered everything up to the
// snapshot and anything stored after the snapshot is after the cutoff.
func decide(heads [2]*SourceMsg, done [2]uint64, s snapshot) step {
	var eligible [2]bool
	for i, h := range heads {
		eligible[i] = h != nil && h.Seq <= s.last[i] && !h.Time.After(s.cutoff)
	}
	// settled[i]: stream i has nothing at or before the cutoff still to come.
	var settled [2]bool
	for i, h := range heads {
		settled[i] = (h != nil && !eligible[i]) || (h == nil && done[i] >= s.last[i])
	}
	switch {
	case eligible[0] && eligible[1]:
		if heads[srcEvents].Time.Before(heads[srcCommands].Time) {
			return step{do: emit, stream: srcEvents}
		}
		return step{do: emit, stream: srcCommands}
	case eligible[0] || eligible[1]:
		i := srcCommands
		if eligible[srcEvents] {
			i = srcEvents
		}
		if settled[1-i] {
			return step{do: emit, stream: i}
		}
		return step{do: await, stream: 1 - i}
	}
	for i, h := range heads {
		if h == nil && done[i] < s.last[i] {
			return step{do: await, stream: i}
		}
	}
	var wait time.Duration
	held := false
	for i, h := range heads {
		if h == nil {
			continue
		}
		held = true
		if h.Seq <= s.last[i] { // stored before the snapshot but after its cutoff: let it settle
			wait = max(wait, h.Time.Sub(s.cutoff))
		}
	}
	if held {
		return step{do: resnap, wait: wait}
	}
	return step{do: idle}
}
