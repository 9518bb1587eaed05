package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/spf13/cobra"
)

func (a *app) auditTraceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "trace CORRELATION_ID",
		Short: "Show the causal chain of one command as a tree",
		Long: `Show everything one command caused: the command, the events and rejections
caused by it, recursively by causation id, including commands caused by those
events (automatic provisioning) and their own effects. -o json gives the tree as
nested objects (each entry with its children).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			js, closeFn, err := a.auditJS()
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := a.readContext(cmd, true)
			defer cancel()
			tr := audit.NewTracer(args[0])
			err = auditlog.Read(ctx, js, auditlog.ReadOptions{}, func(r auditlog.Record) error {
				if r.Entry != nil {
					tr.Add(r.Entry)
				}
				return nil
			})
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			roots := tr.Roots()
			if len(roots) == 0 {
				return &client.APIError{Code: string(events.ReasonNotFound), Message: fmt.Sprintf("no entry in the audit trail has correlation id %s", args[0])}
			}
			if a.output == "json" {
				return a.emit(traceJSON(roots), nil, nil)
			}
			w := bufio.NewWriter(a.stdout)
			for _, r := range roots {
				printTree(w, r, args[0], "", "", "", true)
			}
			return w.Flush()
		},
	}
}

// traceNode is one node of the JSON tree: the entry's fields and children.
type traceNode struct {
	*audit.Entry
	Children []traceNode `json:"children"`
}

func traceJSON(ns []*audit.Node) []traceNode {
	out := make([]traceNode, len(ns))
	for i, n := range ns {
		out[i] = traceNode{Entry: n.Entry, Children: traceJSON(n.Children)}
	}
	return out
}

// printTree prints n and its effects; an entry shows its correlation id
// when it is not the root's, and its W3C trace id beside it when it is not
// its cause's (at the top, always).
func printTree(w io.Writer, n *audit.Node, root, trace, prefix, branch string, top bool) {
	e := n.Entry
	line := fmt.Sprintf("%s %s  seq %d  %s  actor=%s", e.Kind, orDash(shortType(e.Type)), e.Seq, shortTime(e.StreamTime), orDash(e.Actor))
	if top || e.CorrelationID != root && e.CorrelationID != "" {
		line += "  corr=" + orDash(e.CorrelationID)
	}
	if tid := tracing.TraceID(e.TraceParent); tid != "" && (top || tid != trace) {
		line += "  trace=" + tid
		trace = tid
	}
	if w := whatTree(e); w != "" {
		line += "  " + w
	}
	fmt.Fprintln(w, prefix+branch+line)
	if !top {
		if branch == "└── " {
			prefix += "    "
		} else {
			prefix += "│   "
		}
	}
	for i, c := range n.Children {
		b := "├── "
		if i == len(n.Children)-1 {
			b = "└── "
		}
		printTree(w, c, root, trace, prefix, b, false)
	}
}

// whatTree is what() without the correlation, which the tree shows.
func whatTree(e *audit.Entry) string {
	c := *e
	c.CorrelationID, c.CausationID = c.ID, ""
	return what(&c)
}
