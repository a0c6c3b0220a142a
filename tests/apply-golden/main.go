// Command apply-golden computes, with the API server's own code, what a
// MutatingAdmissionPolicy's ApplyConfiguration mutation makes of an object:
// k8s.io/apiserver's patch.ApplyStructuredMergeDiff (the function the
// mutating policy plugin calls), with a type converter built from the
// Kubernetes OpenAPI v3 documents as the plugin's TypeConverterManager builds
// one (managedfields.NewTypeConverter of the documents' schemas).
//
//	go run . -cases ../../engine/tests/data/apply/cases.json -out ../../engine/tests/data/apply/expected.json
//
// Each case is {name, apiVersion, kind, object, configuration}; each result
// is {name, result} or {name, error}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/kube-openapi/pkg/spec3"
)

type testCase struct {
	Name          string          `json:"name"`
	APIVersion    string          `json:"apiVersion"`
	Kind          string          `json:"kind"`
	Object        json.RawMessage `json:"object"`
	Configuration json.RawMessage `json:"configuration"`
}

type outcome struct {
	Name   string         `json:"name"`
	Result map[string]any `json:"result,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// The OpenAPI v3 documents of each group version, by file name.
var documents = map[string]string{
	"v1":       "api__v1_openapi.json",
	"apps/v1":  "apis__apps__v1_openapi.json",
	"batch/v1": "apis__batch__v1_openapi.json",
}

func main() {
	modCache := os.Getenv("GOMODCACHE")
	if modCache == "" {
		modCache = filepath.Join(os.Getenv("HOME"), "go", "pkg", "mod")
	}
	openapiDir := flag.String("openapi", filepath.Join(modCache, "k8s.io", "kubernetes@v1.37.2", "api", "openapi-spec", "v3"), "the Kubernetes OpenAPI v3 documents")
	casesPath := flag.String("cases", "cases.json", "the cases")
	outPath := flag.String("out", "expected.json", "where the results go")
	flag.Parse()

	converters := map[string]managedfields.TypeConverter{}
	for gv, file := range documents {
		converters[gv] = mustConverter(filepath.Join(*openapiDir, file))
	}

	var cases []testCase
	readJSON(*casesPath, &cases)
	var outcomes []outcome
	for _, c := range cases {
		outcomes = append(outcomes, run(converters, c))
	}
	out, err := json.MarshalIndent(outcomes, "", "  ")
	check(err)
	check(os.WriteFile(*outPath, append(out, '\n'), 0o644))
}

// run merges one case's configuration into its object as the mutating
// policy plugin's applyConfigPatcher does.
func run(converters map[string]managedfields.TypeConverter, c testCase) outcome {
	var object, configuration map[string]any
	// Kubernetes' JSON decoding: integers become int64, as in the API server.
	check(utiljson.Unmarshal(c.Object, &object))
	check(utiljson.Unmarshal(c.Configuration, &configuration))
	converter, ok := converters[c.APIVersion]
	if !ok {
		return outcome{Name: c.Name, Error: fmt.Sprintf("no schema for %s", c.APIVersion)}
	}
	original := &unstructured.Unstructured{Object: object}
	original.SetGroupVersionKind(schema.FromAPIVersionAndKind(c.APIVersion, c.Kind))
	// The plugin gives the configuration the object's kind.
	configurationObject := &unstructured.Unstructured{Object: configuration}
	configurationObject.SetGroupVersionKind(original.GroupVersionKind())
	patched, err := patch.ApplyStructuredMergeDiff(converter, original, configurationObject)
	if err != nil {
		return outcome{Name: c.Name, Error: sortedAtomics(strings.TrimSpace(err.Error()))}
	}
	return outcome{Name: c.Name, Result: patched.(*unstructured.Unstructured).Object}
}

// sortedAtomics sorts the paths of a refusal of atomic fields, which the API
// server lists in Go's random map order, so that expected.json is stable.
func sortedAtomics(message string) string {
	const marker = "may not mutate atomic arrays, maps or structs: "
	at := strings.Index(message, marker)
	if at < 0 {
		return message
	}
	paths := strings.Split(message[at+len(marker):], ", ")
	sort.Strings(paths)
	return message[:at+len(marker)] + strings.Join(paths, ", ")
}

func mustConverter(path string) managedfields.TypeConverter {
	var document spec3.OpenAPI
	readJSON(path, &document)
	converter, err := managedfields.NewTypeConverter(document.Components.Schemas, false)
	check(err)
	return converter
}

func readJSON(path string, into any) {
	data, err := os.ReadFile(path)
	check(err)
	check(json.Unmarshal(data, into))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
