// Command schemagen writes the JSON Schemas (draft 2020-12) outside
// consumers validate licensebus messages with, generated from the Go types
// so they cannot drift:
//
//   - events/schemas/<type>.json: the data of every CloudEvent type
//     events.Types() lists;
//   - docs/audit-entry.schema.json: an entry of the audit stream.
//
// Descriptions come from the Go doc comments, enums from the constants of
// string types. Run it from anywhere in the module after changing a data
// type:
//
//	go run ./internal/schemagen
//
// TestSchemasAreCurrent fails while the files in the repository differ from
// what it would write.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	root := flag.String("root", "", "module root (default: the directory of go.mod above the working directory)")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	if root == "" {
		var err error
		if root, err = moduleRoot(); err != nil {
			return err
		}
	}
	files, err := generate(root)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(root, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", filepath.ToSlash(name))
	}
	stale, err := staleSchemas(root, files)
	if err != nil {
		return err
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(root, name)); err != nil {
			return err
		}
		fmt.Println("removed", name)
	}
	return nil
}

// drift says, file by file, how the schemas under root differ from what
// the Go types generate.
func drift(root string) ([]string, error) {
	files, err := generate(root)
	if err != nil {
		return nil, err
	}
	var problems []string
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || !bytes.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s is missing or out of date: run `go run ./internal/schemagen` and commit the result", name))
		}
	}
	stale, err := staleSchemas(root, files)
	if err != nil {
		return nil, err
	}
	for _, name := range stale {
		problems = append(problems, fmt.Sprintf("%s is the schema of a type that no longer exists: run `go run ./internal/schemagen`", name))
	}
	sort.Strings(problems)
	return problems, nil
}

// staleSchemas lists schema files of types that no longer exist.
func staleSchemas(root string, files map[string][]byte) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, schemaDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, m := range matches {
		rel, err := filepath.Rel(root, m)
		if err != nil {
			return nil, err
		}
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			stale = append(stale, filepath.ToSlash(rel))
		}
	}
	return stale, nil
}

// moduleRoot is the nearest directory at or above the working directory
// holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory; pass -root")
		}
		dir = parent
	}
}
