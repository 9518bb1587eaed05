package audit

import (
	"fmt"
	"strings"
	"testing"
)

// Ensure the tracer builds the causal tree: effects under their causes,
// commands caused by an event followed into their own correlation, the
// rejection of a command that has no id under that command, and an effect
// listed before its cause still placed.
func TestTracer(t *testing.T) {
	ev := func(id, corr, cause string) *Entry {
		return &Entry{Kind: KindEvent, ID: id, CorrelationID: corr, CausationID: cause}
	}
	cmd := func(id, cause string) *Entry {
		return &Entry{Kind: KindCommand, ID: id, CorrelationID: id, CausationID: cause}
	}
	tests := []struct {
		name    string
		root    string
		entries []*Entry
		want    string // the tree, one "id(children...)" per root
	}{
		{"chain", "c1", []*Entry{cmd("c1", ""), ev("e1", "c1", "c1"), cmd("other", ""), ev("e2", "c1", "e1"), ev("e3", "c1", "e1")},
			"c1(e1(e2,e3))"},
		{"provisioning", "c1", []*Entry{cmd("c1", ""), ev("e1", "c1", "c1"), cmd("p1", "e1"), cmd("p2", "e1"), ev("e2", "p1", "p1"), ev("x", "p9", "p9")},
			"c1(e1(p1(e2),p2))"},
		{"effect first", "c1", []*Entry{ev("e2", "c1x", "e1"), cmd("c1", ""), ev("e1", "c1", "c1")}, "c1(e1(e2))"},
		{"not a CloudEvent", "r1", []*Entry{{Kind: KindCommand, RejectionID: "r1"}, {Kind: KindRejection, ID: "r1", CorrelationID: "r1"}}, "(r1)"},
		{"cycle", "a", []*Entry{ev("a", "a", "b"), ev("b", "a", "a")}, "a(b)"},
		{"unknown", "nope", []*Entry{cmd("c1", "")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracer(tt.root)
			for _, e := range tt.entries {
				tr.Add(e)
			}
			var b strings.Builder
			for _, r := range tr.Roots() {
				b.WriteString(render(r))
			}
			if b.String() != tt.want {
				t.Fatalf("tree %s, want %s", b.String(), tt.want)
			}
		})
	}
}

func render(n *Node) string {
	if len(n.Children) == 0 {
		return n.Entry.ID
	}
	parts := make([]string, len(n.Children))
	for i, c := range n.Children {
		parts[i] = render(c)
	}
	return fmt.Sprintf("%s(%s)", n.Entry.ID, strings.Join(parts, ","))
}
