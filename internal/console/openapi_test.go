package console

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/nats-io/nats.go"
)

// Ensure openapi.json is a valid OpenAPI 3.1 document and describes
// exactly the routes the console serves under /api/v1.
func TestOpenAPIDescribesTheRoutes(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json does not validate: %v", err)
	}
	var described []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	c, err := New(Config{Shared: &nats.Conn{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	served := []string{"GET /api/v1/openapi.json"}
	for _, rt := range c.apiRoutes() {
		served = append(served, rt.pattern)
	}
	slices.Sort(described)
	slices.Sort(served)
	if !slices.Equal(described, served) {
		t.Fatalf("openapi.json describes\n  %s\nthe console serves\n  %s", strings.Join(described, "\n  "), strings.Join(served, "\n  "))
	}
	for _, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Responses.Default() == nil && method != "GET" {
				t.Errorf("%s %s: no default (problem) response", method, op.OperationID)
			}
		}
	}
}
