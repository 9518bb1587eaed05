package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/events/grant"
	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// checkpointRow is one checkpoint as audit checkpoints lists it: the
// checkpoint itself (what audit verify --checkpoints reads back), where it
// is stored, and whether its signature holds.
type checkpointRow struct {
	audit.Checkpoint
	StreamSeq uint64 `json:"stream_seq"`
	Verified  bool   `json:"verified"`
	Problem   string `json:"problem,omitempty"`
}

func (a *app) auditCheckpointsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoints",
		Short: "The signed checkpoints of the trail's head, and whether each signature holds",
		Long: `List the checkpoints of the LICENSEBUS_AUDIT_CHECKPOINTS stream: every 100,000
entries or 10 seconds (while the trail moves) and when it stops, the auditor
signs the head of the trail — seq, hash, cursors, the last source messages —
with the cloud's key. audit verify holds the trail against them. Keep a copy
elsewhere (-o json) to verify an export, or a trail whose streams were all
deleted, with audit verify --checkpoints.`,
		Example: example("licensebus audit checkpoints", "# a copy kept elsewhere, to hold the trail against later",
			"licensebus audit checkpoints -o json > checkpoints.json", "licensebus audit verify --checkpoints checkpoints.json"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, closeFn, err := a.auditJS()
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := a.readContext(cmd, true)
			defer cancel()
			rows, err := checkpointRows(ctx, js)
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			t := make([]table.Row, len(rows))
			for i, r := range rows {
				ok := "yes"
				if !r.Verified {
					ok = "NO: " + r.Problem
				}
				t[i] = table.Row{r.Seq, r.Hash, r.Cursor.Commands, r.Cursor.Events, r.Time, r.KeyID, ok}
			}
			return a.emit(rows, table.Row{"Seq", "Hash", "Commands", "Events", "Time", "Key ID", "Signature"}, t)
		},
	}
}

// checkpointRows reads the checkpoints and checks their signatures with the
// published keys.
func checkpointRows(ctx context.Context, js jetstream.JetStream) ([]checkpointRow, error) {
	stored, err := auditlog.ReadCheckpoints(ctx, js)
	if err != nil {
		return nil, err
	}
	keys, err := client.PublishedKeys(ctx, js)
	if err != nil {
		return nil, err
	}
	lookup := keyLookup(keys)
	rows := []checkpointRow{}
	for _, s := range stored {
		_, probs := auditlog.CheckSignatures([]auditlog.StoredCheckpoint{s}, lookup)
		r := checkpointRow{StreamSeq: s.StreamSeq, Verified: len(probs) == 0}
		if s.Checkpoint != nil {
			r.Checkpoint = *s.Checkpoint
		}
		if len(probs) > 0 {
			r.Problem = probs[0].Detail
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// keyLookup finds a checkpoint's key among published keys.
func keyLookup(keys []client.PublishedKey) auditlog.Key {
	byID := map[string]client.PublishedKey{}
	for _, k := range keys {
		byID[k.KeyID] = k
	}
	return func(id string) (ed25519.PublicKey, string, bool) {
		k, ok := byID[id]
		if !ok {
			return nil, "", false
		}
		pk, err := grant.ParsePublicKey(k.PublicKey)
		if err != nil {
			return nil, "", false
		}
		return pk.Key, k.RevokedAt, true
	}
}

// liveCheckpoints are the checkpoints a live verification holds the trail
// against: the latest whose signature holds, and the problems of those
// that do not.
func liveCheckpoints(ctx context.Context, js jetstream.JetStream) ([]audit.Checkpoint, []audit.Problem, error) {
	stored, err := auditlog.ReadCheckpoints(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	keys, err := client.PublishedKeys(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	good, probs := auditlog.CheckSignatures(stored, keyLookup(keys))
	return auditlog.Latest(good), probs, nil
}

// fileCheckpoints reads the checkpoints of a file (audit checkpoints -o
// json) and keeps those signed by a key of keysFile (license pubkey -o
// json, a PEM public key, base64 keys), or else of the published keys.
func (a *app) fileCheckpoints(cmd *cobra.Command, path, keysFile string) ([]audit.Checkpoint, []audit.Problem, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageError{err}
	}
	var cps []audit.Checkpoint
	if err := json.Unmarshal(raw, &cps); err != nil {
		return nil, nil, usageError{fmt.Errorf("%s: not the JSON of audit checkpoints -o json: %w", path, err)}
	}
	var lookup auditlog.Key
	if keysFile != "" {
		keys := grant.Keys{}
		if err := readPubkeyFile(keysFile, keys); err != nil {
			return nil, nil, usageError{err}
		}
		lookup = func(id string) (ed25519.PublicKey, string, bool) {
			k, ok := keys[id]
			return k.Key, "", ok
		}
	} else {
		published, err := a.publishedKeys(cmd)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (or give the keys with --pubkey-file)", err)
		}
		lookup = keyLookup(published)
	}
	stored := make([]auditlog.StoredCheckpoint, len(cps))
	for i := range cps {
		stored[i] = auditlog.StoredCheckpoint{StreamSeq: uint64(i + 1), Checkpoint: &cps[i]}
	}
	good, probs := auditlog.CheckSignatures(stored, lookup)
	for i := range probs {
		probs[i].Where = strings.Replace(probs[i].Where, audit.CheckpointStream+" seq", path+" item", 1)
	}
	return good, probs, nil
}
