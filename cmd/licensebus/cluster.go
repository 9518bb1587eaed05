package main

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/elect"
	"github.com/licensebus/licensebus/projections"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// AuditJob is the auditor's name as a singleton job.
const AuditJob = "auditor"

// electedComponents run on every node but do their work only where their
// job is elected: job_leader reports the jobs themselves (the elector's
// hook), not these components.
var electedComponents = map[string]bool{"audit": true, "projections": true, "rollouts": true}

// replicas is what the streams and buckets get: --replicas, else 3 on a
// NATS cluster of three or more servers, else 1.
func (s *Server) replicas(cfg ServeConfig) bus.Replicas {
	if cfg.Replicas > 0 {
		return bus.Replicas{N: cfg.Replicas, Explicit: true}
	}
	return bus.Replicas{N: bus.DefaultReplicas(s.nc)}
}

// startElection opens the cluster bucket and the node's elector. A node
// that embeds its NATS server is the only one of its name there, so it
// takes back at once the leases its last run left.
func (s *Server) startElection(ctx context.Context, cfg ServeConfig, js jetstream.JetStream, r bus.Replicas) error {
	name := cfg.Name
	if name == "" {
		name = elect.DefaultNode()
	}
	var err error
	onChange := func(job string, leading bool) {
		s.obs.metrics.SetLeader(job, leading)
		if cfg.OnLeader != nil {
			cfg.OnLeader(job, leading)
		}
	}
	s.elector, err = elect.New(ctx, elect.Config{JS: js, Node: name, Version: version(), Replicas: r.N, TTL: cfg.LeaseTTL,
		Logger: cfg.Logger, OnChange: onChange, Reclaim: s.ns != nil})
	return err
}

// scale gives the buckets and the audit stream the replicas the streams
// got (EnsureStreams did those): the cluster's, the reactors', the views'.
func (s *Server) scale(ctx context.Context, r bus.Replicas) error {
	n := r.For(1)
	if _, err := bus.OpenBucket(ctx, s.js, jetstream.KeyValueConfig{Bucket: bus.ReactorsBucket, Replicas: n,
		Description: "licensebus reactors' checkpoints: the event sequence each has handled up to", History: 1, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("reactors bucket: %w", err)
	}
	// The trail's streams, created here with the replicas rather than by
	// the auditor with one and scaled (a scale moves their leaders).
	for _, c := range []jetstream.StreamConfig{audit.StreamConfig(), audit.CheckpointStreamConfig()} {
		if _, err := s.js.Stream(ctx, c.Name); errors.Is(err, jetstream.ErrStreamNotFound) {
			c.Replicas = n
			_, err := s.js.CreateStream(ctx, c)
			if err != nil && n > 1 && !r.Explicit && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				c.Replicas = 1 // the cluster cannot place them: Scale says so below
				_, err = s.js.CreateStream(ctx, c)
			}
			if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return fmt.Errorf("stream %s: %w", c.Name, err)
			}
		}
	}
	streams := []string{"KV_" + elect.Bucket, "KV_" + bus.ReactorsBucket, trail.Stream, trail.CheckpointStream}
	if s.access.registry != nil { // not with --no-auth
		streams = append(streams, "KV_"+auth.CredsBucket)
	}
	for _, m := range []projections.Model{s.lic, s.dev, s.ro, s.outcomes} {
		streams = append(streams, "KV_"+projections.Bucket(m))
	}
	for _, st := range streams {
		if err := bus.Scale(ctx, s.js, st, r, s.log); err != nil {
			return err
		}
	}
	return nil
}

// version is this build's module version and commit, as Go records them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 12 {
			v += "+" + st.Value[:12]
		}
	}
	return v
}

// clusterJSON is `cluster status -o json`.
type clusterJSON struct {
	Nodes []elect.NodeStatus `json:"nodes"`
	Jobs  []jobJSON          `json:"jobs"`
	NATS  natsJSON           `json:"nats"`
}

// jobJSON is one singleton job: the node running it (empty while nobody
// does), since when, and how many messages of its source it has not
// handled yet (the projections and reactors count events past their
// checkpoint, the auditor source messages past its cursor; the rollout
// drivers have no position of their own: 0).
type jobJSON struct {
	Job   string     `json:"job"`
	Node  string     `json:"node"`
	Since *time.Time `json:"since"`
	Lag   uint64     `json:"lag"`
}

type natsJSON struct {
	// Servers are the NATS servers that hold a replica of a licensebus
	// stream, with the streams each leads.
	Servers []natsServerJSON `json:"servers"`
	Streams []streamJSON     `json:"streams"`
}

type natsServerJSON struct {
	Name  string   `json:"name"`
	Leads []string `json:"leads"`
}

// streamJSON is a licensebus stream or bucket across the cluster.
type streamJSON struct {
	Name     string `json:"name"`
	Replicas int    `json:"replicas"`
	Leader   string `json:"leader"`
	// Current counts the replicas in step with the leader, the leader
	// included: Replicas when all are.
	Current int `json:"current"`
}

func (a *app) clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "The licensebus nodes on a NATS cluster, who runs each singleton job, and the streams' leaders",
	}
	cmd.AddCommand(a.reads(&cobra.Command{
		Use:   "status",
		Short: "Show the nodes, the jobs (node, since, lag) and the NATS streams (leader, replicas current)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, closeFn, err := a.directJS("licensebus cluster")
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := a.readContext(cmd, false)
			defer cancel()
			st, err := readCluster(ctx, js)
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			if a.output == "json" {
				return a.emit(st, nil, nil)
			}
			return a.clusterTables(st)
		},
	}))
	return cmd
}

// readCluster gathers what cluster status shows.
func readCluster(ctx context.Context, js jetstream.JetStream) (clusterJSON, error) {
	var out clusterJSON
	nodes, jobs, err := elect.Status(ctx, js)
	if err != nil {
		return out, err
	}
	out.Nodes = nodes
	if out.Nodes == nil {
		out.Nodes = []elect.NodeStatus{}
	}
	lags, err := jobLags(ctx, js)
	if err != nil {
		return out, err
	}
	for _, j := range jobs {
		if j.Job != projections.Job {
			out.Jobs = append(out.Jobs, jobJSON{Job: j.Job, Node: j.Node, Since: j.Since, Lag: lags[j.Job]})
			continue
		}
		// One writer for every view (outcomes last, after the views they
		// describe): a row per view.
		for name, lag := range lags {
			if strings.HasPrefix(name, projections.Job+"/") {
				out.Jobs = append(out.Jobs, jobJSON{Job: name, Node: j.Node, Since: j.Since, Lag: lag})
			}
		}
	}
	slices.SortFunc(out.Jobs, func(a, b jobJSON) int { return strings.Compare(a.Job, b.Job) })
	if out.Jobs == nil {
		out.Jobs = []jobJSON{}
	}
	out.NATS, err = readNATS(ctx, js)
	return out, err
}

// jobLags is how far each job trails its source, by job name.
func jobLags(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	lags := map[string]uint64{}
	last, reactors, err := bus.Reactors(ctx, js)
	if err != nil {
		return nil, err
	}
	for _, r := range reactors {
		lags["reactor/"+r.Name] = r.Behind
	}
	if st, err := audit.ReadStatus(ctx, js); err == nil {
		lags[AuditJob] = st.Behind()
	} else if !errors.Is(err, audit.ErrNoTrail) {
		return nil, err
	}
	names := js.KeyValueStoreNames(ctx)
	for b := range names.Name() {
		model, ok := strings.CutPrefix(b, "licensebus_view_")
		if !ok {
			continue
		}
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			return nil, err
		}
		var ck uint64
		if e, err := kv.Get(ctx, projections.CheckpointKey); err == nil {
			ck, _ = strconv.ParseUint(string(e.Value()), 10, 64)
		}
		lags[projections.Job+"/"+model] = last - min(ck, last)
	}
	return lags, names.Error()
}

// readNATS reads every licensebus stream's cluster placement: the names
// from the meta leader (complete), then each stream's info from its own
// leader. A stream whose info does not come (its leader being elected, or
// its replicas moving after a scale) is listed with no leader and 0
// current, rather than left out as the server's stream list does.
func readNATS(ctx context.Context, js jetstream.JetStream) (natsJSON, error) {
	out := natsJSON{Servers: []natsServerJSON{}, Streams: []streamJSON{}}
	servers := map[string][]string{}
	names := js.StreamNames(ctx)
	var all []string
	for name := range names.Name() {
		if strings.HasPrefix(name, "LICENSEBUS_") || strings.HasPrefix(name, "KV_licensebus_") {
			all = append(all, name)
		}
	}
	if err := names.Err(); err != nil {
		return out, err
	}
	for _, name := range all {
		st := streamJSON{Name: name}
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(ictx, name)
		cancel()
		if err != nil {
			out.Streams = append(out.Streams, st)
			continue
		}
		info := s.CachedInfo()
		st.Replicas, st.Current = max(1, info.Config.Replicas), 1
		if c := info.Cluster; c != nil {
			st.Leader = c.Leader
			if c.Leader != "" {
				servers[c.Leader] = append(servers[c.Leader], name)
			}
			for _, p := range c.Replicas {
				if _, ok := servers[p.Name]; !ok {
					servers[p.Name] = nil
				}
				if p.Current {
					st.Current++
				}
			}
		}
		out.Streams = append(out.Streams, st)
	}
	for name, leads := range servers {
		if leads == nil {
			leads = []string{}
		}
		slices.Sort(leads)
		out.Servers = append(out.Servers, natsServerJSON{Name: name, Leads: leads})
	}
	slices.SortFunc(out.Servers, func(a, b natsServerJSON) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(out.Streams, func(a, b streamJSON) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// clusterTables prints cluster status for people: nodes, jobs, streams.
func (a *app) clusterTables(st clusterJSON) error {
	ago := func(t time.Time) string { return time.Since(t).Round(time.Second).String() + " ago" }
	var rows []table.Row
	for _, n := range st.Nodes {
		rows = append(rows, table.Row{n.Name, n.Version, n.Started.Local().Format(time.DateTime), ago(n.LastSeen)})
	}
	if err := a.emit(nil, table.Row{"Node", "Version", "Started", "Last Seen"}, rows); err != nil {
		return err
	}
	rows = nil
	for _, j := range st.Jobs {
		node, since := j.Node, ""
		if node == "" {
			node = "(nobody)"
		}
		if j.Since != nil {
			since = ago(*j.Since)
		}
		rows = append(rows, table.Row{j.Job, node, since, j.Lag})
	}
	if err := a.emit(nil, table.Row{"Job", "Node", "Since", "Lag"}, rows); err != nil {
		return err
	}
	rows = nil
	for _, s := range st.NATS.Streams {
		leader := s.Leader
		switch {
		case s.Replicas == 0:
			leader = "(no answer)"
		case leader == "":
			leader = "(single server)"
		}
		rows = append(rows, table.Row{s.Name, leader, s.Replicas, fmt.Sprintf("%d/%d", s.Current, s.Replicas)})
	}
	return a.emit(nil, table.Row{"Stream", "Leader", "Replicas", "Current"}, rows)
}
