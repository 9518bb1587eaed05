package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are the Examples sections of the help, by command path below
// the root, kept together so they read as one cheat sheet and stay
// consistent; every command has some (TestEveryCommandHasExamples).
// $CID, $CAP, $DEV and $ROLLOUT stand for ids printed by earlier commands.
func examples() map[string][]string {
	return map[string][]string{
		"": {
			"# start the server (embedded JetStream), then use the CLI in another terminal",
			"licensebus serve",
			"CID=$(licensebus customer create --name P2022-0208)",
			"licensebus smartserver register IC-0001 --name SC-01 --version 3.4",
			"licensebus smartserver licenses IC-0001 -o json",
		},
		"serve": {
			"licensebus serve",
			"licensebus serve --data /var/lib/licensebus --listen 0.0.0.0:4222 --log-level warn",
			"# join an existing NATS cluster instead of embedding a server",
			"licensebus serve --nats nats://nats-1:4222",
			"# one of several nodes on a 3-server cluster: each job runs on one node (cluster status)",
			"licensebus serve --nats nats://n1:4222,nats://n2:4222,nats://n3:4222 --name node-a --signing-key grants.key",
			"# scale the streams of a single-replica deployment to three",
			"licensebus serve --nats nats://n1:4222,nats://n2:4222,nats://n3:4222 --name node-a --replicas 3 --signing-key grants.key",
		},
		"customer": {
			"licensebus customer create --name P2022-0208",
			"licensebus customer list",
		},
		"customer create": {
			"# prints the new Customer ID",
			"CID=$(licensebus customer create --name P2022-0208)",
			"# retry-safe: a repeat with the same --id gets the first outcome",
			"licensebus customer create --name P2022-0208 --id create-p2022-0208",
		},
		"customer list": {
			"licensebus customer list",
			"licensebus customer list -o json",
		},
		"license": {
			"licensebus license add --customer $CID --kind capacity --devices 200",
			"licensebus license list --customer $CID --state cloud",
		},
		"license add": {
			"CAP=$(licensebus license add --customer $CID --kind capacity --devices 200)",
			"MNT=$(licensebus license add --customer $CID --kind maintenance --devices 200 --expires 2027-12-31)",
		},
		"license list": {
			"licensebus license list",
			"licensebus license list --customer $CID --state cloud",
			"licensebus license list --smartserver IC-0001 -o json",
		},
		"smartserver": {
			"licensebus smartserver register IC-0001 --name SC-01 --version 3.4",
			"licensebus smartserver set-customer-id IC-0001 $CID",
			"licensebus smartserver download-licenses IC-0001",
			"licensebus smartserver activate IC-0001 $CAP $MNT",
		},
		"smartserver register": {
			"licensebus smartserver register IC-0001 --name SC-01 --version 3.4",
		},
		"smartserver set-version": {
			"licensebus smartserver set-version IC-0001 3.5",
		},
		"smartserver accounts": {
			"licensebus smartserver accounts",
			"licensebus smartserver accounts -o json",
		},
		"smartserver set-customer-id": {
			"licensebus smartserver set-customer-id IC-0001 $CID",
		},
		"smartserver download-licenses": {
			"licensebus smartserver download-licenses IC-0001",
			"licensebus smartserver download-licenses IC-0001 -o json",
		},
		"smartserver activate": {
			"licensebus smartserver activate IC-0001 $CAP $MNT",
			"# return once stored; `licensebus command wait` shows the outcomes later",
			"licensebus smartserver activate IC-0001 $CAP --no-wait",
		},
		"smartserver licenses": {
			"licensebus smartserver licenses IC-0001",
			"licensebus smartserver licenses IC-0001 -o json",
		},
		"smartserver transfer-to-cloud": {
			"licensebus smartserver transfer-to-cloud IC-0001",
			"# without a terminal (in scripts), confirm with --yes",
			"licensebus smartserver transfer-to-cloud IC-0001 --yes",
		},
		"smartserver auto-provision": {
			"licensebus smartserver auto-provision IC-0001 on",
			"licensebus smartserver auto-provision IC-0001 off",
		},
		"device": {
			"licensebus device add IC-0001 --protocol bacnet --name AHU-1",
			"licensebus device list IC-0001",
		},
		"device add": {
			"# prints the new Device ID",
			"DEV=$(licensebus device add IC-0001 --protocol bacnet --name AHU-1)",
		},
		"device remove": {
			"licensebus device remove IC-0001 $DEV",
		},
		"device list": {
			"licensebus device list IC-0001",
			"licensebus device list IC-0001 -o json",
		},
		"device provision": {
			"licensebus device provision IC-0001 $DEV",
			"licensebus device provision IC-0001 --all",
		},
		"device watch": {
			"licensebus device watch IC-0001",
			"# every SmartServer, one JSON object per change",
			"licensebus device watch -o json",
		},
		"fleet": {
			"licensebus fleet status",
		},
		"fleet status": {
			"licensebus fleet status",
			"licensebus fleet status -o json",
		},
		"rollout": {
			"licensebus rollout start --customer $CID --targets targets.csv --activate capacity:200 --dry-run",
			"licensebus rollout list",
		},
		"rollout start": {
			"# the plan first: which license goes where, and what would be refused",
			"licensebus rollout start --customer $CID --targets targets.csv --set-customer-id --activate capacity:200,maintenance --dry-run",
			"licensebus rollout start --customer $CID --targets targets.csv --set-customer-id --activate capacity:200,maintenance \\",
			"  --auto-provision --waves 1%,10%,50%,100% --rate 500/min --abort-when 'failed>5%,min=20' --wait",
		},
		"rollout transfer": {
			"licensebus rollout transfer --targets targets.csv --dry-run",
			"licensebus rollout transfer --targets targets.csv --wave-size 100 --wait",
		},
		"rollout status": {
			"licensebus rollout status $ROLLOUT",
			"licensebus rollout status $ROLLOUT --watch",
		},
		"rollout list": {
			"licensebus rollout list",
			"licensebus rollout list -o json",
		},
		"rollout pause":        {"licensebus rollout pause $ROLLOUT"},
		"rollout resume":       {"licensebus rollout resume $ROLLOUT"},
		"rollout cancel":       {"licensebus rollout cancel $ROLLOUT"},
		"rollout retry-failed": {"licensebus rollout retry-failed $ROLLOUT"},
		"command": {
			"licensebus command wait 5f0c6a1e-8d1b-4c55-9a57-2f3e8f1d2c44",
		},
		"command wait": {
			"# the id a command said when it was stored (\"command ID stored\")",
			"licensebus command wait 5f0c6a1e-8d1b-4c55-9a57-2f3e8f1d2c44",
			"licensebus command wait activate-ic-0001-1 activate-ic-0001-2 -o json",
		},
		"projections": {
			"licensebus projections status",
		},
		"projections status": {
			"licensebus projections status",
			"licensebus projections status -o json",
		},
		"projections rebuild": {
			"licensebus projections rebuild",
		},
		"reactors": {
			"licensebus reactors status",
		},
		"reactors status": {
			"licensebus reactors status",
			"licensebus reactors status -o json",
		},
		"cluster": {
			"licensebus cluster status",
		},
		"cluster status": {
			"licensebus cluster status",
			"licensebus cluster status -o json",
			"licensebus --nats nats://n1:4222,nats://n2:4222,nats://n3:4222 cluster status",
		},
		"bench": {
			"licensebus bench --quick",
			"licensebus bench --fleet 1000,10 -o json > figures.json",
		},
		"audit": {
			"licensebus audit tail --follow",
			"licensebus audit verify",
		},
		"audit tail": {
			"licensebus audit tail --smartserver IC-0001 --kind rejection",
			"licensebus audit tail --follow -o json",
		},
		"audit export": {
			"licensebus audit export --since 2026-01-01 --until 2026-02-01 > january.jsonl",
			"licensebus audit export --format csv > audit.csv",
		},
		"audit verify": {
			"licensebus audit verify",
			"licensebus audit verify january.jsonl",
		},
		"audit trace": {
			"licensebus audit trace $ROLLOUT",
		},
	}
}

// setExamples fills in the Examples section of every command below root
// that has none of its own.
func setExamples(root *cobra.Command) {
	ex := examples()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), root.Name()), " ")
		if lines, ok := ex[path]; ok && c.Example == "" {
			c.Example = "  " + strings.Join(lines, "\n  ")
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
