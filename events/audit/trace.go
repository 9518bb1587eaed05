package audit

// Node is an entry in a causal tree, with the entries it caused.
type Node struct {
	Entry    *Entry
	Children []*Node
}

// Tracer collects the causal tree of one command from one pass over the
// trail: the entries of its correlation id, every entry caused by one of
// them (also commands of another correlation, such as the provisioning
// commands an event triggers), recursively, and for a command that was not
// a CloudEvent the rejection recorded for it. It holds the tree and a
// bounded window of recent entries: an effect the trail lists before its
// cause (possible across streams with clock skew) is still found if it is
// at most a window behind.
type Tracer struct {
	root        string
	nodes       []*Node
	byID        map[string]*Node
	byRejection map[string]*Node // commands without an id, by the id of their rejection
	recent      []*Entry         // not in the tree, oldest first
	recentCause map[string]int   // how many recent entries name each causation id
}

// NewTracer returns a Tracer for correlation id root (a command id).
func NewTracer(root string) *Tracer {
	return &Tracer{root: root, byID: map[string]*Node{}, byRejection: map[string]*Node{}, recentCause: map[string]int{}}
}

// Add feeds the next entry of the trail.
func (t *Tracer) Add(e *Entry) {
	if !t.member(e) {
		t.recent = append(t.recent, e)
		t.recentCause[e.CausationID]++
		if len(t.recent) > window {
			old := t.recent[0]
			if t.recentCause[old.CausationID]--; t.recentCause[old.CausationID] == 0 {
				delete(t.recentCause, old.CausationID)
			}
			t.recent = t.recent[1:]
		}
		return
	}
	t.include(e)
}

func (t *Tracer) member(e *Entry) bool {
	if e.CorrelationID == t.root || e.ID == t.root || (e.RejectionID != "" && e.RejectionID == t.root) {
		return true
	}
	if e.CausationID != "" && t.byID[e.CausationID] != nil {
		return true
	}
	return e.Kind == KindRejection && t.byRejection[e.ID] != nil
}

func (t *Tracer) include(e *Entry) {
	n := &Node{Entry: e}
	t.nodes = append(t.nodes, n)
	if e.ID != "" && t.byID[e.ID] == nil {
		t.byID[e.ID] = n
	}
	if e.RejectionID != "" {
		t.byRejection[e.RejectionID] = n
	}
	// Effects seen before their cause.
	if t.recentCause[e.ID] == 0 && e.RejectionID == "" {
		return
	}
	for i := 0; i < len(t.recent); i++ {
		r := t.recent[i]
		if t.member(r) {
			t.recent = append(t.recent[:i:i], t.recent[i+1:]...)
			if t.recentCause[r.CausationID]--; t.recentCause[r.CausationID] == 0 {
				delete(t.recentCause, r.CausationID)
			}
			t.include(r)
			i = -1 // the window changed: look again
		}
	}
}

// Roots returns the tree: the entries whose cause is not in it (normally
// the one command), each with its effects, in trail order.
func (t *Tracer) Roots() []*Node {
	parent := make(map[*Node]*Node, len(t.nodes))
	for _, n := range t.nodes {
		p := t.byID[n.Entry.CausationID]
		if n.Entry.CausationID == "" || p == n {
			p = nil
		}
		if p == nil && n.Entry.Kind == KindRejection {
			p = t.byRejection[n.Entry.ID]
		}
		if p != nil {
			parent[n] = p
		}
	}
	// A cycle of causation ids (only forged data has one) would leave no
	// root: cut it where it is found.
	for _, n := range t.nodes {
		seen := map[*Node]bool{n: true}
		for p := parent[n]; p != nil; p = parent[p] {
			if seen[p] {
				delete(parent, n)
				break
			}
			seen[p] = true
		}
	}
	var roots []*Node
	for _, n := range t.nodes {
		n.Children = nil
	}
	for _, n := range t.nodes {
		if p := parent[n]; p != nil {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	return roots
}
