package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func (a *app) deviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "DMM devices (LON, BACnet, Modbus) and their colours"}
	cmd.AddCommand(a.sends(a.deviceAddCmd()), a.sends(a.deviceRemoveCmd()), a.deviceListCmd(), a.sends(a.deviceProvisionCmd()), a.deviceWatchCmd())
	return cmd
}

func (a *app) deviceAddCmd() *cobra.Command {
	var d events.AddDevice
	cmd := &cobra.Command{
		Use:   "add IC --protocol lon|bacnet|modbus --name NAME",
		Short: "Add a device to a SmartServer's DMM; prints its Device ID",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d.InstallCode = args[0]
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.AddDeviceType, &d)
			})
		},
	}
	cmd.Flags().StringVar(&d.Protocol, "protocol", "", "lon, bacnet or modbus (required)")
	cmd.Flags().StringVar(&d.Name, "name", "", "device name")
	cmd.Flags().StringVar(&d.DeviceID, "device-id", "", "Device ID to use (default: a new UUID)")
	_ = cmd.MarkFlagRequired("protocol")
	enumFlag(cmd, "protocol", events.LON, events.BACnet, events.Modbus)
	return cmd
}

func (a *app) deviceRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove IC DEVICE_ID",
		Short: "Remove a device; its license slot goes to the next device",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.RemoveDeviceType, &events.RemoveDevice{InstallCode: args[0], DeviceID: args[1]})
			})
		},
	}
}

// colour paints a colour name in its colour on a terminal.
func (a *app) colour(name string) string {
	f, ok := a.stdout.(*os.File)
	if !ok || !isTerminal(f) {
		return name
	}
	switch name {
	case "purple":
		return text.Colors{text.FgMagenta, text.Bold}.Sprint(name)
	case "blue":
		return text.Colors{text.FgBlue, text.Bold}.Sprint(name)
	case "green":
		return text.Colors{text.FgGreen, text.Bold}.Sprint(name)
	}
	return name
}

func (a *app) deviceListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list IC",
		Short: "Devices widget: every device of a SmartServer with its state and colour",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var rows []devices.Row
				if err := c.Query(ctx, client.QueryDevices, client.Params{InstallCode: args[0]}, &rows); err != nil {
					return err
				}
				t := make([]table.Row, len(rows))
				for i, r := range rows {
					t[i] = table.Row{r.Name, r.DeviceID, r.Protocol, r.State, a.colour(r.Colour)}
				}
				return a.emit(rows, table.Row{"Name", "Device ID", "Protocol", "State", "Colour"}, t)
			})
		},
	}
}

func (a *app) deviceProvisionCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "provision IC [DEVICE_ID...] [--all]",
		Short: "Provision blue devices (manually); --all provisions every blue device",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic, ids := args[0], args[1:]
			if all == (len(ids) > 0) {
				return usageError{fmt.Errorf("name devices or pass --all, not both or neither")}
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if all {
					var rows []devices.Row
					if err := c.Query(ctx, client.QueryDevices, client.Params{InstallCode: ic}, &rows); err != nil {
						return err
					}
					for _, r := range rows {
						if r.State == events.Unprovisioned {
							ids = append(ids, r.DeviceID)
						}
					}
				}
				if len(ids) == 0 {
					fmt.Fprintln(a.stderr, "no blue devices to provision")
					return nil
				}
				// One batch command per MaxDeviceBatch devices, all stored
				// before any is waited for.
				var batches [][]string
				for start := 0; start < len(ids); start += events.MaxDeviceBatch {
					batches = append(batches, ids[start:min(start+events.MaxDeviceBatch, len(ids))])
				}
				base, cmdIDs := a.commandIDs(len(batches))
				cmds := make([]sent, len(batches))
				for i, batch := range batches {
					s, err := a.send(ctx, c, events.ProvisionDevicesType, &events.ProvisionDevices{InstallCode: ic, DeviceIDs: batch}, client.SendOptions{ID: cmdIDs[i]})
					if err != nil {
						return err
					}
					s.DeviceIDs = batch
					cmds[i] = s
				}
				if err := a.await(ctx, c, cmds, base); err != nil {
					return err
				}
				return a.finish(ctx, c, cmds)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "provision every blue device of the SmartServer")
	return cmd
}

func (a *app) deviceWatchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch [IC]",
		Short: "Show colour changes live, as they happen, until Ctrl-C",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			kv, err := c.JetStream().KeyValue(ctx, projections.Bucket(devices.New()))
			if err != nil {
				return fmt.Errorf("devices view (is licensebus serve running?): %w", err)
			}
			filter := "devices.*"
			if len(args) == 1 {
				if !events.ValidInstallCode(args[0]) {
					return events.Reject(events.ReasonBadInstallCode, "install code %q must be 1-64 letters, digits, '-' or '_'", args[0])
				}
				filter = "devices." + args[0]
			}
			// Each entry holds all devices of one SmartServer: remember the
			// last one seen and print the devices whose state changed.
			w, err := kv.Watch(ctx, filter)
			if err != nil {
				return err
			}
			defer w.Stop()
			if a.output != "json" {
				fmt.Fprintf(a.stderr, "watching %s for colour changes; Ctrl-C to stop\n", strings.TrimPrefix(filter, "devices."))
			}
			enc := json.NewEncoder(a.stdout)
			seen := map[string]map[string]devices.Row{}
			live := false
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-c.lost:
					return c.lostErr(a.natsURL)
				case e, ok := <-w.Updates():
					if !ok {
						return nil
					}
					if e == nil {
						live = true // the current state is loaded; changes follow
						continue
					}
					ic := strings.TrimPrefix(e.Key(), "devices.")
					var rows []devices.Row
					if e.Operation() == jetstream.KeyValuePut {
						if err := json.Unmarshal(e.Value(), &rows); err != nil {
							continue
						}
					}
					before, now := seen[ic], make(map[string]devices.Row, len(rows))
					for _, r := range rows {
						now[r.DeviceID] = r
					}
					seen[ic] = now
					if !live {
						continue
					}
					var changed []devices.Row
					for _, r := range rows {
						if b, ok := before[r.DeviceID]; !ok || b.State != r.State {
							changed = append(changed, r)
						}
					}
					for id, b := range before {
						if _, ok := now[id]; !ok {
							b.State, b.Colour = "removed", ""
							changed = append(changed, b)
						}
					}
					for _, r := range changed {
						if a.output == "json" {
							_ = enc.Encode(r)
							continue
						}
						fmt.Fprintf(a.stdout, "%s  %-20s %-36s %-16s %-14s %s\n", e.Created().Local().Format(time.TimeOnly),
							r.InstallCode, r.DeviceID, r.Name, r.State, a.colour(r.Colour))
					}
				}
			}
		},
	}
}

func (a *app) autoProvisionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "auto-provision IC on|off",
		Short: "Turn reactive provisioning of blue devices on or off",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var on bool
			switch args[1] {
			case "on":
				on = true
			case "off":
			default:
				return usageError{fmt.Errorf("say on or off, not %q", args[1])}
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: args[0], Enabled: on})
			})
		},
	}
}

func (a *app) fleetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "Fleet-wide views"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Devices per colour, per SmartServer and in total",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var f devices.Fleet
				if err := c.Query(ctx, client.QueryFleet, client.Params{}, &f); err != nil {
					return err
				}
				rows := make([]table.Row, 0, len(f.SmartServers)+1)
				for _, s := range f.SmartServers {
					rows = append(rows, table.Row{s.InstallCode, s.Version, s.Capacity, s.Counts.Purple, s.Counts.Blue, s.Counts.Green, s.Counts.Total, onOff(s.AutoProvision)})
				}
				rows = append(rows, table.Row{"TOTAL", "", "", f.Total.Purple, f.Total.Blue, f.Total.Green, f.Total.Total, ""})
				return a.emit(f, table.Row{"Install Code", "Version", "Capacity", a.colour("purple"), a.colour("blue"), a.colour("green"), "Devices", "Auto-Provision"}, rows)
			})
		},
	})
	return cmd
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
