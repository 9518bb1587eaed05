package main

import (
	"fmt"

	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/console"
	"github.com/nats-io/jwt/v2"
	"github.com/spf13/cobra"
)

func (a *app) credsTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "token FILE",
		Short: "Print the API token of a creds file: Authorization: Bearer TOKEN on /api/v1, or paste it on the console's sign-in page",
		Long: `Print the bearer token of the web console's API for a creds file: the file's
contents, base64 (URL alphabet). It is as secret as the file: whoever has it acts
as that identity until the credentials are revoked or expire.`,
		Example: "  licensebus creds token licensebus-data/admin.creds\n  curl -H \"Authorization: Bearer $(licensebus creds token IC-0001.creds)\" http://127.0.0.1:8080/api/v1/smartservers/IC-0001/licenses",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := auth.ReadCreds(args[0])
			if err != nil {
				return fmt.Errorf("credentials %s: %w", args[0], err)
			}
			b, err := credsText(c)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, console.Token(b))
			return nil
		},
	}
}

// credsText is a creds file's text, written anew from what was read.
func credsText(c *auth.Creds) ([]byte, error) { return jwt.FormatUserConfig(c.JWT, c.Seed) }
