// Command opa is Open Policy Agent itself, built from its Go module for the tests: the
// deploy-gate policy's unit tests run with `opa test`, and `canary promote --policy` asks
// `opa run --server` with the shipped policy loaded.
package main

import (
	"os"

	"github.com/open-policy-agent/opa/cmd"
)

func main() {
	if err := cmd.RootCommand.Execute(); err != nil {
		os.Exit(1)
	}
}
