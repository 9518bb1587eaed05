package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/spf13/cobra"
)

// grantCmds are the license subcommands of signed grants and offline
// activation (the License Customer Portal).
func (a *app) grantCmds() []*cobra.Command {
	return []*cobra.Command{a.reads(a.pubkeyCmd()), a.reads(a.grantCmd()), a.reads(a.verifyCmd()),
		a.sends(a.fulfilCmd()), a.sends(a.rotateKeyCmd()), a.sends(a.revokeKeyCmd())}
}

func (a *app) pubkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use: "pubkey",
		Example: example(
			"licensebus license pubkey",
			"# keep a copy to verify files with, offline",
			"licensebus license pubkey -o json > keys.json",
		),
		Short: "The cloud's public keys that sign license grants (key id, algorithm, base64 public key, created, current)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := a.publishedKeys(cmd)
			if err != nil {
				return err
			}
			rows := make([]table.Row, len(keys))
			for i, k := range keys {
				rows[i] = table.Row{k.KeyID, k.Algorithm, k.PublicKey, k.Created.UTC().Format(time.RFC3339), yesNo(k.Current), k.RevokedAt}
			}
			if keys == nil {
				keys = []client.PublishedKey{}
			}
			return a.emit(keys, table.Row{"Key ID", "Algorithm", "Public Key", "Created", "Current", "Revoked"}, rows)
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// publishedKeys reads the keys from the event stream.
func (a *app) publishedKeys(cmd *cobra.Command) ([]client.PublishedKey, error) {
	js, closeFn, err := a.directJS("licensebus license")
	if err != nil {
		return nil, err
	}
	defer closeFn()
	ctx, cancel := a.readContext(cmd, false)
	defer cancel()
	keys, err := client.PublishedKeys(ctx, js)
	return keys, a.stopped(cmd, ctx, err)
}

func (a *app) grantCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use: "grant LICENSE_ID [--out FILE]",
		Example: example(
			"licensebus license grant $CAP --out IC-0001.lic",
		),
		Short: "Write the signed license file of a license bound to a SmartServer (stdout without --out)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			js, closeFn, err := a.directJS("licensebus license")
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := a.readContext(cmd, false)
			defer cancel()
			g, err := client.LicenseGrant(ctx, js, args[0])
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			return a.writeLicenseFile(out, []grant.Grant{*g})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (default: stdout)")
	return cmd
}

// writeLicenseFile writes a license file of grants to path, or to stdout
// when path is "" or "-"; with a path it says what it wrote.
func (a *app) writeLicenseFile(path string, grants []grant.Grant) error {
	f := grant.File{Format: grant.FileFormat, IssuedAt: grant.Time(time.Now()), Grants: grants}
	raw, err := f.Encode()
	if err != nil {
		return err
	}
	if path == "" || path == "-" {
		_, err := a.stdout.Write(raw)
		return err
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return err
	}
	if a.output == "json" {
		return a.emit(struct {
			File   string        `json:"file"`
			Grants []grant.Grant `json:"grants"`
		}{path, grants}, nil, nil)
	}
	noun := "licenses"
	if len(grants) == 1 {
		noun = "license"
	}
	fmt.Fprintf(a.stdout, "%s: %d %s for SmartServer %s\n", path, len(grants), noun, f.InstallCode())
	return nil
}

// verified is the JSON of license verify.
type verified struct {
	Valid    bool          `json:"valid"`
	Format   string        `json:"format"`
	IssuedAt string        `json:"issued_at"`
	Grants   []grant.Grant `json:"grants"`
}

func (a *app) verifyCmd() *cobra.Command {
	var pubkeys []string
	var pubkeyFile string
	cmd := &cobra.Command{
		Use: "verify FILE [--pubkey KEY|--pubkey-file F]",
		Example: example(
			"licensebus license verify IC-0001.lic",
			"# no network: the keys given",
			"licensebus license verify IC-0001.lic --pubkey-file keys.json -o json",
		),
		Short: "Verify a license file's signatures and show its terms; exit 1 with bad_signature, unknown_key, key_revoked or malformed_license_file",
		Long: `Verify every grant of a license file (FILE, or - for stdin) and print its
terms. The keys are the cloud's published ones (license pubkey), read from
NATS, unless --pubkey (the base64 public key, repeatable) or --pubkey-file
(the JSON of license pubkey -o json, a PEM public key, or base64 keys one
per line) gives them: then nothing is asked of the network.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			f, err := grant.Decode(raw)
			if err != nil {
				return events.GrantError(err)
			}
			keys := grant.Keys{}
			switch {
			case len(pubkeys) > 0 || pubkeyFile != "":
				for _, s := range pubkeys {
					k, err := grant.ParsePublicKey(strings.TrimSpace(s))
					if err != nil {
						return usageError{fmt.Errorf("--pubkey: %w", err)}
					}
					keys[k.ID] = k
				}
				if pubkeyFile != "" {
					if err := readPubkeyFile(pubkeyFile, keys); err != nil {
						return usageError{err}
					}
				}
			default:
				published, err := a.publishedKeys(cmd)
				if err != nil {
					return fmt.Errorf("%w (or give the keys with --pubkey or --pubkey-file)", err)
				}
				keys = client.Trust(published)
			}
			if err := f.Verify(keys); err != nil {
				return events.GrantError(err)
			}
			rows := make([]table.Row, len(f.Grants))
			for i, g := range f.Grants {
				rows[i] = table.Row{g.LicenseID, g.InstallCode, g.CustomerID, licensing.Description(g.Kind, g.Devices, g.Expires), g.BoundAt, g.KeyID}
			}
			if err := a.emit(verified{Valid: true, Format: f.Format, IssuedAt: f.IssuedAt, Grants: f.Grants},
				table.Row{"License ID", "Install Code", "Customer ID", "Description", "Bound At", "Key ID"}, rows); err != nil {
				return err
			}
			if a.output != "json" {
				fmt.Fprintf(a.stdout, "valid: %d signed %s\n", len(f.Grants), plural(len(f.Grants), "grant"))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&pubkeys, "pubkey", nil, "a public key to verify with (base64, as license pubkey prints it); repeatable")
	cmd.Flags().StringVar(&pubkeyFile, "pubkey-file", "", "a file of public keys: license pubkey -o json, a PEM public key, or base64 keys one per line")
	return cmd
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// readInput reads a file, or stdin for "-".
func (a *app) readInput(name string) ([]byte, error) {
	var r io.Reader = a.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageError{err}
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, grant.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return raw, nil
}

// readPubkeyFile adds the keys of a file: the JSON license pubkey -o json
// prints, a PEM "PUBLIC KEY", or base64 keys one per line.
func readPubkeyFile(path string, keys grant.Keys) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	trimmed := bytes.TrimSpace(raw)
	switch {
	case bytes.HasPrefix(trimmed, []byte("[")) || bytes.HasPrefix(trimmed, []byte("{")):
		var list []client.PublishedKey
		if trimmed[0] == '{' {
			var one client.PublishedKey
			err = json.Unmarshal(trimmed, &one)
			list = append(list, one)
		} else {
			err = json.Unmarshal(trimmed, &list)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for id, k := range client.Trust(list) {
			keys[id] = k
		}
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		for rest := trimmed; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			k, err := x509.ParsePKIXPublicKey(b.Bytes)
			pub, ok := k.(ed25519.PublicKey)
			if err != nil || !ok {
				return fmt.Errorf("%s: not an Ed25519 public key", path)
			}
			keys[grant.KeyID(pub)] = grant.PublicKey{ID: grant.KeyID(pub), Key: pub}
		}
	default:
		for _, line := range strings.Fields(string(trimmed)) {
			k, err := grant.ParsePublicKey(line)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			keys[k.ID] = k
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("%s: no public key", path)
	}
	return nil
}

func (a *app) fulfilCmd() *cobra.Command {
	var d events.Fulfil
	cmd := &cobra.Command{
		Use: "fulfil --install-code IC LICENSE_ID [LICENSE_ID...] [--out FILE]",
		Example: example(
			"licensebus license fulfil --install-code IC-0002 $CAP $MNT --out IC-0002.lic",
		),
		Short: "License Customer Portal: bind licenses to an offline SmartServer and write their signed license file",
		Long: `Bind licenses in the cloud to the SmartServer with install code IC, which is
not online, as an online activation binds them (a license active on another
SmartServer is refused), and write their signed grants as a license file
(FILE, or stdout without --out) for smartserver import-licenses. All the
licenses are bound, or none. licensebus command wait ID writes the file of a
fulfil to stdout again.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d.LicenseIDs = args
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.FulfilType, &d)
			})
		},
	}
	cmd.Flags().StringVar(&d.InstallCode, "install-code", "", "install code of the SmartServer (required)")
	cmd.Flags().StringVar(&d.CustomerID, "customer", "", "Customer ID the licenses must belong to (default: the first license's)")
	cmd.Flags().StringVar(&a.licenseOut, "out", "", "license file to write (default: stdout)")
	_ = cmd.MarkFlagRequired("install-code")
	return cmd
}

func (a *app) rotateKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rotate-key",
		Example: example(
			"licensebus license rotate-key",
		),
		Short: "Sign new grants with a new key; files signed before keep verifying",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.RotateKeyType, &events.RotateKey{})
			})
		},
	}
}

func (a *app) revokeKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use: "revoke-key KEY_ID",
		Example: example(
			"licensebus license revoke-key 3f2a9c0d1e4b5a6c",
		),
		Short: "Revoke a signing key that no longer signs: grants under it stop verifying",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.RevokeKeyType, &events.RevokeKey{KeyID: args[0]})
			})
		},
	}
}

func (a *app) importCmd() *cobra.Command {
	return &cobra.Command{
		Use: "import-licenses IC FILE",
		Example: example(
			"licensebus smartserver import-licenses IC-0002 IC-0002.lic",
		),
		Short: "Add License: verify every grant of a license file and activate them on the SmartServer",
		Long: `Import a license file (FILE, or - for stdin) from license fulfil on the
SmartServer with install code IC: every grant is verified against the keys
the SmartServer trusts, then all its licenses are activated as an online
activation activates them, or none. Importing the same file again has no
second effect (its command id derives from the file, unless --id).`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic := args[0]
			raw, err := a.readInput(args[1])
			if err != nil {
				return err
			}
			if !json.Valid(raw) {
				// Nothing a command can carry: say so here.
				_, err := grant.Decode(raw)
				return events.GrantError(err)
			}
			if a.cmdID == "" {
				a.cmdID = importID(ic, raw)
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.ImportLicensesType, &events.ImportLicenses{InstallCode: ic, LicenseFile: bytes.TrimSpace(raw)})
			})
		},
	}
}

// printGrantOutcome prints the accepted outcomes of the commands above
// (for them and for licensebus command wait); ok is false for any other.
func (a *app) printGrantOutcome(s sent) (ok bool, err error) {
	out := s.Out
	switch events.Type(out.EventType) {
	case events.FulfilledType:
		var d events.Fulfilled
		if err := json.Unmarshal(out.Data, &d); err != nil {
			return true, fmt.Errorf("outcome of command %s: %w", s.ID, err)
		}
		return true, a.writeLicenseFile(a.licenseOut, d.Grants)
	case events.KeyAddedType:
		var d events.KeyAdded
		_ = json.Unmarshal(out.Data, &d)
		return true, a.done(s.ID, out, "new grants are signed with key %s", d.KeyID)
	case events.KeyRevokedType:
		var d events.KeyRevoked
		_ = json.Unmarshal(out.Data, &d)
		return true, a.done(s.ID, out, "key %s revoked: grants signed with it no longer verify", d.KeyID)
	case events.LicensesImportedType:
		var d events.LicensesImported
		if err := json.Unmarshal(out.Data, &d); err != nil {
			return true, fmt.Errorf("outcome of command %s: %w", s.ID, err)
		}
		if a.output == "json" {
			return true, a.emitWithID(s.ID, out)
		}
		rows := make([]table.Row, len(d.Licenses))
		for i, l := range d.Licenses {
			rows[i] = table.Row{l.LicenseID, licensing.Description(l.Kind, l.Devices, l.Expires), l.ActivatedAt.UTC().Format(time.DateOnly), l.KeyID}
		}
		return true, a.emit(nil, table.Row{"License ID", "Description", "Activation Date", "Key ID"}, rows)
	}
	return false, nil
}

// importID is the command id of importing raw on ic: one file, one
// command, however it is spaced.
func importID(ic string, raw []byte) string {
	b := raw
	if c, err := audit.Canonical(raw); err == nil {
		b = c
	}
	sum := sha256.Sum256(b)
	return events.DeriveID(hex.EncodeToString(sum[:]), "import/"+ic)
}

// example is an Examples section of the help, one command a line.
func example(lines ...string) string { return "  " + strings.Join(lines, "\n  ") }
