package elect

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodeStatus is a running licensebus process as its record says.
type NodeStatus struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	// Jobs are the jobs it campaigns for (it leads some of them).
	Jobs []string `json:"jobs"`
}

// JobStatus is who runs a job: Node is empty while nobody holds its lease.
type JobStatus struct {
	Job   string     `json:"job"`
	Node  string     `json:"node"`
	Since *time.Time `json:"since"`
	// Revision is the lease's revision, its token.
	Revision uint64 `json:"revision,omitempty"`
}

// Status reads the cluster bucket: every process with a live record, and
// every job some process campaigns for or holds, sorted by name. A bucket
// that does not exist yet means nobody has run: no nodes, no jobs.
func Status(ctx context.Context, js jetstream.JetStream) ([]NodeStatus, []JobStatus, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	// A watch reads every key's last entry, with its time, in one go.
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = w.Stop() }()
	var nodes []NodeStatus
	jobs := map[string]*JobStatus{}
	for {
		var en jetstream.KeyValueEntry
		select {
		case en = <-w.Updates():
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if en == nil {
			break
		}
		if en.Operation() != jetstream.KeyValuePut {
			continue
		}
		switch key := en.Key(); {
		case strings.HasPrefix(key, nodePrefix):
			var n node
			if json.Unmarshal(en.Value(), &n) != nil {
				continue
			}
			nodes = append(nodes, NodeStatus{Name: n.Name, Version: n.Version, Started: n.Started, LastSeen: en.Created().UTC(), Jobs: n.Jobs})
		case strings.HasPrefix(key, jobPrefix):
			var l lease
			if json.Unmarshal(en.Value(), &l) != nil {
				continue
			}
			since := l.Since
			jobs[l.Job] = &JobStatus{Job: l.Job, Node: l.Node, Since: &since, Revision: en.Revision()}
		}
	}
	for _, n := range nodes {
		for _, j := range n.Jobs {
			if jobs[j] == nil {
				jobs[j] = &JobStatus{Job: j}
			}
		}
	}
	slices.SortFunc(nodes, func(a, b NodeStatus) int { return strings.Compare(a.Name, b.Name) })
	out := make([]JobStatus, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, *j)
	}
	slices.SortFunc(out, func(a, b JobStatus) int { return strings.Compare(a.Job, b.Job) })
	return nodes, out, nil
}
