package main

import (
	"context"
	"fmt"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/spf13/cobra"
)

func (a *app) smartserverCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "smartserver", Aliases: []string{"ss"}, Short: "What the CMS Manage Licenses dialog does on one SmartServer"}
	cmd.AddCommand(a.sends(a.registerCmd()), a.sends(a.setVersionCmd()), a.accountsCmd(), a.sends(a.setCustomerIDCmd()), a.sends(a.downloadCmd()), a.sends(a.activateCmd()),
		a.licensesCmd(), a.sends(a.transferCmd()), a.sends(a.autoProvisionCmd()))
	cmd.AddCommand(a.sends(a.importCmd()))
	return cmd
}

func (a *app) registerCmd() *cobra.Command {
	var d events.Register
	var flagIC string
	cmd := &cobra.Command{
		Use:   "register IC --version X.Y [--name NAME]",
		Short: "Announce a SmartServer (install code, segment controller name, firmware version)",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The install code is an argument, as for every smartserver
			// command; --install-code is the old spelling, still taken.
			switch {
			case len(args) == 1 && flagIC != "" && flagIC != args[0]:
				return usageError{fmt.Errorf("install code %q and --install-code %q differ; give the install code once", args[0], flagIC)}
			case len(args) == 1:
				d.InstallCode = args[0]
			case flagIC != "":
				d.InstallCode = flagIC
			default:
				return usageError{fmt.Errorf("the install code is missing; usage: %s", cmd.UseLine())}
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.RegisterType, &d)
			})
		},
	}
	cmd.Flags().StringVar(&flagIC, "install-code", "", "install code")
	_ = cmd.Flags().MarkHidden("install-code")
	cmd.Flags().StringVar(&d.Name, "name", "", "segment controller name")
	cmd.Flags().StringVar(&d.Version, "version", "", "firmware version, e.g. 3.4 (required)")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

func (a *app) setVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set-version IC X.Y",
		Short: "Record a SmartServer's new firmware version (refused below 3.3 while licenses are active)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.SetVersionType, &events.SetVersion{InstallCode: args[0], Version: args[1]})
			})
		},
	}
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
				return a.do(ctx, c, events.SetCustomerIDType, &events.SetCustomerID{InstallCode: args[0], CustomerID: args[1]})
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
				return a.do(ctx, c, events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: args[0]})
			})
		},
	}
}

func (a *app) downloadTable(rows []licensing.LicenseRow) error {
	t := make([]table.Row, len(rows))
	for i, r := range rows {
		t[i] = table.Row{r.SegmentController, r.InstallCode, r.LicenseID, r.TransferDate, r.Description}
	}
	return a.emit(rows, table.Row{"Segment Controller", "Install Code", "License ID", "Transfer Date", "Description"}, t)
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
				// One command per license, all stored before any is waited for.
				base, ids := a.commandIDs(len(lids))
				cmds := make([]sent, len(lids))
				for i, lid := range lids {
					s, err := a.send(ctx, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid}, client.SendOptions{ID: ids[i]})
					if err != nil {
						return err
					}
					s.LicenseID = lid
					cmds[i] = s
				}
				if !noWait {
					if err := a.await(ctx, c, cmds, base); err != nil {
						return err
					}
				}
				return a.finish(ctx, c, cmds)
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
					t[i] = table.Row{r.SegmentController, r.InstallCode, r.Description, r.Status, r.ActivationDate, r.LicenseID, r.Note}
				}
				return a.emit(rows, table.Row{"Segment Controller", "Install Code", "Description", "Status", "Activation Date", "License ID", "Note"}, t)
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
					ok, err := a.confirm(fmt.Sprintf("Transfer all %s of SmartServer %s to the cloud?", count(len(rows), "license"), ic))
					if err != nil {
						return err
					}
					if !ok {
						return usageError{fmt.Errorf("transfer not confirmed")}
					}
				}
				return a.do(ctx, c, events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic})
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

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MaximumNArgs(n)(cmd, args); err != nil {
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
