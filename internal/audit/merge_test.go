package audit

import (
	"testing"
	"time"
)

// Ensure the merge places a message only when the other stream cannot
// still deliver an earlier one, and otherwise says what to wait for.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	msg := func(seq uint64, ms int) *SourceMsg { return &SourceMsg{Seq: seq, Time: at(ms)} }
	snap := snapshot{last: [2]uint64{10, 20}, cutoff: at(100)}
	tests := []struct {
		name  string
		heads [2]*SourceMsg
		done  [2]uint64
		s     snapshot
		want  step
	}{
		{"earlier of two", [2]*SourceMsg{msg(5, 50), msg(9, 40)}, [2]uint64{4, 8}, snap, step{do: emit, stream: srcEvents}},
		{"tie: command first", [2]*SourceMsg{msg(5, 40), msg(9, 40)}, [2]uint64{4, 8}, snap, step{do: emit, stream: srcCommands}},
		{"other stream drained", [2]*SourceMsg{msg(5, 50), nil}, [2]uint64{4, 20}, snap, step{do: emit, stream: srcCommands}},
		{"other stream owes a message", [2]*SourceMsg{msg(5, 50), nil}, [2]uint64{4, 12}, snap, step{do: await, stream: srcEvents}},
		{"other head after the snapshot", [2]*SourceMsg{msg(5, 50), msg(21, 99)}, [2]uint64{4, 20}, snap, step{do: emit, stream: srcCommands}},
		{"other head after the cutoff", [2]*SourceMsg{msg(5, 50), msg(15, 120)}, [2]uint64{4, 14}, snap, step{do: emit, stream: srcCommands}},
		{"head after the cutoff settles", [2]*SourceMsg{msg(5, 130), nil}, [2]uint64{4, 20}, snap, step{do: resnap, wait: 30 * time.Millisecond}},
		{"head after the snapshot", [2]*SourceMsg{msg(11, 130), nil}, [2]uint64{10, 20}, snap, step{do: resnap}},
		{"nothing owed", [2]*SourceMsg{}, [2]uint64{10, 20}, snap, step{do: idle}},
		{"owed, nothing here", [2]*SourceMsg{}, [2]uint64{9, 20}, snap, step{do: await, stream: srcCommands}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.heads, tt.done, tt.s); got != tt.want {
				t.Fatalf("decide=%+v, want %+v", got, tt.want)
			}
		})
	}
}
