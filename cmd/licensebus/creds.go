package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"
)

func (a *app) credsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "creds",
		Short:   "Credentials on the bus: who may connect, and what each may do",
		Example: "  licensebus creds issue smartserver IC-0001 --out IC-0001.creds\n  licensebus creds list\n  licensebus creds revoke IC-0001",
		Long: `Every connection to licensebus's NATS is someone: a SmartServer (its own
commands and queries), a reader (events, audit trail, views, dead letters), an
operator (what an admin does with this CLI) or serve itself. The NATS server
enforces each role's permissions (see creds roles); creds files hold a user's
JWT and key seed and are secrets (mode 0600).`,
	}
	cmd.AddCommand(a.credsIssueCmd(), a.credsListCmd(), a.credsRevokeCmd(), a.credsRolesCmd(), a.credsTokenCmd())
	return cmd
}

func (a *app) credsIssueCmd() *cobra.Command {
	var out, accountSeed, account string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:     "issue smartserver|reader|operator NAME --out FILE [--expires 8760h]",
		Short:   "Issue credentials: a SmartServer's (NAME is its install code), a reader's or an operator's",
		Example: "  licensebus creds issue smartserver IC-0001 --out IC-0001.creds --expires 8760h\n  licensebus creds issue reader audit-team --out audit-team.creds\n  licensebus creds issue operator alice --out alice.creds\n  # on a NATS licensebus does not run: sign with the account's scoped key of the role\n  licensebus creds issue smartserver IC-0002 --out IC-0002.creds --account-seed smartserver-sk.nk --account ACCOUNT_PUBLIC_KEY",
		Long: `Issue credentials and write them to a new creds file (mode 0600).

The key pair is made here and the seed never leaves this machine: serve signs
the public key with the role's signing key and records who holds it (creds
list). On a NATS that licensebus does not run (serve --nats), sign with the
role's scoped signing key of the account instead: --account-seed FILE (and
--account with the account's public key); see docs/identities.md.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			role, err := auth.ParseRole(args[0])
			if err == nil && role == auth.Service {
				err = errors.New("the service's credentials are serve's own (<data>/service.creds)")
			}
			if err != nil {
				return usageError{err}
			}
			id := auth.Identity{Name: args[1], Role: role}
			if err := id.Validate(); err != nil {
				return usageError{err}
			}
			if _, err := os.Stat(out); err == nil {
				return usageError{fmt.Errorf("%s exists: credentials are never overwritten; choose another --out", out)}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			var until time.Time
			if expires > 0 {
				until = time.Now().Add(expires)
			} else if expires < 0 {
				return usageError{fmt.Errorf("--expires %v: give a positive duration, or none", expires)}
			}
			kp, err := nkeys.CreateUser()
			if err != nil {
				return err
			}
			pub, _ := kp.PublicKey()
			seed, _ := kp.Seed()
			var token string
			var rec auth.Record
			if accountSeed != "" {
				if token, rec, err = a.signLocally(cmd.Context(), id, pub, until, accountSeed, account); err != nil {
					return err
				}
			} else if err := a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var issued client.CredsIssued
				p := client.Params{Creds: &client.CredsParams{Name: id.Name, Role: string(role), PublicKey: pub, Expires: until}}
				err := c.Query(ctx, client.QueryCredsIssue, p, &issued)
				if errors.Is(err, nats.ErrNoResponders) {
					return fmt.Errorf("no serve here holds the account's signing keys (a NATS licensebus does not run): sign with --account-seed: %w", err)
				}
				if err != nil {
					return err
				}
				token = issued.JWT
				return json.Unmarshal(issued.Record, &rec)
			}); err != nil {
				return err
			}
			if err := auth.WriteCreds(out, token, seed); err != nil {
				return fmt.Errorf("write %s: %w (the credentials are recorded; revoke %s and issue again)", out, err, id.Name)
			}
			if a.output == "json" {
				return a.emit(rec, nil, nil)
			}
			fmt.Fprintf(a.stdout, "Credentials of %s %s written to %s (key %s, expires %s)\n", role, id.Name, out, rec.PublicKey, when(rec.Expires))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "the creds file to write (required; never overwritten)")
	f.DurationVar(&expires, "expires", 0, "how long the credentials are valid, e.g. 8760h (default: no expiry)")
	f.StringVar(&accountSeed, "account-seed", "", "sign here with this scoped signing key of the account (a NATS licensebus does not run)")
	f.StringVar(&account, "account", "", "with --account-seed: the account's public key, when the seed is a signing key")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// signLocally signs a user with an account's signing key read from a file,
// and asks serve to record it; credentials not recorded still work, so a
// failure to record is a warning.
func (a *app) signLocally(ctx context.Context, id auth.Identity, pub string, until time.Time, seedFile, account string) (string, auth.Record, error) {
	b, err := os.ReadFile(seedFile)
	if err != nil {
		return "", auth.Record{}, fmt.Errorf("account seed: %w", err)
	}
	signer, err := auth.NewSigner(bytes.TrimSpace(b), account)
	if err != nil {
		return "", auth.Record{}, fmt.Errorf("%s: %w", seedFile, err)
	}
	token, err := signer.Sign(id, pub, until)
	if err != nil {
		return "", auth.Record{}, err
	}
	rec := auth.Record{Name: id.Name, Role: id.Role, PublicKey: pub, Issued: time.Now().UTC()}
	if id.Role == auth.SmartServer {
		rec.InstallCode = id.Name
	}
	if !until.IsZero() {
		t := until.UTC().Truncate(time.Second)
		rec.Expires = &t
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := a.connect(rctx)
	if err == nil {
		defer c.Close()
		err = c.Query(rctx, client.QueryCredsRecord, client.Params{Creds: &client.CredsParams{JWT: token}}, &rec)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: the credentials are valid but not in licensebus's record (creds list): %v\n", err)
	}
	return token, rec, nil
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *app) credsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List issued credentials: name, role, install code, public key, issued, expires, revoked",
		Example: "  licensebus creds list\n  licensebus creds list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var recs []auth.Record
				if err := c.Query(ctx, client.QueryCredsList, client.Params{}, &recs); err != nil {
					return err
				}
				rows := make([]table.Row, len(recs))
				for i, r := range recs {
					revoked := ""
					if r.Revoked {
						revoked = when(r.RevokedAt)
					}
					rows[i] = table.Row{r.Name, r.Role, r.InstallCode, r.PublicKey, r.Issued.UTC().Format(time.RFC3339), when(r.Expires), revoked}
				}
				return a.emit(recs, table.Row{"Name", "Role", "Install Code", "Public Key", "Issued", "Expires", "Revoked"}, rows)
			})
		},
	}
}

func (a *app) credsRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke credentials: new connections are refused at once, live ones closed",
		Example: "  licensebus creds revoke IC-0001",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var r credsRevoked
				if err := c.Query(ctx, client.QueryCredsRevoke, client.Params{Creds: &client.CredsParams{Name: args[0]}}, &r); err != nil {
					return err
				}
				if r.Note != "" {
					fmt.Fprintln(a.stderr, "note:", r.Note)
				}
				if a.output == "json" {
					return a.emit(r, nil, nil)
				}
				fmt.Fprintf(a.stdout, "Credentials of %s %s (key %s) revoked at %s\n", r.Role, r.Name, r.PublicKey, when(r.RevokedAt))
				return nil
			})
		},
	}
}

func (a *app) credsRolesCmd() *cobra.Command {
	var nsc bool
	cmd := &cobra.Command{
		Use:     "roles [--nsc]",
		Short:   "Show what each role may publish and subscribe to, as the NATS server enforces it",
		Example: "  licensebus creds roles\n  licensebus creds roles -o json\n  licensebus creds roles --nsc",
		Long: `Show each role's permissions: the template of its scoped signing key, where
the NATS server puts the user's name for {{name()}} (a SmartServer's name is
its install code). --nsc prints the nsc commands that give an account of a
NATS licensebus does not run the same scoped signing keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type perms struct {
				Role        auth.Role `json:"role"`
				Publish     []string  `json:"publish"`
				DenyPublish []string  `json:"deny_publish,omitempty"`
				Sub         []string  `json:"subscribe"`
			}
			var all []perms
			for _, r := range append([]auth.Role{auth.Service}, auth.Roles...) {
				s := auth.Scope(r, "").Template.Permissions
				all = append(all, perms{r, s.Pub.Allow, s.Pub.Deny, s.Sub.Allow})
			}
			if nsc {
				fmt.Fprintln(a.stdout, "# One scoped signing key per role on the licensebus account (JetStream enabled):")
				for _, p := range all[1:] {
					fmt.Fprintf(a.stdout, "nsc edit account licensebus --sk generate   # note the key as %s_KEY\n", strings.ToUpper(string(p.Role)))
					fmt.Fprintf(a.stdout, "nsc edit signing-key --account licensebus --sk $%s_KEY --role %s \\\n  --allow-pub '%s' \\\n  --allow-sub '%s'",
						strings.ToUpper(string(p.Role)), p.Role, strings.Join(p.Publish, ","), strings.Join(p.Sub, ","))
					if len(p.DenyPublish) > 0 {
						fmt.Fprintf(a.stdout, " \\\n  --deny-pub '%s'", strings.Join(p.DenyPublish, ","))
					}
					fmt.Fprintln(a.stdout)
				}
				return nil
			}
			if a.output == "json" {
				return a.emit(all, nil, nil)
			}
			var rows []table.Row
			for _, p := range all {
				if len(p.Publish) == 0 {
					rows = append(rows, table.Row{p.Role, "everything", "everything"})
					continue
				}
				pubs := slices.Clone(p.Publish)
				for _, d := range p.DenyPublish {
					pubs = append(pubs, "deny "+d)
				}
				for i := range max(len(pubs), len(p.Sub)) {
					var pub, sub string
					if i < len(pubs) {
						pub = pubs[i]
					}
					if i < len(p.Sub) {
						sub = p.Sub[i]
					}
					role := p.Role
					if i > 0 {
						role = ""
					}
					rows = append(rows, table.Row{role, pub, sub})
				}
			}
			return a.emit(all, table.Row{"Role", "Publish", "Subscribe"}, rows)
		},
	}
	cmd.Flags().BoolVar(&nsc, "nsc", false, "print the nsc commands for an account of another NATS")
	return cmd
}
