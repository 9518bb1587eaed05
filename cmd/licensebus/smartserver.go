package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/spf13/cobra"
)

func (a *app) smartserverCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "smartserver", Aliases: []string{"ss"}, Short: "What the CMS Manage Licenses dialog does on one SmartServer"}
	cmd.AddCommand(a.registerCmd(), a.accountsCmd(), a.setCustomerIDCmd(), a.downloadCmd(), a.activateCmd(), a.licensesCmd(), a.transferCmd(), a.autoProvisionCmd())
	return cmd
}

func (a *app) registerCmd() *cobra.Command {
	var d events.Register
	cmd := &cobra.Command{
		Use:   "register --install-code IC --name NAME --version X.Y",
		Short: "Announce a SmartServer (install code, segment controller name, firmware version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				out, err := c.Do(ctx, events.RegisterType, &d, client.SendOptions{ID: a.cmdID})
				if err != nil {
					return err
				}
				return a.done(out, "SmartServer %s (%s, version %s) registered", d.InstallCode, d.Name, d.Version)
			})
		},
	}
	cmd.Flags().StringVar(&d.InstallCode, "install-code", "", "install code (required)")
	cmd.Flags().StringVar(&d.Name, "name", "", "segment controller name")
	cmd.Flags().StringVar(&d.Version, "version", "", "firmware version, e.g. 3.4 (required)")
	_ = cmd.MarkFlagRequired("install-code")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

// done prints a command's outcome: the outcome as JSON, or a sentence.
func (a *app) done(out *licensing.Outcome, format string, args ...any) error {
	if a.output == "json" {
		return a.emit(out, nil, nil)
	}
	fmt.Fprintf(a.stdout, format+"\n", args...)
	return nil
}

func (a *app) accountsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "accounts",
		Short: "Manage Customer Accounts view: every SmartServer and its Customer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var rows []licensing.AccountRow
				if err := c.Query(ctx, client.QueryAccounts, client.Params{}, &rows); err != nil {
					return err
				}
				t := make([]table.Row, len(rows))
				for i, r := range rows {
					t[i] = table.Row{r.SegmentController, r.InstallCode, r.CustomerID, r.Version}
				}
				return a.emit(rows, table.Row{"Segment Controller", "Install Code", "Customer ID", "Version"}, t)
			})
		},
	}
}

func (a *app) setCustomerIDCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set-customer-id IC CUSTOMER_ID",
		Short: "Set (Save) the Customer ID of a SmartServer",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				out, err := c.Do(ctx, events.SetCustomerIDType, &events.SetCustomerID{InstallCode: args[0], CustomerID: args[1]}, client.SendOptions{ID: a.cmdID})
				if err != nil {
					return err
				}
				return a.done(out, "Customer ID of SmartServer %s set to %s", args[0], args[1])
			})
		},
	}
}

func (a *app) downloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "download-licenses IC",
		Short: "Download Licenses from the Cloud: fetch and list the licenses available to the SmartServer's customer",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if _, err := c.Do(ctx, events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: args[0]}, client.SendOptions{ID: a.cmdID}); err != nil {
					return err
				}
				var rows []licensing.LicenseRow
				if err := c.Query(ctx, client.QueryDownloads, client.Params{InstallCode: args[0]}, &rows); err != nil {
					return err
				}
				return a.downloadTable(rows)
			})
		},
	}
}

func (a *app) downloadTable(rows []licensing.LicenseRow) error {
	t := make([]table.Row, len(rows))
	for i, r := range rows {
		t[i] = table.Row{r.InstallCode, r.LicenseID, r.TransferDate, r.Description}
	}
	return a.emit(rows, table.Row{"Segment Controller", "License ID", "Transfer Date", "Description"}, t)
}

// activation is one line of `smartserver activate` output.
type activation struct {
	LicenseID      string `json:"license_id"`
	CommandID      string `json:"command_id"`
	Status         string `json:"status"` // activated | rejected | sent
	Reason         string `json:"reason,omitempty"`
	Message        string `json:"message,omitempty"`
	ActivationDate string `json:"activation_date,omitempty"`
}

func (a *app) activateCmd() *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "activate IC LICENSE_ID [LICENSE_ID...]",
		Short: "Activate licenses on a SmartServer; waits for the outcome unless --no-wait",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic, lids := args[0], args[1:]
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res := make([]activation, len(lids))
				for i, lid := range lids {
					id := a.cmdID
					if id != "" && len(lids) > 1 {
						id = fmt.Sprintf("%s-%d", id, i+1)
					}
					s, err := c.Send(ctx, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid}, client.SendOptions{ID: id})
					if err != nil {
						return err
					}
					res[i] = activation{LicenseID: lid, CommandID: s.ID, Status: "sent"}
				}
				var refused error
				if !noWait {
					for i := range res {
						out, err := c.WaitFor(ctx, ic, res[i].CommandID)
						if err != nil {
							return err
						}
						if rerr := client.OutcomeErr(out); rerr != nil {
							res[i].Status, res[i].Reason, res[i].Message = "rejected", out.Reason, out.Message
							if refused == nil {
								refused = rerr
							}
							continue
						}
						var d events.LicenseActivated
						_ = json.Unmarshal(out.Data, &d)
						res[i].Status, res[i].ActivationDate = "activated", d.ActivatedAt.UTC().Format("2006-01-02")
					}
				}
				t := make([]table.Row, len(res))
				for i, r := range res {
					t[i] = table.Row{r.LicenseID, r.Status, r.ActivationDate, r.Message, r.CommandID}
				}
				if err := a.emit(res, table.Row{"License ID", "Status", "Activation Date", "Reason", "Command ID"}, t); err != nil {
					return err
				}
				return refused
			})
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the commands are stored, without waiting for the outcome")
	return cmd
}

func (a *app) licensesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "licenses IC",
		Short: "Manage Licenses view: the licenses active on a SmartServer",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var rows []licensing.LicenseRow
				if err := c.Query(ctx, client.QueryManage, client.Params{InstallCode: args[0]}, &rows); err != nil {
					return err
				}
				t := make([]table.Row, len(rows))
				for i, r := range rows {
					t[i] = table.Row{r.SegmentController, r.Description, r.Status, r.ActivationDate, r.LicenseID, r.Note}
				}
				return a.emit(rows, table.Row{"Segment Controller", "Description", "Status", "Activation Date", "License ID", "Note"}, t)
			})
		},
	}
}

func (a *app) transferCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "transfer-to-cloud IC",
		Short: "Transfer every capacity and maintenance license of a SmartServer back to the cloud",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic := args[0]
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if !yes {
					var rows []licensing.LicenseRow
					if err := c.Query(ctx, client.QueryManage, client.Params{InstallCode: ic}, &rows); err != nil {
						return err
					}
					ok, err := a.confirm(fmt.Sprintf("Transfer all %d licenses of SmartServer %s to the cloud?", len(rows), ic))
					if err != nil {
						return err
					}
					if !ok {
						return usageError{fmt.Errorf("transfer not confirmed")}
					}
				}
				out, err := c.Do(ctx, events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic}, client.SendOptions{ID: a.cmdID})
				if err != nil {
					return err
				}
				var d events.LicensesTransferred
				_ = json.Unmarshal(out.Data, &d)
				noun := "licenses"
				if len(d.LicenseIDs) == 1 {
					noun = "license"
				}
				return a.done(out, "%d %s of SmartServer %s transferred to the cloud on %s", len(d.LicenseIDs), noun, ic, d.TransferredAt.UTC().Format("2006-01-02"))
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{fmt.Errorf("%w; usage: %s", err, cmd.UseLine())}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError{fmt.Errorf("%w; usage: %s", err, cmd.UseLine())}
		}
		return nil
	}
}
