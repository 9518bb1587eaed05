package main

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
)

// docIndex holds what the Go source says about a package's types: doc
// comments of types and fields, and the constants of string types.
type docIndex struct {
	types  map[string]string   // type name → doc
	fields map[string]string   // "Type.Field" → doc
	enums  map[string][]string // type name → constant values, in source order
}

// readDocs reads the doc comments of the package in root/dir (tests left
// out).
func readDocs(root, dir string) (docIndex, error) {
	idx := docIndex{types: map[string]string{}, fields: map[string]string{}, enums: map[string][]string{}}
	paths, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
	if err != nil {
		return idx, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return idx, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return idx, fmt.Errorf("no Go files in %s", filepath.Join(root, dir))
	}
	pkg, err := doc.NewFromFiles(fset, files, "github.com/licensebus/licensebus/"+dir)
	if err != nil {
		return idx, err
	}
	for _, t := range pkg.Types {
		idx.types[t.Name] = oneLine(t.Doc)
		for _, spec := range t.Decl.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok {
				continue
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				for _, f := range st.Fields.List {
					text := oneLine(f.Doc.Text() + " " + f.Comment.Text())
					for _, n := range f.Names {
						if text != "" {
							idx.fields[t.Name+"."+n.Name] = text
						}
					}
				}
			}
		}
		for _, c := range t.Consts {
			for _, spec := range c.Decl.Specs {
				vs, ok := spec.(*ast.ValueSpec)
				if !ok {
					continue
				}
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							idx.enums[t.Name] = append(idx.enums[t.Name], s)
						}
					}
				}
			}
		}
	}
	return idx, nil
}

// merge adds what o says of types idx does not know.
func (idx docIndex) merge(o docIndex) {
	for k, v := range o.types {
		if _, ok := idx.types[k]; !ok {
			idx.types[k] = v
		}
	}
	for k, v := range o.fields {
		if _, ok := idx.fields[k]; !ok {
			idx.fields[k] = v
		}
	}
	for k, v := range o.enums {
		if _, ok := idx.enums[k]; !ok {
			idx.enums[k] = v
		}
	}
}

// oneLine collapses a doc comment to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
