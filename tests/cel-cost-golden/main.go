// Command cel-cost-golden computes, with the API server's own code, what
// each CEL expression of a set of cases costs at run time: the expression is
// compiled by k8s.io/apiserver's admission CEL compiler (the one
// ValidatingAdmissionPolicy uses, with the Kubernetes base environment and
// its cost tracker), evaluated against the case's object, and the
// evaluation's actual cost is written out.
//
//	go run . -cases ../../engine/tests/data/cel-cost/cases.json -out ../../engine/tests/data/cel-cost/expected.json
//
// Each case is {name, expression, object}; each result is {name, cost} or
// {name, error} (a compile error, or the evaluation's error such as the
// per-call limit).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	celgo "github.com/google/cel-go/cel"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/cel/environment"
)

type testCase struct {
	Name       string          `json:"name"`
	Expression string          `json:"expression"`
	Object     json.RawMessage `json:"object,omitempty"`
}

type outcome struct {
	Name  string  `json:"name"`
	Cost  *uint64 `json:"cost,omitempty"`
	Error string  `json:"error,omitempty"`
}

// accessor is a validation expression that may yield any type.
type accessor string

func (a accessor) GetExpression() string       { return string(a) }
func (a accessor) ReturnTypes() []*celgo.Type { return []*celgo.Type{celgo.AnyType} }

func main() {
	casesPath := flag.String("cases", "cases.json", "the cases")
	outPath := flag.String("out", "expected.json", "where the results go")
	flag.Parse()

	raw, err := os.ReadFile(*casesPath)
	check(err)
	var cases []testCase
	check(json.Unmarshal(raw, &cases))

	compiler := plugincel.NewCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	results := make([]outcome, 0, len(cases))
	for _, c := range cases {
		results = append(results, judge(compiler, c))
	}
	out, err := json.MarshalIndent(results, "", "  ")
	check(err)
	check(os.WriteFile(*outPath, append(out, '\n'), 0o644))
	fmt.Printf("cel-cost-golden: %d cases written to %s\n", len(results), *outPath)
}

func judge(compiler plugincel.Compiler, c testCase) outcome {
	compiled := compiler.CompileCELExpression(accessor(c.Expression), plugincel.OptionalVariableDeclarations{HasParams: true}, environment.StoredExpressions)
	if compiled.Error != nil {
		return outcome{Name: c.Name, Error: compiled.Error.Error()}
	}
	var object any
	if len(c.Object) > 0 {
		check(utiljson.Unmarshal(c.Object, &object))
	}
	activation := map[string]any{"object": object, "oldObject": nil, "params": nil}
	_, details, err := compiled.Program.ContextEval(context.Background(), activation)
	if err != nil {
		return outcome{Name: c.Name, Error: err.Error()}
	}
	return outcome{Name: c.Name, Cost: details.ActualCost()}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "cel-cost-golden:", err)
		os.Exit(1)
	}
}
